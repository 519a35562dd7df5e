"""ImageNet16-120: the 16x16 downsampled ImageNet (Chrabaszcz et al. 2017), classes 1..120 only.

Format (the official "Imagenet16" pickle batches): ``train_data_batch_1`` .. ``train_data_batch_10``
and ``val_data``, each a pickled dict with ``data`` uint8 [N, 768] (R, G, B planes of 16x16) and
``labels`` 1..1000, read with ``files.safe_unpickle`` (no code runs). Looked for in
``data_dir/ImageNet16`` (NATS-Bench's layout), then ``data_dir``. There is no public download: the
files come from image-net.org (login, "Downsampled ImageNet 16x16").

As NATS-Bench: keep the images whose label is 1..120 and map labels to 0..119 (151,700 train
images); the 6,000 kept validation images -> 3K valid + 3K test. NATS-Bench used a fixed split file
that is not shipped here; this split is stratified (25 + 25 per class) with ``SPLIT_SEED`` = 0.
``load`` takes ``halves`` (a ``splits.NatsHalves``) to use NATS-Bench's
imagenet-16-120-test-split.txt instead (one-shot searches, ``splits.search_dataset``).
Flip: on (NATS-Bench flips ImageNet16-120). Crop padding 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spaces.errors import UserError

from . import files
from .assemble import SPLIT_SEED, make_dataset, make_split, stratified_split
from .types import Dataset

NAME = "ImageNet16-120"
KEEP_CLASSES = 120
TRAIN = tuple(f"train_data_batch_{i}" for i in range(1, 11))
VALID = "val_data"
RULE = f"labels 1..120 -> 0..119; val set stratified valid/test 1/2 + 1/2, splitmix64 seed {SPLIT_SEED}"


def _folder(data_dir: Path | None, download: bool) -> Path:
    base = files.base_dir(data_dir)
    how = (f"get the 16x16 Downsampled ImageNet (Imagenet16_train and Imagenet16_val) from image-net.org "
           f"(needs a login, so download=True cannot fetch it) and unpack train_data_batch_1..10 and val_data "
           f"into {base / 'ImageNet16'}")
    for folder in (base / "ImageNet16", base):
        present = [n for n in (*TRAIN, VALID) if (folder / n).is_file()]
        if len(present) == len(TRAIN) + 1:
            return folder
        if present:
            missing = sorted(set(TRAIN + (VALID,)) - set(present))
            raise UserError(f"{folder} has only part of ImageNet16 (missing {', '.join(missing)}); {how}")
    raise UserError(f"ImageNet16 not found (looked in {base / 'ImageNet16'} and {base}); {how}")


def _read_kept(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch, filtered to classes 1..120 (done per batch: the full train set is ~1 GB)."""
    data, labels = files.batch_arrays(files.safe_unpickle(path.read_bytes(), str(path)), "labels", 768, str(path))
    if labels.size and (labels.min() < 1 or labels.max() > 1000):
        raise UserError(f"{path}: labels outside 1..1000: not a downsampled-ImageNet batch; replace it with the "
                        "official file")
    keep = labels <= KEEP_CLASSES
    return data[keep].reshape(-1, 3, 16, 16), labels[keep] - 1


def load(data_dir: Path | None, download: bool, device: str | torch.device = "cpu", *, halves=None) -> Dataset:
    """ImageNet16-120 with the fixed split rule (see the module docstring)."""
    folder = _folder(data_dir, download)
    parts = [_read_kept(folder / n) for n in TRAIN]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    val_x, val_y = _read_kept(folder / VALID)
    if halves is None:
        valid, test = stratified_split(val_y, (0.5, 0.5), SPLIT_SEED)
        rule = RULE
    else:  # xvalid, xtest index the 6,000 kept val images in file order, as NATS-Bench's ImageNet16
        valid, test = halves.halves(len(val_y))
        rule = f"labels 1..120 -> 0..119; {halves.rule}"
    splits = {"train": make_split(train_x, train_y), "valid": make_split(val_x, val_y, valid),
              "test": make_split(val_x, val_y, test)}
    return make_dataset(NAME, rule, splits, num_classes=KEEP_CLASSES, flip=True, device=device)
