"""Split rules, statistics and the fingerprint: what turns raw arrays into a ``Dataset``.

Split permutations do not use numpy's or torch's RNG streams (neither promises the same stream
across versions); they sort indices by a splitmix64 hash of (seed, index), which any version of
anything computes the same way. So a split rule written in the docs is the whole specification.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from .types import Dataset, Split

# The one fixed seed of every split rule in this package (see each dataset's docstring).
SPLIT_SEED = 0

_U64 = np.uint64


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Vigna's splitmix64 finaliser, vectorised; uint64 arithmetic wraps as intended."""
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def seeded_order(indices: np.ndarray, seed: int = SPLIT_SEED) -> np.ndarray:
    """``indices`` reordered by splitmix64(seed * 2**32 + index): a fixed, portable shuffle."""
    keys = _splitmix64((_U64(seed) << _U64(32)) + indices.astype(np.uint64))
    return indices[np.argsort(keys, kind="stable")]


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int = SPLIT_SEED) -> list[np.ndarray]:
    """Split the indices of ``labels`` into len(fractions) parts, class by class.

    Within each class the members are put in ``seeded_order`` and cut at floor(cum_fraction * n
    + 0.5), so every class is split in the same proportions (exactly, where n allows it: CIFAR-10's
    5,000 per class -> 2,500 + 2,500). Each part is returned sorted (file order).
    """
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    bounds = np.cumsum([0.0, *fractions])
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        members = seeded_order(np.flatnonzero(labels == cls), seed)
        cuts = np.floor(bounds * len(members) + 0.5).astype(np.int64)
        for k in range(len(fractions)):
            parts[k].append(members[cuts[k] : cuts[k + 1]])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std in 0..1 units, exact, from 256-bin histograms.

    Histograms instead of ``images.float().mean()`` because the float copy of CIFAR's train split
    would be 600 MB, and float32 sums over 50M values drift.
    """
    values = np.arange(256, dtype=np.float64)
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).double().numpy()
        n = hist.sum()
        mean = (hist * values).sum() / n
        var = max((hist * values**2).sum() / n - mean**2, 0.0)
        means.append(float(mean / 255.0))
        stds.append(float(np.sqrt(var) / 255.0))
    return tuple(means), tuple(stds)


def fingerprint(name: str, rule: str, splits: dict[str, Split]) -> str:
    """Short sha256 over the name, the split rule and every split's shape, bytes and labels."""
    h = hashlib.sha256()
    h.update(f"{name}\n{rule}\n".encode())
    for key in ("train", "valid", "test"):
        split = splits.get(key)
        if split is None:
            h.update(f"{key}:none\n".encode())
            continue
        h.update(f"{key}:{list(split.images.shape)}\n".encode())
        h.update(memoryview(split.images.numpy()).cast("B"))
        h.update(split.labels.numpy().astype("<i8").tobytes())
    return h.hexdigest()[:16]


def make_split(images: np.ndarray, labels: np.ndarray, index: np.ndarray | None = None) -> Split:
    """A ``Split`` from numpy arrays (optionally a subset), as owned contiguous tensors."""
    if index is not None:
        images, labels = images[index], labels[index]
    return Split(_owned(images, np.uint8), _owned(labels, np.int64))


def _owned(array: np.ndarray, dtype: type) -> torch.Tensor:
    # Readers hand out read-only views of file buffers; tensors must own writable memory.
    array = np.ascontiguousarray(array, dtype=dtype)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def make_dataset(
    name: str,
    rule: str,
    splits: dict[str, Split | None],
    *,
    num_classes: int,
    flip: bool,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Compute statistics and fingerprint on the CPU copy, then move the splits to ``device``."""
    train = splits["train"]
    assert train is not None
    present = {k: v for k, v in splits.items() if v is not None}
    mean, std = channel_stats(train.images)
    fp = fingerprint(name, rule, present)
    moved = {k: (None if v is None else _to(v, device)) for k, v in splits.items()}
    _, channels, height, _ = train.images.shape
    return Dataset(
        name=name,
        train=moved["train"],
        valid=moved.get("valid"),
        test=moved.get("test"),
        num_classes=num_classes,
        in_channels=int(channels),
        image_size=int(height),
        mean=mean,
        std=std,
        crop_padding=int(height) // 8,
        flip=flip,
        fingerprint=fp,
    )


def _to(split: Split, device: str | torch.device) -> Split:
    if split.images.device == torch.device(device):
        return split
    return Split(split.images.to(device).contiguous(), split.labels.to(device))
