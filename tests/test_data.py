"""Data pipeline: dataset readers (real formats, tiny files written here), split rules, batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spaces.errors import UserError
from trainables.data import DATASETS, Dataset, Split, iterate_batches, load_dataset
from trainables.data.assemble import channel_stats, seeded_order, stratified_split


# ---------------------------------------------------------------- split rules (pinned: a change
# here silently changes every split, so the values are written out)
def test_seeded_order_is_pinned() -> None:
    assert seeded_order(np.arange(10)).tolist() == [3, 5, 7, 4, 1, 2, 8, 9, 6, 0]


def test_stratified_split_is_disjoint_exhaustive_and_per_class() -> None:
    labels = np.repeat(np.arange(4), 100)
    parts = stratified_split(labels, (0.5, 0.25, 0.25))
    assert [len(p) for p in parts] == [200, 100, 100]
    joined = np.concatenate(parts)
    assert len(np.unique(joined)) == len(labels) == len(joined)
    for p in parts:
        counts = np.bincount(labels[p], minlength=4)
        assert (counts == counts[0]).all()


def test_channel_stats_match_float_computation() -> None:
    images = torch.randint(0, 256, (20, 3, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = channel_stats(images)
    x = images.double() / 255
    assert np.allclose(mean, x.mean(dim=(0, 2, 3)).numpy())
    assert np.allclose(std, x.std(dim=(0, 2, 3), unbiased=False).numpy())


# ---------------------------------------------------------------- digits
@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_digits_shapes_splits_and_fingerprint(digits: Dataset) -> None:
    assert (digits.num_classes, digits.in_channels, digits.image_size) == (10, 1, 8)
    assert (digits.crop_padding, digits.flip) == (1, False)
    assert [len(s) for s in (digits.train, digits.valid, digits.test)] == [901, 449, 447]
    for split in digits.splits().values():
        assert split.images.dtype == torch.uint8 and split.images.is_contiguous()
        assert split.labels.dtype == torch.int64
        assert set(split.labels.tolist()) == set(range(10))
    # Pinned: changes when the data, the scaling or the split rule changes.
    assert digits.fingerprint == "977f2a01a760bd26"
    assert load_dataset("digits").fingerprint == digits.fingerprint
    assert 0.0 < digits.mean[0] < 1.0 and 0.0 < digits.std[0] < 1.0


def test_digits_are_sklearns_digits(digits: Dataset) -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    expected = np.floor(bunch.images * 255 / 16 + 0.5).astype(np.uint8)
    ours = torch.cat([s.images for s in digits.splits().values()])[:, 0].numpy()
    labels = torch.cat([s.labels for s in digits.splits().values()]).numpy()
    # Same multiset of (image, label) rows: the splits partition sklearn's data.
    key = lambda im, lab: sorted(map(bytes, np.concatenate([im.reshape(len(im), -1), lab[:, None].astype(np.uint8)], 1)))
    assert key(ours, labels) == key(expected, bunch.target)


def test_unknown_dataset_name_says_what_exists() -> None:
    with pytest.raises(UserError, match="unknown dataset 'mnist'.*digits"):
        load_dataset("mnist")
    assert "digits" in DATASETS


# ---------------------------------------------------------------- batches
def _batches(ds: Dataset, split: Split, seed: int | None, **kw):
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    return list(iterate_batches(split, kw.pop("batch_size", 256), dataset=ds, generator=gen, **kw))


def test_eval_batches_are_normalised_in_order(digits: Dataset) -> None:
    batches = _batches(digits, digits.valid, None, shuffle=False, augment=False, batch_size=100)
    assert [len(y) for _, y in batches] == [100, 100, 100, 100, 49]
    x = torch.cat([b[0] for b in batches])
    expected = (digits.valid.images.float() / 255 - digits.mean[0]) / digits.std[0]
    assert x.dtype == torch.float32 and x.shape == (449, 1, 8, 8)
    assert torch.allclose(x, expected, atol=1e-5)
    assert torch.equal(torch.cat([b[1] for b in batches]), digits.valid.labels)
    dropped = _batches(digits, digits.valid, None, shuffle=False, augment=False, batch_size=100, drop_last=True)
    assert [len(y) for _, y in dropped] == [100] * 4


def test_same_generator_state_gives_identical_batches(digits: Dataset) -> None:
    a = _batches(digits, digits.train, 7, shuffle=True, augment=True)
    b = _batches(digits, digits.train, 7, shuffle=True, augment=True)
    c = _batches(digits, digits.train, 8, shuffle=True, augment=True)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])
    # A shuffled epoch is a permutation of the split.
    assert sorted(torch.cat([y for _, y in a]).tolist()) == sorted(digits.train.labels.tolist())


def _reference_augment(images: torch.Tensor, gen: torch.Generator, pad: int, flip: bool):
    """Per-image torchvision-style RandomCrop(padding) -> RandomHorizontalFlip with the draws in the
    documented order: permutation, dy, dx, flip coins."""
    n, _, h, w = images.shape
    order = torch.randperm(n, generator=gen)
    dy = torch.randint(2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(2 * pad + 1, (n,), generator=gen)
    coins = torch.rand(n, generator=gen) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    out = []
    for k in range(n):
        img = F.pad(images[order[k]], (pad, pad, pad, pad))[:, dy[k] : dy[k] + h, dx[k] : dx[k] + w]
        out.append(img.flip(-1) if coins[k] else img)
    return torch.stack(out), order


@pytest.mark.parametrize("flip", [False, True])
def test_augmentation_equals_per_image_crop_and_flip(flip: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (37, 3, 16, 16), dtype=torch.uint8, generator=gen)
    split = Split(images, torch.arange(37))
    ds = Dataset("toy", split, None, None, 37, 3, 16, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), 2, flip, "x")
    got = _batches(ds, split, 11, shuffle=True, augment=True, batch_size=10)
    expected, order = _reference_augment(images, torch.Generator().manual_seed(11), pad=2, flip=flip)
    mean = torch.tensor(ds.mean).view(1, 3, 1, 1)
    std = torch.tensor(ds.std).view(1, 3, 1, 1)
    assert torch.allclose(torch.cat([x for x, _ in got]), (expected.float() / 255 - mean) / std, atol=1e-5)
    assert torch.equal(torch.cat([y for _, y in got]), order)


def test_bad_batch_arguments_are_user_errors(digits: Dataset) -> None:
    with pytest.raises(UserError, match="batch_size must be a positive integer"):
        _batches(digits, digits.train, 0, shuffle=True, augment=False, batch_size=0)
    with pytest.raises(UserError, match="need a torch.Generator"):
        _batches(digits, digits.train, None, shuffle=True, augment=False)
