"""CIFAR-10 / CIFAR-100 in the official "python version" format, and the NATS-Bench split rules.

Format: ``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/{data_batch_1..5, test_batch,
batches.meta}``; ``cifar-100-python.tar.gz`` holds ``cifar-100-python/{train, test, meta}``. Each
batch is a pickled dict: ``data`` uint8 [N, 3072] (R, G, B planes of 32x32, row-major) and
``labels`` (CIFAR-10) / ``fine_labels`` (CIFAR-100), read with ``files.safe_unpickle`` (no code
runs). Looked for in ``data_dir`` as the extracted folder, as the loose batch files, or as the
archive (read without extracting); ``download=True`` fetches the archive from the official address
into ``data_dir`` (default ``files.DEFAULT_DATA_DIR``) and verifies its MD5, and also verifies an
archive already there.

Splits (NATS-Bench used fixed split files that are not shipped with this project; here each rule
is a stratified, seeded permutation, ``SPLIT_SEED`` = 0, so every class is split evenly):
- ``cifar10-valid``: the 50K train set -> 25K train + 25K valid (2,500 + 2,500 per class); test =
  the official 10K test set (NATS-Bench's "ori-test").
- ``cifar10``: train = the 50K train set, no valid split, test = the 10K test set.
- ``cifar100``: train = the 50K train set; the 10K test set -> 5K valid + 5K test (50 + 50 per class).
``load_cifar10_valid`` / ``load_cifar100`` take ``halves`` (a ``splits.NatsHalves``) to use
NATS-Bench's split file instead (what one-shot searches do, ``splits.search_dataset``).
Flip: on (NATS-Bench recipes flip CIFAR). Crop padding 4.
"""

from __future__ import annotations

import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spaces.errors import UserError

from . import files
from .assemble import SPLIT_SEED, make_dataset, make_split, stratified_split
from .types import Dataset


@dataclass(frozen=True)
class _Release:
    """One official CIFAR release: where its files are and how its batches are keyed."""

    title: str
    folder: str
    archive: str
    url: str
    md5: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    meta_key: str
    label_key: str
    num_classes: int


CIFAR10 = _Release(
    "CIFAR-10", "cifar-10-batches-py", "cifar-10-python.tar.gz",
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
    tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta", "label_names", "labels", 10,
)
CIFAR100 = _Release(
    "CIFAR-100", "cifar-100-python", "cifar-100-python.tar.gz",
    "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e288f181ebe0f",
    ("train",), ("test",), "meta", "fine_label_names", "fine_labels", 100,
)


def _how(release: _Release, where: Path) -> str:
    return (f"download {release.url} into {where} (or pass download=True), or point data_dir at the "
            f"folder that holds {release.archive} or {release.folder}/")


def _again(release: _Release) -> str:
    """What to do about a damaged archive, for a command line (no download flag) and for Python."""
    return f"delete it and download {release.url} again (from Python: load_dataset(..., download=True))"


def _read_members(release: _Release, data_dir: Path | None, download: bool) -> tuple[dict[str, bytes], str]:
    """The raw bytes of every batch (and the meta file if present), and where they came from."""
    base = files.base_dir(data_dir)
    names = release.train + release.test
    for folder in (base / release.folder, base):
        if all((folder / n).is_file() for n in names):
            out = {n: (folder / n).read_bytes() for n in (*names, release.meta) if (folder / n).is_file()}
            return out, str(folder)
        if folder == base / release.folder and folder.is_dir():
            missing = [n for n in names if not (folder / n).is_file()]
            raise UserError(f"{folder} lacks {', '.join(missing)}: the folder holds something else; "
                            f"{_how(release, base)}")
    archive = base / release.archive
    if archive.is_file():
        if download:
            files.verify_md5(archive, release.md5)
    elif download:
        files.download((release.url,), archive, release.md5)
    else:
        raise UserError(
            f"{release.title} not found (looked for {base / release.folder}/, the batch files in {base}, "
            f"and {archive}); {_how(release, base)}"
        )
    return _read_archive(release, archive), str(archive)


def _read_archive(release: _Release, archive: Path) -> dict[str, bytes]:
    wanted = {f"{release.folder}/{n}": n for n in (*release.train, *release.test, release.meta)}
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # one sequential pass: random access into a .gz re-decompresses
                if member.name in wanted and member.isfile():
                    out[wanted[member.name]] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise UserError(f"{archive} is truncated or corrupt ({exc}); {_again(release)}") from None
    missing = [n for n in (*release.train, *release.test) if n not in out]
    if missing:
        raise UserError(
            f"{archive} lacks {release.folder}/{', '.join(missing)}: it is not the official {release.archive}; "
            f"{_again(release)}"
        )
    return out


def _batches(release: _Release, raw: dict[str, bytes], names: tuple[str, ...],
             where: str) -> tuple[np.ndarray, np.ndarray]:
    parts = [files.batch_arrays(files.safe_unpickle(raw[n], f"{where}:{n}"), release.label_key, 3072, f"{where}:{n}")
             for n in names]
    images = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() >= release.num_classes):
        raise UserError(f"{where}: labels outside 0..{release.num_classes - 1}: these are not {release.title} batches")
    return images, labels


def _load_release(release: _Release, data_dir: Path | None, download: bool):
    raw, where = _read_members(release, data_dir, download)
    if release.meta in raw:  # catches e.g. CIFAR-100 files where CIFAR-10 was asked for
        names = files.safe_unpickle(raw[release.meta], f"{where}:{release.meta}").get(release.meta_key)
        if not isinstance(names, list) or len(names) != release.num_classes:
            raise UserError(f"{where}:{release.meta} does not describe {release.num_classes} classes: the folder "
                            f"holds something else than {release.title}; {_how(release, files.base_dir(data_dir))}")
    return _batches(release, raw, release.train, where), _batches(release, raw, release.test, where)


def load_cifar10_valid(data_dir: Path | None, download: bool, device: str | torch.device = "cpu",
                       *, halves=None) -> Dataset:
    (train_x, train_y), (test_x, test_y) = _load_release(CIFAR10, data_dir, download)
    if halves is None:
        train, valid = stratified_split(train_y, (0.5, 0.5), SPLIT_SEED)
        rule = f"train set stratified train/valid 1/2 + 1/2, test set = test, splitmix64 seed {SPLIT_SEED}"
    else:  # cifar-split.txt: train, valid
        train, valid = halves.halves(len(train_y))
        rule = f"{halves.rule}, test set = test"
    splits = {"train": make_split(train_x, train_y, train), "valid": make_split(train_x, train_y, valid),
              "test": make_split(test_x, test_y)}
    return make_dataset("cifar10-valid", rule, splits, num_classes=10, flip=True, device=device)


def load_cifar10(data_dir: Path | None, download: bool, device: str | torch.device = "cpu") -> Dataset:
    (train_x, train_y), (test_x, test_y) = _load_release(CIFAR10, data_dir, download)
    splits = {"train": make_split(train_x, train_y), "valid": None, "test": make_split(test_x, test_y)}
    return make_dataset("cifar10", "train set = train, test set = test", splits, num_classes=10, flip=True,
                        device=device)


def load_cifar100(data_dir: Path | None, download: bool, device: str | torch.device = "cpu",
                  *, halves=None) -> Dataset:
    (train_x, train_y), (test_x, test_y) = _load_release(CIFAR100, data_dir, download)
    if halves is None:
        valid, test = stratified_split(test_y, (0.5, 0.5), SPLIT_SEED)
        rule = f"train set = train, test set stratified valid/test 1/2 + 1/2, splitmix64 seed {SPLIT_SEED}"
    else:  # cifar100-test-split.txt: xvalid, xtest
        valid, test = halves.halves(len(test_y))
        rule = f"train set = train, {halves.rule}"
    splits = {"train": make_split(train_x, train_y), "valid": make_split(test_x, test_y, valid),
              "test": make_split(test_x, test_y, test)}
    return make_dataset("cifar100", rule, splits, num_classes=100, flip=True, device=device)
