"""fashion-mnist: Zalando's 28x28 grey clothing images in the IDX format (60K train, 10K test).

Files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each gzipped (``.gz``, the published form) or not. Looked for in
``data_dir``, ``data_dir/fashion-mnist``, then ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu
package ``dataset-fashion-mnist``); with ``download=True`` the official files are fetched into
``data_dir/fashion-mnist`` (default data dir: ``files.DEFAULT_DATA_DIR``) and MD5-verified.

Split rule: the 60K train file -> stratified 5/6 train + 1/6 valid with ``SPLIT_SEED`` (0)
(50,000 + 10,000, exactly 5,000 + 1,000 per class); the 10K test file is the test split.
Horizontal flip: on (all ten classes are garments, shoes and bags whose mirror image is the same
class; the published Fashion-MNIST benchmarks use it). Crop padding 3 (image_size // 8).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from spaces.errors import UserError

from . import files
from .assemble import SPLIT_SEED, make_dataset, make_split, stratified_split
from .types import Dataset

NAME = "fashion-mnist"
RULE = f"train file stratified train/valid 5/6 + 1/6, test file = test, splitmix64 seed {SPLIT_SEED}"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
# Official files and their MD5 (of the .gz), as published by Zalando Research.
FILES = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_HOW = (
    "install the Debian/Ubuntu package dataset-fashion-mnist, put the four official "
    "*-ubyte.gz files in data_dir, or pass download=True"
)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _locate(data_dir: Path | None, download: bool) -> dict[str, Path]:
    """The four files from the first folder that holds any of them (all four, or UserError)."""
    candidates = [data_dir, data_dir / NAME] if data_dir is not None else [files.DEFAULT_DATA_DIR / NAME]
    candidates.append(SYSTEM_DIR)
    for folder in candidates:
        found = {stem: _find(folder, stem) for stem in FILES}
        present = {k: v for k, v in found.items() if v is not None}
        if present and len(present) < len(FILES):
            missing = sorted(set(FILES) - set(present))
            raise UserError(f"{folder} has only part of fashion-mnist (missing {', '.join(missing)}); {_HOW}")
        if present:
            if download:  # download=True promises verified files: check what is already there
                for stem, path in present.items():
                    if path.suffix == ".gz" and folder != SYSTEM_DIR:  # Debian recompresses its copies
                        files.verify_md5(path, FILES[stem])
            return present
    if not download:
        looked = ", ".join(str(c) for c in candidates)
        raise UserError(f"fashion-mnist not found (looked in {looked}); {_HOW}")
    target = files.base_dir(data_dir) / NAME
    return {
        stem: files.download(tuple(m + stem + ".gz" for m in MIRRORS), target / (stem + ".gz"), md5)
        for stem, md5 in FILES.items()
    }


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions (big-endian header), checked."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path} is truncated or not gzip ({exc}); delete it and download it again") from None
    magic = 0x800 | ndim  # 0x08 = unsigned byte, low byte = number of dimensions
    if len(raw) < 4 + 4 * ndim or int.from_bytes(raw[:4], "big") != magic:
        raise UserError(
            f"{path} is not an IDX file of {ndim}-d unsigned bytes (expected magic {magic:#010x}): the "
            f"folder holds something else; {_HOW}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = raw[4 + 4 * ndim :]
    expected = int(np.prod(shape))
    if len(body) != expected:
        raise UserError(f"{path} is truncated: {len(body)} data bytes, header says {expected}; delete it and "
                        "download it again")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _pair(paths: dict[str, Path], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(paths[f"{prefix}-images-idx3-ubyte"], 3)
    labels = read_idx(paths[f"{prefix}-labels-idx1-ubyte"], 1).astype(np.int64)
    if len(images) != len(labels) or (labels.size and labels.max() > 9):
        raise UserError(f"fashion-mnist {prefix} files disagree ({len(images)} images, {len(labels)} labels, "
                        f"labels up to {labels.max() if labels.size else '-'}); replace them with the official files")
    return images[:, None], labels  # [N, 1, 28, 28]


def load(data_dir: Path | None, download: bool, device: str | torch.device = "cpu") -> Dataset:
    """fashion-mnist with the fixed split rule (see the module docstring)."""
    paths = _locate(data_dir, download)
    train_x, train_y = _pair(paths, "train")
    test_x, test_y = _pair(paths, "t10k")
    train, valid = stratified_split(train_y, (5 / 6, 1 / 6), SPLIT_SEED)
    splits = {
        "train": make_split(train_x, train_y, train),
        "valid": make_split(train_x, train_y, valid),
        "test": make_split(test_x, test_y),
    }
    return make_dataset(NAME, RULE, splits, num_classes=10, flip=True, device=device)
