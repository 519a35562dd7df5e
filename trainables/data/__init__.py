"""Datasets as uint8 tensors plus a batched augmentation pipeline (no PIL, no DataLoader workers).

Public interface (docs/ARCHITECTURE.md): ``Split``, ``Dataset``, ``DATASETS``, ``load_dataset``,
``iterate_batches``. Each dataset's module docstring states its file format, where it is looked
for, and its split rule; ``SPLIT_SEED`` (0) is the one fixed seed of every split rule, applied as
a stratified splitmix64-keyed permutation (``assemble.py``), identical on every platform/version.

================ ======================== ============================ ======= === ====
name             source                   train / valid / test         size    pad flip
================ ======================== ============================ ======= === ====
digits           sklearn load_digits      901 / 449 / 447 (50/25/25%)  8x8x1   1   no
fashion-mnist    IDX files                50K / 10K (of train) / 10K   28x28x1 3   yes
cifar10-valid    CIFAR-10 python pickles  25K / 25K (of train) / 10K   32x32x3 4   yes
cifar10          CIFAR-10 python pickles  50K / none / 10K             32x32x3 4   yes
cifar100         CIFAR-100 python pickles 50K / 5K / 5K (of test)      32x32x3 4   yes
ImageNet16-120   16x16 ImageNet pickles   151.7K / 3K / 3K (of val)    16x16x3 2   yes
================ ======================== ============================ ======= === ====

Crop padding is image_size // 8 (NATS-Bench: 4 on 32x32, 2 on 16x16). Flip is off for digits
only, where a mirror image can be another digit. Without ``data_dir`` files are looked for in
``$NATSFLOW_DATA_DIR`` or ``~/.cache/natsflow/datasets`` (``files.DEFAULT_DATA_DIR``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from benchmark_data.schema import DATASETS  # the one list of dataset names
from spaces.errors import UserError

from . import cifar, digits, fashion, imagenet16
from .assemble import SPLIT_SEED
from .batches import iterate_batches
from .types import Dataset, Split

__all__ = ["DATASETS", "SPLIT_SEED", "Dataset", "Split", "iterate_batches", "load_dataset"]

# name -> loader(data_dir, download, device); only digits needs no files (it ships with sklearn).
_LOADERS: dict[str, Callable[[Path | None, bool, str | torch.device], Dataset]] = {
    "digits": lambda data_dir, download, device: digits.load(device),
    "fashion-mnist": fashion.load,
    "cifar10-valid": cifar.load_cifar10_valid,
    "cifar10": cifar.load_cifar10,
    "cifar100": cifar.load_cifar100,
    "ImageNet16-120": imagenet16.load,
}


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Load dataset ``name`` (one of ``DATASETS``) with its fixed split rule, tensors on ``device``.

    ``data_dir`` is where the dataset's files are looked for first; ``download=True`` fetches the
    official files into it (checksum-verified) when they are missing. Everything a user can get
    wrong (unknown name, missing/truncated/corrupt files) raises ``UserError`` saying what to do.
    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return _LOADERS[name](Path(data_dir).expanduser() if data_dir is not None else None, download, device)
