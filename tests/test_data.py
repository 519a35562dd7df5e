"""Data pipeline: dataset readers (real formats, tiny files written here), split rules, batches."""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spaces.errors import UserError
from trainables.data import (
    DATASETS,
    Dataset,
    Split,
    batches,
    cifar,
    fashion,
    files,
    imagenet16,
    iterate_batches,
    load_dataset,
)
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
    def rows(images: np.ndarray, lab: np.ndarray) -> list[bytes]:
        return sorted(map(bytes, np.concatenate([images.reshape(len(images), -1), lab[:, None].astype(np.uint8)], 1)))

    assert rows(ours, labels) == rows(expected, bunch.target)


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


def test_batches_do_not_depend_on_chunking(digits: Dataset, monkeypatch) -> None:
    whole = _batches(digits, digits.train, 5, shuffle=True, augment=True, batch_size=64)
    monkeypatch.setattr(batches, "_CHUNK_PIXELS", 64 * 64)  # one 64-image batch per chunk
    chunked = _batches(digits, digits.train, 5, shuffle=True, augment=True, batch_size=64)
    assert len(whole) == len(chunked) == 15
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(whole, chunked))


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


# ---------------------------------------------------------------- tiny files in the real formats
def _unique_rows(n: int, width: int, start: int) -> np.ndarray:
    """uint8 [n, width] rows whose first 3 bytes spell a global id, so splits can be checked for overlap."""
    rng = np.random.default_rng(start)
    rows = rng.integers(0, 256, (n, width), dtype=np.uint8)
    ids = np.arange(start, start + n)
    rows[:, 0], rows[:, 1], rows[:, 2] = ids >> 16, (ids >> 8) & 255, ids & 255
    return rows


def _ids(split: Split) -> set[int]:
    flat = split.images.reshape(len(split), -1)[:, :3].long()
    return set((flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2]).tolist())


def _assert_disjoint(ds: Dataset) -> None:
    seen: set[int] = set()
    for split in ds.splits().values():
        ids = _ids(split)
        assert len(ids) == len(split) and not ids & seen
        seen |= ids


def _write_idx(path, array: np.ndarray, gz: bool = True) -> None:
    header = (0x800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def _write_fashion(folder, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, per_class, start in (("train", 6, 0), ("t10k", 2, 1000)):
        labels = np.repeat(np.arange(10), per_class)
        images = _unique_rows(len(labels), 784, start).reshape(-1, 28, 28)
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)


@pytest.fixture
def no_system_fashion(monkeypatch, tmp_path):
    """Hide /usr/share/datasets/fashion-mnist so tests see only what they wrote."""
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "no-system-copy")


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_reads_idx_files(tmp_path, no_system_fashion, gz: bool) -> None:
    _write_fashion(tmp_path, gz)
    ds = load_dataset("fashion-mnist", tmp_path)
    assert [len(s) for s in (ds.train, ds.valid, ds.test)] == [50, 10, 20]
    assert ds.train.images.shape[1:] == (1, 28, 28)
    assert (ds.in_channels, ds.image_size, ds.crop_padding, ds.flip, ds.num_classes) == (1, 28, 3, True, 10)
    assert torch.bincount(ds.valid.labels, minlength=10).tolist() == [1] * 10
    _assert_disjoint(ds)
    assert load_dataset("fashion-mnist", tmp_path).fingerprint == ds.fingerprint


@pytest.mark.skipif(not fashion.SYSTEM_DIR.is_dir(), reason="package dataset-fashion-mnist not installed")
def test_fashion_system_copy_has_the_documented_splits(tmp_path) -> None:
    ds = load_dataset("fashion-mnist", tmp_path)  # empty data_dir -> falls back to the system copy
    assert [len(s) for s in (ds.train, ds.valid, ds.test)] == [50000, 10000, 10000]
    assert torch.bincount(ds.valid.labels).tolist() == [1000] * 10
    assert abs(ds.mean[0] - 0.286) < 0.002


def test_fashion_missing_partial_truncated_or_foreign_files(tmp_path, no_system_fashion) -> None:
    with pytest.raises(UserError, match=r"fashion-mnist not found \(looked in .*dataset-fashion-mnist"):
        load_dataset("fashion-mnist", tmp_path)
    _write_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="only part of fashion-mnist.*t10k-labels-idx1-ubyte"):
        load_dataset("fashion-mnist", tmp_path)
    _write_fashion(tmp_path)
    blob = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UserError, match="truncated"):
        load_dataset("fashion-mnist", tmp_path)
    _write_fashion(tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((60, 784)))  # 2-d: a labels-like file
    with pytest.raises(UserError, match="not an IDX file of 3-d unsigned bytes.*holds something else"):
        load_dataset("fashion-mnist", tmp_path)


def test_fashion_download_verifies_md5(tmp_path, no_system_fashion, monkeypatch) -> None:
    source = tmp_path / "mirror"
    _write_fashion(source)
    md5s = {stem: files.md5_of(source / f"{stem}.gz") for stem in fashion.FILES}
    monkeypatch.setattr(fashion, "MIRRORS", (source.as_uri() + "/",))
    monkeypatch.setattr(fashion, "FILES", md5s)
    ds = load_dataset("fashion-mnist", tmp_path / "data", download=True)
    assert len(ds.train) == 50 and (tmp_path / "data" / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file()

    monkeypatch.setattr(fashion, "FILES", {**md5s, "t10k-images-idx3-ubyte": "0" * 32})
    with pytest.raises(UserError, match="checksum mismatch"):
        load_dataset("fashion-mnist", tmp_path / "other", download=True)
    target = tmp_path / "other" / "fashion-mnist"
    assert not (target / "t10k-images-idx3-ubyte.gz").exists()
    assert not list(target.glob("*.part"))


def _pickled_batch(data: np.ndarray, labels: np.ndarray, label_key: str, bytes_keys: bool) -> bytes:
    entry = {"data": data, label_key: labels.tolist(), "batch_label": "tiny"}
    if bytes_keys:  # Python 2 pickles decode to str keys, Python 3 writers may leave bytes
        entry = {k.encode(): v for k, v in entry.items()}
    return pickle.dumps(entry, protocol=2)


def _cifar_members(release, per_class_train: int, per_class_test: int, bytes_keys: bool = False) -> dict[str, bytes]:
    k = release.num_classes
    members, start = {}, 0
    names = [(n, per_class_train) for n in release.train] + [(n, per_class_test) for n in release.test]
    for name, per_class in names:
        labels = np.tile(np.arange(k), per_class)
        members[name] = _pickled_batch(_unique_rows(len(labels), 3072, start), labels, release.label_key, bytes_keys)
        start += len(labels)
    members[release.meta] = pickle.dumps({release.meta_key: [f"class{i}" for i in range(k)]}, protocol=2)
    return members


def _write_tar(path, folder: str, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def _write_folder(folder, members: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in members.items():
        (folder / name).write_bytes(blob)


def test_cifar10_archive_and_folder_give_the_documented_splits(tmp_path) -> None:
    members = _cifar_members(cifar.CIFAR10, per_class_train=2, per_class_test=3)
    _write_tar(tmp_path / "a" / "cifar-10-python.tar.gz", "cifar-10-batches-py", members)
    _write_folder(tmp_path / "b" / "cifar-10-batches-py", members)
    valid = load_dataset("cifar10-valid", tmp_path / "a")
    assert [len(s) for s in (valid.train, valid.valid, valid.test)] == [50, 50, 30]
    assert torch.bincount(valid.train.labels).tolist() == [5] * 10
    assert (valid.in_channels, valid.image_size, valid.crop_padding, valid.flip) == (3, 32, 4, True)
    _assert_disjoint(valid)
    assert load_dataset("cifar10-valid", tmp_path / "b").fingerprint == valid.fingerprint
    full = load_dataset("cifar10", tmp_path / "b")
    assert full.valid is None and [len(full.train), len(full.test)] == [100, 30]
    assert full.fingerprint != valid.fingerprint
    # Row layout: R, G, B planes of 32x32 -> [3, 32, 32].
    first = pickle.loads(members["data_batch_1"])["data"][0]
    assert torch.equal(full.train.images[0], torch.from_numpy(first.reshape(3, 32, 32)))


def test_cifar100_splits_its_test_set(tmp_path) -> None:
    _write_folder(tmp_path / "cifar-100-python", _cifar_members(cifar.CIFAR100, 1, 2, bytes_keys=True))
    ds = load_dataset("cifar100", tmp_path)
    assert [len(s) for s in (ds.train, ds.valid, ds.test)] == [100, 100, 100]
    assert ds.num_classes == 100 and torch.bincount(ds.valid.labels).tolist() == [1] * 100
    _assert_disjoint(ds)


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_pickle_that_runs_code_is_refused(tmp_path) -> None:
    members = _cifar_members(cifar.CIFAR10, 1, 1)
    exploit = _Exploit()
    exploit.marker = tmp_path / "pwned"
    members["data_batch_3"] = pickle.dumps({"data": exploit, "labels": []}, protocol=2)
    _write_folder(tmp_path / "cifar-10-batches-py", members)
    with pytest.raises(UserError, match="data_batch_3 is not a plain data pickle.*refused global"):
        load_dataset("cifar10", tmp_path)
    assert not exploit.marker.exists()


def test_cifar_missing_truncated_or_foreign_files(tmp_path) -> None:
    with pytest.raises(UserError, match=r"CIFAR-10 not found \(looked for .*cifar-10-python.tar.gz"):
        load_dataset("cifar10", tmp_path)
    members = _cifar_members(cifar.CIFAR10, 1, 1)
    archive = tmp_path / "cifar-10-python.tar.gz"
    _write_tar(archive, "cifar-10-batches-py", members)
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(UserError, match="truncated or corrupt.*download=True"):
        load_dataset("cifar10", tmp_path)
    # CIFAR-100's meta where CIFAR-10 is expected.
    foreign = dict(members, **{"batches.meta": pickle.dumps({"label_names": ["x"] * 100})})
    _write_folder(tmp_path / "f" / "cifar-10-batches-py", foreign)
    with pytest.raises(UserError, match="does not describe 10 classes.*holds something else"):
        load_dataset("cifar10", tmp_path / "f")
    # 16x16 rows in a CIFAR batch.
    members["test_batch"] = _pickled_batch(np.zeros((4, 768), np.uint8), np.zeros(4, np.int64), "labels", False)
    _write_folder(tmp_path / "g" / "cifar-10-batches-py", members)
    with pytest.raises(UserError, match=r"should be uint8 \[N, 3072\]"):
        load_dataset("cifar10", tmp_path / "g")


def test_cifar_download_verifies_md5(tmp_path, monkeypatch) -> None:
    served = tmp_path / "served.tar.gz"
    _write_tar(served, "cifar-10-batches-py", _cifar_members(cifar.CIFAR10, 1, 1))
    release = dataclasses.replace(cifar.CIFAR10, url=served.as_uri(), md5=files.md5_of(served))
    monkeypatch.setattr(cifar, "CIFAR10", release)
    ds = load_dataset("cifar10", tmp_path / "data", download=True)
    assert len(ds.train) == 50 and (tmp_path / "data" / "cifar-10-python.tar.gz").is_file()
    # An archive already there is verified too when download=True.
    monkeypatch.setattr(cifar, "CIFAR10", dataclasses.replace(release, md5="f" * 32))
    with pytest.raises(UserError, match="checksum mismatch.*delete it"):
        load_dataset("cifar10", tmp_path / "data", download=True)


def test_imagenet16_keeps_120_classes(tmp_path) -> None:
    folder = tmp_path / "ImageNet16"
    folder.mkdir()
    rng = np.random.default_rng(0)
    start = 0
    for name in (*imagenet16.TRAIN, imagenet16.VALID):
        per_class = 2 if name == imagenet16.VALID else 1
        labels = np.concatenate([np.tile(np.arange(1, 121), per_class), rng.integers(121, 1001, 7)])
        if name != imagenet16.VALID:
            labels = labels[rng.permutation(len(labels))[:40]]  # a few of each file
        (folder / name).write_bytes(_pickled_batch(_unique_rows(len(labels), 768, start), labels, "labels", False))
        start += len(labels)
    ds = load_dataset("ImageNet16-120", tmp_path)
    assert ds.num_classes == 120 and ds.train.images.shape[1:] == (3, 16, 16)
    assert (ds.crop_padding, ds.flip) == (2, True)
    assert [len(ds.valid), len(ds.test)] == [120, 120]
    for split in ds.splits().values():
        assert 0 <= split.labels.min() and split.labels.max() <= 119
    assert 0 < len(ds.train) < 400
    _assert_disjoint(ds)


def test_imagenet16_missing_files_say_how_to_get_them(tmp_path) -> None:
    with pytest.raises(UserError, match="ImageNet16 not found.*image-net.org"):
        load_dataset("ImageNet16-120", tmp_path, download=True)
    (tmp_path / "ImageNet16").mkdir()
    (tmp_path / "ImageNet16" / "val_data").write_bytes(b"")
    with pytest.raises(UserError, match="only part of ImageNet16.*train_data_batch_1"):
        load_dataset("ImageNet16-120", tmp_path)
