"""Finding, downloading, verifying and safely unpickling dataset files.

Downloads go to ``<dest>.part`` and are renamed only after the MD5 matched, so a finished file
name never holds a half or wrong download. Pickled batches (CIFAR, downsampled ImageNet) are read
through an unpickler that resolves only the handful of numpy names those files use: a crafted
pickle that names anything else (``os.system``, ``builtins.eval``, ...) is refused before any of it
runs.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import pickle
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from spaces.errors import UserError

# Where datasets are looked for (and downloaded to) when no data_dir is given.
DEFAULT_DATA_DIR = Path(os.environ.get("NATSFLOW_DATA_DIR", "~/.cache/natsflow/datasets")).expanduser()


def base_dir(data_dir: Path | None) -> Path:
    """The folder a dataset is looked for in first and downloaded into."""
    return data_dir if data_dir is not None else DEFAULT_DATA_DIR


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_md5(path: Path, md5: str) -> None:
    """UserError unless ``path`` has the expected MD5 (the official one)."""
    got = md5_of(path)
    if got != md5:
        raise UserError(
            f"checksum mismatch for {path}: MD5 {got}, expected {md5}; the file is corrupt or not the "
            f"official one: delete it and load again with download=True"
        )


def download(urls: tuple[str, ...], dest: Path, md5: str) -> Path:
    """Fetch the first URL that answers into ``dest`` and verify its MD5; UserError if none works."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures.append(f"{url}: {exc}")
            continue
        try:
            verify_md5(part, md5)
        except UserError:
            part.unlink(missing_ok=True)
            raise UserError(
                f"checksum mismatch for the download of {url}: expected MD5 {md5}; the server sent "
                f"something else (proxy page, partial file): retry later or place the official file at {dest}"
            ) from None
        os.replace(part, dest)
        return dest
    part.unlink(missing_ok=True)
    raise UserError(
        f"could not download {dest.name} ({'; '.join(failures)}); download it by hand and place it at {dest}"
    )


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals numpy-array pickles need; everything else is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
        ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how Python 3 pickles ndarray bytes (protocol 2)
    }

    def find_class(self, module: str, name: str):  # noqa: D102 (pickle API)
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def safe_unpickle(data: bytes, source: str) -> dict[str, object]:
    """A pickled dict (CIFAR / downsampled-ImageNet batch) with str keys, read without running code.

    ``encoding='latin1'`` is what numpy documents for Python 2 pickles of arrays (the official
    CIFAR files); bytes keys (Python 3 writers) are decoded so callers see one spelling.
    """
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise UserError(
            f"{source} is not a plain data pickle ({exc}); it was refused without running it: "
            f"replace it with the official file"
        ) from None
    except Exception as exc:  # truncated or garbage bytes raise many different types
        raise UserError(f"{source} is truncated or not a pickle ({type(exc).__name__}: {exc}); replace it with "
                        "the official file") from None
    if not isinstance(obj, dict):
        raise UserError(f"{source} holds a {type(obj).__name__}, not a batch dict: the folder holds something else")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def batch_arrays(entry: dict[str, object], label_key: str, width: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8 [N, width], labels int64 [N]) of one pickled batch, checked."""
    data, labels = entry.get("data"), entry.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != width:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserError(
            f"{source}: 'data' should be uint8 [N, {width}], found {what}: the folder holds something "
            f"else; point data_dir at the official files"
        )
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise UserError(f"{source}: '{label_key}' is not a list of integers: the folder holds something else") from None
    if len(labels) != len(data):
        raise UserError(f"{source}: {len(data)} images but {len(labels)} labels; replace the file with the "
                        "official one")
    return data, labels
