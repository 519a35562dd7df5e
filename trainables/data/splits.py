"""NATS-Bench's own split files, and the datasets one-shot searches train on.

NATS-Bench fixed its splits in files (AutoDL-Projects ``configs/nas-benchmark/``):
``cifar-split.txt`` halves the CIFAR-10 train set into ``train`` / ``valid`` (25K + 25K);
``cifar100-test-split.txt`` and ``imagenet-16-120-test-split.txt`` halve the CIFAR-100 test set
and the ImageNet16-120 val set into ``xvalid`` / ``xtest`` (5K + 5K, 3K + 3K). The benchmark's
x-valid and x-test accuracies are measured on those halves. The project's own split rule
(``assemble.stratified_split``) halves the same sets differently, so about half of its "valid"
images lie in NATS-Bench's x-test: a one-shot search that fits and ranks on them would see the
images the benchmark scores. ``search_dataset`` therefore loads CIFAR-100 and ImageNet16-120
with NATS-Bench's file, and refuses without it; CIFAR-10's valid split comes from the train set,
disjoint from the test set either way, so ``cifar-split.txt`` is used where present and the
project's rule otherwise.

File format (written by xautodl's ``configure2str``, read by its ``load_config``): one JSON
object; each key maps to a pair ``[type, values]``, here ``["int", ["0", "5", ...]]`` — the
type name and the indices as decimal strings (into the official file order of the set). Split
files are looked for in ``data_dir`` (the folder the dataset's files are in).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spaces.errors import UserError

from . import cifar, imagenet16
from .files import base_dir
from .types import Dataset

SOURCE = "configs/nas-benchmark/ of https://github.com/D-X-Y/AutoDL-Projects"


@dataclass(frozen=True)
class SplitFile:
    """Where one dataset's NATS-Bench split file is and which two keys halve which set."""

    filename: str
    first: str   # the half the project calls valid (NATS-Bench: valid / xvalid)
    second: str  # the other half (train for CIFAR-10; xtest elsewhere)
    of: str      # the set it halves, for messages


SPLIT_FILES: dict[str, SplitFile] = {
    "cifar10-valid": SplitFile("cifar-split.txt", "train", "valid", "the CIFAR-10 train set"),
    "cifar100": SplitFile("cifar100-test-split.txt", "xvalid", "xtest", "the CIFAR-100 test set"),
    "ImageNet16-120": SplitFile("imagenet-16-120-test-split.txt", "xvalid", "xtest", "the ImageNet16-120 val set"),
}
# Where the project's own halves would put benchmark-scored images into the search's valid split.
REQUIRED_FOR_SEARCH = ("cifar100", "ImageNet16-120")


def read_split_file(path: str | Path) -> dict[str, np.ndarray]:
    """Every key of a NATS-Bench split file as an int64 index array; UserError if malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is not a NATS-Bench split file ({exc}); copy it again from {SOURCE}") from None
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path}: a split file is a JSON object of key -> [\"int\", [indices]]; copy it again "
                        f"from {SOURCE}")
    out = {}
    for key, value in data.items():
        ok = isinstance(value, list) and len(value) == 2 and value[0] == "int" and isinstance(value[1], list)
        try:
            indices = np.array([int(v) for v in value[1]], dtype=np.int64) if ok else None
        except (TypeError, ValueError):
            indices = None
        if indices is None:
            raise UserError(f"{path}: key {key!r} is not [\"int\", [indices as strings]]; copy it again from {SOURCE}")
        out[key] = indices
    return out


@dataclass(frozen=True)
class NatsHalves:
    """The two halves one split file names; ``halves(n)`` checks them against the set's size."""

    path: Path
    spec: SplitFile
    first: np.ndarray
    second: np.ndarray
    digest: str

    @classmethod
    def read(cls, path: str | Path, spec: SplitFile) -> NatsHalves:
        path = Path(path)
        keys = read_split_file(path)
        missing = [k for k in (spec.first, spec.second) if k not in keys]
        if missing:
            raise UserError(f"{path} lacks the key(s) {missing} (it has {sorted(keys)}): it is not "
                            f"{spec.filename}; copy that file from {SOURCE}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return cls(path, spec, keys[spec.first], keys[spec.second], digest)

    def halves(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(first, second) as index arrays into a set of ``n`` images, file order."""
        both = np.concatenate([self.first, self.second])
        problem = None
        if not len(self.first) or not len(self.second):
            problem = "an empty half"
        elif both.min() < 0 or both.max() >= n:
            problem = f"indices outside 0..{n - 1}"
        elif len(np.unique(both)) != len(both):
            problem = "repeated indices or halves that overlap"
        if problem:
            raise UserError(f"{self.path} has {problem} for {self.spec.of} ({n} images): it belongs to "
                            f"another dataset; copy {self.spec.filename} from {SOURCE}")
        return self.first, self.second

    @property
    def rule(self) -> str:
        return (f"NATS-Bench split file {self.spec.filename} (sha256 {self.digest}): "
                f"{self.spec.first}/{self.spec.second} of {self.spec.of}")


def nats_halves(name: str, data_dir: str | Path | None) -> NatsHalves | None:
    """The parsed split file of dataset ``name`` in ``data_dir``, or None where it is absent."""
    spec = SPLIT_FILES.get(name)
    if spec is None:
        return None
    path = base_dir(None if data_dir is None else Path(data_dir).expanduser()) / spec.filename
    return NatsHalves.read(path, spec) if path.is_file() else None


@functools.lru_cache(maxsize=2)
def search_dataset(name: str, data_dir: str | None = None, device: str = "cpu") -> Dataset:
    """The dataset a one-shot search trains on (one copy per process): NATS-Bench's halves where
    its split file is in ``data_dir``; UserError for CIFAR-100 / ImageNet16-120 without it."""
    from . import load_dataset

    halves = nats_halves(name, data_dir)
    if halves is None and name in REQUIRED_FOR_SEARCH:
        spec = SPLIT_FILES[name]
        where = base_dir(None if data_dir is None else Path(data_dir).expanduser())
        raise UserError(
            f"a one-shot search on {name} needs NATS-Bench's split file {spec.filename} in {where}: without it "
            f"the search would fit and rank architectures on images of {spec.of} that the benchmark scores "
            f"(its xtest half). Copy {spec.filename} from {SOURCE} into {where}")
    if halves is None:
        return load_dataset(name, data_dir, device=device)
    root = None if data_dir is None else Path(data_dir).expanduser()
    loader = {"cifar10-valid": cifar.load_cifar10_valid, "cifar100": cifar.load_cifar100,
              "ImageNet16-120": imagenet16.load}[name]
    return loader(root, False, device, halves=halves)


__all__ = ["REQUIRED_FOR_SEARCH", "SPLIT_FILES", "NatsHalves", "nats_halves", "read_split_file", "search_dataset"]
