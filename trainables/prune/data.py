"""A documented subset of a dataset at a chosen resolution, for a pruning pipeline that must finish on a CPU.

``load_subset(name, data_dir, train=, valid=, test=, size=)`` keeps the first ``train`` / ``valid``
/ ``test`` images of each split of ``trainables.data.load_dataset(name)`` (the split rules are
stratified random permutations, so a prefix is a random, roughly class-balanced subset) and
resizes them to ``size`` x ``size`` by area averaging (``F.interpolate(mode="area")``, rounded
back to uint8). Statistics, crop padding (size // 8) and the fingerprint are those of the subset
(``assemble.make_dataset``), so two runs on the same subset share a fingerprint. None keeps a
split whole; ``size`` None keeps the resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spaces.errors import UserError
from trainables.data import Dataset, Split, load_dataset
from trainables.data.assemble import make_dataset


def _take(split: Split | None, n: int | None, size: int | None, name: str) -> Split | None:
    if split is None:
        return None
    if n is not None:
        if not (isinstance(n, int) and 1 <= n):
            raise UserError(f"the {name} subset must be a positive number of images, got {n!r}")
        if n > len(split):
            raise UserError(f"the {name} split has {len(split)} images, fewer than the {n} asked for")
    images, labels = split.images[:n].cpu(), split.labels[:n].cpu()
    if size is not None and size != images.shape[-1]:
        images = F.interpolate(images.float(), size=(size, size), mode="area").round().clamp(0, 255).to(torch.uint8)
    return Split(images.contiguous(), labels.clone())


def load_subset(name: str, data_dir: str | None = None, *, train: int | None = None, valid: int | None = None,
                test: int | None = None, size: int | None = None, device: str | torch.device = "cpu") -> Dataset:
    """The subset of ``name`` described in the module docstring."""
    if size is not None and not (isinstance(size, int) and size >= 8):
        raise UserError(f"the resolution must be an integer of at least 8 pixels, got {size!r}")
    full = load_dataset(name, data_dir)
    if (train, valid, test, size) == (None, None, None, None):
        return full if str(device) == "cpu" else load_dataset(name, data_dir, device=device)
    splits = {"train": _take(full.train, train, size, "train"), "valid": _take(full.valid, valid, size, "valid"),
              "test": _take(full.test, test, size, "test")}
    rule = f"{name} first {train}/{valid}/{test} of train/valid/test at {size or full.image_size}px (area)"
    return make_dataset(name, rule, splits, num_classes=full.num_classes, flip=full.flip, device=device)
