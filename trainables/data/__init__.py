"""Datasets as uint8 tensors plus a batched augmentation pipeline (no PIL, no DataLoader workers).

Public interface (docs/ARCHITECTURE.md): ``Split``, ``Dataset``, ``DATASETS``, ``load_dataset``,
``iterate_batches``. Each dataset's module docstring states its file format, where it is looked
for, and its split rule; ``SPLIT_SEED`` is the one fixed seed of every split rule.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from spaces.errors import UserError

from . import cifar, digits, fashion, imagenet16
from .assemble import SPLIT_SEED
from .batches import iterate_batches
from .types import Dataset, Split

__all__ = ["DATASETS", "SPLIT_SEED", "Dataset", "Split", "iterate_batches", "load_dataset"]

DATASETS: tuple[str, ...] = ("digits", "fashion-mnist", "cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")

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
