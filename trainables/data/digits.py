"""digits: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), always available.

Pixels 0..16 are scaled to uint8 by round(v * 255 / 16). Split rule: stratified 50/25/25
train/valid/test with ``SPLIT_SEED`` (0) -> 901 / 449 / 447 images. No horizontal flip: a
mirrored 2, 3, 4, 5, 7 or 9 is not the same digit. Crop padding 1 (image_size // 8).
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from .assemble import SPLIT_SEED, make_dataset, make_split, stratified_split
from .types import Dataset

NAME = "digits"
RULE = f"stratified train/valid/test 0.5/0.25/0.25, splitmix64 seed {SPLIT_SEED}"


def _raw() -> tuple[np.ndarray, np.ndarray]:
    """(images float [N, 8, 8] in 0..16, labels [N]) exactly as ``sklearn.datasets.load_digits``.

    Importing scikit-learn costs ~2 s (it pulls in scipy), once per Ray worker of the benchmark
    builder; the data is one small CSV inside the sklearn package, so it is read directly when
    found, and through sklearn otherwise. ``tests/test_data.py`` checks both give the same arrays.
    """
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    if spec is not None and spec.submodule_search_locations:
        csv = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
        if csv.is_file():
            with gzip.open(csv, "rt") as fh:
                table = np.loadtxt(fh, delimiter=",")
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64)


def load(device: str | torch.device = "cpu") -> Dataset:
    """The digits dataset with the fixed stratified split (see the module docstring)."""
    pixels, labels = _raw()
    images = np.floor(pixels * (255.0 / 16.0) + 0.5).astype(np.uint8)[:, None]  # [N, 1, 8, 8]
    train, valid, test = stratified_split(labels, (0.5, 0.25, 0.25), SPLIT_SEED)
    splits = {k: make_split(images, labels, idx) for k, idx in (("train", train), ("valid", valid), ("test", test))}
    return make_dataset(NAME, RULE, splits, num_classes=10, flip=False, device=device)
