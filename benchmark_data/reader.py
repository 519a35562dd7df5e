"""Lazy, cached query API over a store: the tabular benchmark as dense NumPy arrays.

The NATS-Bench API loads everything into Python dicts up front (tens of GB, minutes). Here
``Benchmark.open`` only lists partition folders; the first query into a (space, dataset, hp)
reads that partition's key columns once, and each metric column is read once and scattered into a
dense float32 array ``[space.size, n_seeds, n_epochs]`` indexed by the project arch_index (NaN
where nothing was recorded). Every later query is NumPy indexing, so a simulator can replay
hundreds of searches per second and vectorized queries cost microseconds.

A partition is read from a fixed list of files (a snapshot): finished fragments never change, so
two columns read at different times still line up. Files added after the first read of a
partition are not seen by this object (open the store again). If a concurrent compaction removes
a file of the snapshot, the partition is simply re-listed; rows that compaction merged are
identical, and duplicates are resolved as in ``compact`` (the last written row wins).

Damaged files (truncated, not Parquet, or Parquet of another schema) never reach a caller as
data. Each is skipped with a warning naming it (``strict=True``: a UserError) and listed in
``bad_files`` with its reason in ``bad_reasons``. A partition none of whose files has a readable
footer with rows is left out of ``spaces()`` / ``datasets()`` / ``hps()`` (listing reads the
footers once per partition, never the data), so a search that does not need it runs on; asking
for it anyway (``curve``, ``metrics``, ``seeds``, ``num_epochs``, ``archs``, ``cost``, ...) is a
UserError naming its damaged files. No query ever returns a zero-size array.

Surrogate rows (the ``surrogate`` table: a model's predictions for the architectures an
``epochs`` partition lacks) are merged in by default: an epochs partition with a surrogate
partition of the same (space, dataset, hp) is read as one view, built from the surrogate files
first and then the epochs files, and the surrogate rows of every architecture that has at least
one epochs row are dropped, so an architecture's values come wholly from training or wholly from
the model (a stale prediction of an architecture trained since never mixes with its training).
Predictions are always labelled: ``Curve.surrogate``, ``surrogate_archs``, ``surrogate_info``.
``Benchmark.open(..., surrogate=False)`` reads the trained rows alone, as everything must that
asks what was trained. A surrogate partition with no epochs partition beside it is ignored
(``ignored_surrogates``). A plain partition (no surrogate rows) is read exactly as before.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from spaces.errors import UserError, short

from . import schema as S
from . import task as T
from .arrow import to_numpy

if TYPE_CHECKING:  # pandas is imported where a DataFrame is made: a simulated search needs none
    import pandas as pd

# Re-exported: these rules live in the task view (benchmark_data.task), older callers import
# them from here.
from .task import FEEDBACK_DATASET as FEEDBACK_DATASET
from .task import nats_time_cost as nats_time_cost
from .writer import check_footer, dedupe_keep_last, read_fragment

EMBEDDED_ROOT = Path(__file__).resolve().parent / "embedded"
_LOWER_IS_BETTER = ("train_loss", "valid_loss", "test_loss", "epoch_time_s", "eval_time_s")
_MAX_RELISTS = 10


@dataclass(frozen=True)
class Curve:
    """One metric of one (space, dataset, hp) as a dense array; shared, do not modify in place.

    values[a, s, e - 1] is the metric of arch ``a`` trained with seed ``seeds[s]`` after ``e``
    epochs (``epochs[e - 1] == e``). ``present[a]`` says whether arch ``a`` has any row at all,
    ``seed_present[a, s]`` whether it has rows for that seed (a NaN value with ``present`` true is
    a recorded gap, e.g. a metric the source did not publish). ``surrogate[a]`` says that arch
    ``a``'s values are a surrogate model's predictions (its only seed is -1), not a training.
    """
    values: np.ndarray
    seeds: np.ndarray
    epochs: np.ndarray
    present: np.ndarray
    seed_present: np.ndarray
    surrogate: np.ndarray


def _as_rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise UserError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _numpy(tables: list[pa.Table], name: str) -> np.ndarray:
    """One column of several tables as one array, without a copy when Arrow allows it."""
    arrays = [to_numpy(chunk) for t in tables for chunk in t[name].chunks]
    if len(arrays) == 1:
        return arrays[0]
    return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)


def _dense_positions(lin: np.ndarray, total: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Rows to keep (last occurrence of each slot) and their slots in the dense array.

    None stands for "all rows" / "row i goes to slot i": a compacted, complete partition is
    already in dense order (compaction sorts by key), so its columns are used without a copy.
    """
    if lin.size and np.all(lin[1:] > lin[:-1]):  # sorted and unique: compacted
        if lin.size == total:
            return None, None
        return None, lin
    if lin.size == 0:
        return None, lin
    if np.bincount(lin, minlength=total).max() <= 1:  # unsorted fragments, no duplicates
        return None, lin
    _, first_in_reversed = np.unique(lin[::-1], return_index=True)
    keep = np.sort(lin.size - 1 - first_in_reversed)
    return keep, lin[keep]


def _equals(array: pa.Array, value: str) -> np.ndarray:
    """Bool per row: whether a string array's row is ``value`` (a null is not), from the Arrow
    buffers: pyarrow.compute's first string kernel imports pandas, which a simulated search does
    not otherwise need (a third of a short run's process)."""
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return np.array([v == value for v in array.to_pylist()], bool)  # e.g. dictionary-encoded
    want = np.frombuffer(value.encode(), np.uint8)
    validity, offsets, data = array.buffers()[:3]
    kind = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets, kind, count=len(array) + 1, offset=array.offset * np.dtype(kind).itemsize)
    out = np.diff(offsets) == want.size
    rows = np.flatnonzero(out)
    if rows.size and want.size:
        chars = np.frombuffer(data, np.uint8)
        out[rows] = (chars[offsets[rows, None] + np.arange(want.size)] == want).all(axis=1)
    if array.null_count:
        bits = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")
        out &= bits[array.offset:array.offset + len(array)].astype(bool)
    return out


def _decoded(meta: dict[bytes, bytes]) -> dict[str, str]:
    """A file's key/value metadata as text (Arrow's own schema entry left out)."""
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"ARROW:schema"}


class _Partition:
    """The files of one partition and the mapping of their rows into a dense array.

    An epochs partition given a ``surrogate_folder`` is the merged view of the module docstring:
    the snapshot lists that folder's files first, and ``surrogate`` [size] marks the archs whose
    rows come from it. ``rows`` counts the partition's own (trained) rows only, so a partition
    whose epochs files are all damaged stays unusable whatever the model predicted.
    """

    # Above this many fragments, the per-file cost dominates: read every value column in the
    # same pass as the keys instead of one pass per column.
    EAGER_FILES = 8
    # Above this many, say that compaction would help.
    WARN_FILES = 1000

    def __init__(self, bench: Benchmark, table: str, values: dict[str, Any], folder: Path,
                 size: int, surrogate_folder: Path | None = None):
        self.bench, self.table, self.values, self.folder, self.size = bench, table, values, folder, size
        self.surrogate_folder = surrogate_folder
        self.files: list[Path] | None = None
        self.file_meta: list[dict[bytes, bytes]] = []  # key/value metadata of each of ``files``
        self.rows = 0  # rows of the partition's own files read into the layout (duplicates included)
        self.surrogate_rows = 0  # surrogate rows kept in the view
        self.surrogate_meta: dict[bytes, bytes] | None = None  # the newest surrogate file in use
        self._footer_rows: int | None = None
        self.cache: dict[Any, Any] = {}

    @property
    def label(self) -> str:
        return "/".join(f"{k}={v}" for k, v in self.values.items())

    # --- reading, with bad-file and concurrent-compaction handling ----------------------------
    def _table_of(self, path: Path) -> str:
        """The table a file of the snapshot belongs to (its own, or the merged surrogate's)."""
        return "surrogate" if self.surrogate_folder is not None and path.parent == self.surrogate_folder \
            else self.table

    def _snapshot(self) -> list[Path]:
        """The files to read, surrogate files first, each folder in name (write) order."""
        folders = ([self.surrogate_folder] if self.surrogate_folder is not None else []) + [self.folder]
        return [p for folder in folders for p in S.list_fragments(folder) if p not in self.bench._bad_set]

    def _read_columns(self, columns: list[str] | None, files: list[Path]) -> list[pa.Table] | None:
        """Tables of ``columns`` for ``files``; None if the snapshot went stale (re-list)."""
        out = []
        for path in files:
            try:
                out.append(read_fragment(path, self._table_of(path), columns))
            except FileNotFoundError:
                return None
            except UserError as exc:
                self.bench._bad_file(path, exc)
                return None
        return out

    def _key_columns(self) -> list[str]:
        return [k for k in S.KEY_COLUMNS[self.table] if k not in S.PARTITION_COLUMNS[self.table]]

    def _value_columns(self) -> tuple[str, ...]:
        return S.EPOCH_METRICS if self.table == "epochs" else S.ARCH_COSTS

    def readable(self) -> bool:
        """Whether the partition has rows in a file that is not damaged, by the file footers
        (cached; once the layout is built, by the rows actually read)."""
        if self.files is not None:
            return self.rows > 0
        if self._footer_rows is None:
            self._footer_rows = self.bench._count_rows(self.table, self.folder)[1]
        return self._footer_rows > 0

    def empty_error(self) -> UserError:
        """The error for using a partition that has no readable rows, naming its bad files."""
        bad = [p for p in self.bench.bad_files if p.parent == self.folder]
        if not bad:
            return UserError(f"{self.table} partition {self.label} ({self.folder}) holds no rows; "
                             "re-run the step that writes it, or remove the empty folder")
        reasons = "; ".join(self.bench.bad_reasons[p] for p in bad)
        return UserError(f"{self.table} partition {self.label} has no readable rows: its file(s) "
                         f"{', '.join(map(str, bad))} are damaged ({reasons})")

    def _ensure_layout(self) -> None:
        if self.files is not None:
            if not self.rows:
                raise self.empty_error()
            return
        keys = self._key_columns()
        for _ in range(_MAX_RELISTS):
            files = self._snapshot()
            eager = len(files) > self.EAGER_FILES
            tables = self._read_columns(keys + list(self._value_columns()) if eager else keys, files)
            if tables is None:
                continue
            problem = self._check_keys(tables, files)
            if problem is not None:
                self.bench._bad_file(*problem)
                continue
            if len(files) > self.WARN_FILES:
                warnings.warn(f"{self.folder} holds {len(files)} fragments; run `python -m "
                              f"benchmark_data compact --store {self.bench.root}` to read it much faster",
                              stacklevel=4)
            self.files = files
            # The footers were read with the keys: keep their metadata (provenance, roles) free.
            self.file_meta = [t.schema.metadata or {} for t in tables]
            self._build_layout(tables, sum(self._table_of(p) == "surrogate" for p in files))
            if not self.rows:  # every file bad or empty: never hand out zero-size arrays
                raise self.empty_error()
            if eager:
                for name in self._value_columns():
                    self._store(name, _numpy(tables, name))
            return
        raise UserError(f"the files of {self.folder} kept changing while being read; "
                        "retry when the writers or compaction have finished")

    def _check_keys(self, tables: list[pa.Table], files: list[Path]):
        for tbl, path in zip(tables, files):
            arch = _numpy([tbl], "arch_index")
            if arch.size and (arch.min() < 0 or arch.max() >= self.size):
                return path, UserError(f"file {path} has arch_index values outside 0.."
                                       f"{self.size - 1} of space {self.values['space']!r}")
            if "epoch" in tbl.column_names and tbl.num_rows and \
                    _numpy([tbl], "epoch").min() < 1:
                return path, UserError(f"file {path} has epoch values below 1 (epochs are 1-based)")
            if self._table_of(path) == "surrogate" and tbl.num_rows and \
                    not (_numpy([tbl], "seed") == S.SURROGATE_SEED).all():
                return path, UserError(f"file {path} is a surrogate fragment with seeds other than "
                                       f"{S.SURROGATE_SEED} (a prediction is of the mean over seeds)")
        return None

    def _build_layout(self, tables: list[pa.Table], n_surrogate_files: int = 0) -> None:
        """Where each row goes in the dense arrays; the first ``n_surrogate_files`` tables are
        surrogate files, whose rows of an arch with any trained row are left out."""
        cols = {c: _numpy(tables, c) for c in self._key_columns()}
        arch = cols["arch_index"]
        n_model = sum(t.num_rows for t in tables[:n_surrogate_files])
        kept = None  # rows in the view; None: all of them
        self.surrogate = np.zeros(self.size, bool)
        self.surrogate_meta = None
        if n_model:
            trained = np.zeros(self.size, bool)
            trained[arch[n_model:]] = True
            superseded = trained[arch[:n_model]]  # predictions of archs that were trained since
            self.surrogate[arch[:n_model][~superseded]] = True
            if superseded.any():
                kept = np.flatnonzero(np.concatenate([~superseded, np.ones(arch.size - n_model, bool)]))
                cols = {c: v[kept] for c, v in cols.items()}
                arch = cols["arch_index"]
            # the newest surrogate file with a row in the view says which model made them
            ends = np.cumsum([t.num_rows for t in tables[:n_surrogate_files]])
            used = [i for i, end in enumerate(ends) if not superseded[end - tables[i].num_rows:end].all()]
            self.surrogate_meta = self.file_meta[used[-1]] if used else None
            self.surrogate_rows = int(n_model - superseded.sum())
        else:
            self.surrogate_rows = 0
        self.surrogate.flags.writeable = False
        self.rows = int(arch.size) - self.surrogate_rows
        seeds_hint = 1 if self.table != "epochs" or not arch.size else \
            int(cols["seed"].max()) - int(cols["seed"].min()) + 1
        bound = self.size * seeds_hint * (int(cols["epoch"].max()) if "epoch" in cols and arch.size else 1)
        lin = arch.astype(np.int32 if bound < 2**31 else np.int64)  # a copy: edited in place
        if self.table == "epochs":
            seed, epoch = cols["seed"], cols["epoch"]
            if arch.size and seed.min() == seed.max():  # one seed: no search needed
                self.seeds, seed_pos = np.array([seed[0]], np.int32), 0
            else:
                self.seeds = np.unique(seed).astype(np.int32)
                seed_pos = np.searchsorted(self.seeds, seed)
            self.n_epochs = int(epoch.max()) if arch.size else 0
            self.shape = (self.size, len(self.seeds), self.n_epochs)
            # slot = (arch * n_seeds + seed_pos) * n_epochs + epoch - 1, computed in place
            lin *= len(self.seeds) * self.n_epochs
            if not np.isscalar(seed_pos):
                lin += seed_pos * self.n_epochs
            lin += epoch
            lin -= 1
        else:
            self.shape = (self.size,)
        self.keep, self.lin = _dense_positions(lin, int(np.prod(self.shape)))
        if kept is not None:  # positions among the kept rows -> positions among all rows read
            if self.lin is None:
                self.lin = np.arange(lin.size)
            self.keep = kept if self.keep is None else kept[self.keep]
        self.present = np.zeros(self.size, bool)
        self.present[arch] = True
        if self.table == "epochs":
            self.seed_present = np.zeros(self.shape[:2], bool)
            self.seed_present[arch, seed_pos] = True
            self.seed_lookup = {int(s): i for i, s in enumerate(self.seeds)}
        self.cache.clear()

    def _store(self, key: Any, raw: np.ndarray) -> np.ndarray:
        """Scatter one column's values (aligned with the layout) into its dense array."""
        if self.lin is None:  # compacted and complete: the column already is the dense array
            dense = raw.astype(np.float32, copy=False).reshape(self.shape)
        else:
            dense = np.full(int(np.prod(self.shape)), np.nan, np.float32)
            dense[self.lin] = raw if self.keep is None else raw[self.keep]
            dense = dense.reshape(self.shape)
        if dense.flags.writeable:
            dense.flags.writeable = False  # shared with every caller: keep it immutable
        self.cache[key] = dense
        return dense

    def column(self, name: str) -> np.ndarray:
        """Dense float32 array of one value column (read once, then cached)."""
        return self._dense(name, name, _numpy)

    def equals(self, name: str, value: str) -> np.ndarray:
        """Dense bool array: where a row's string column ``name`` is ``value`` (False where no
        row, or a null, is)."""
        def flags(tables: list[pa.Table], column: str) -> np.ndarray:
            hits = [_equals(chunk, value) for t in tables for chunk in t[column].chunks]
            return np.concatenate(hits).astype(np.float32) if hits else np.zeros(0, np.float32)
        key = (name, "==", value)
        if key not in self.cache:
            self._dense(("raw", key), name, flags)
            self.cache[key] = self.cache.pop(("raw", key)) == 1.0  # NaN (no row) is not a hit
            self.cache[key].flags.writeable = False
        return self.cache[key]

    def _dense(self, key: Any, name: str, extract: Callable[[list[pa.Table], str], np.ndarray]) -> np.ndarray:
        """The dense array of column ``name`` as ``extract`` turns its tables into values (cached
        under ``key``), re-listing the files if the snapshot went stale."""
        self._ensure_layout()
        if key in self.cache:
            return self.cache[key]
        for _ in range(_MAX_RELISTS):
            tables = self._read_columns([name], self.files)
            if tables is not None:
                return self._store(key, extract(tables, name))
            self.files = None  # snapshot stale or a file turned out corrupt: rebuild it
            self._ensure_layout()
            if key in self.cache:  # the rebuild read it eagerly
                return self.cache[key]
        raise UserError(f"the files of {self.folder} kept changing while being read; retry")

    def roles(self, keys: Sequence[str] | None = None) -> dict[str, str]:
        """Which columns play the objective / time / fidelity roles in this partition's files
        (``task.roles_of``: their metadata, ``schema.ROLE_COLUMNS`` where they name none)."""
        self._ensure_layout()
        key = ("roles", None if keys is None else tuple(keys))
        if key not in self.cache:
            metas = [(path, _decoded(meta)) for path, meta in zip(self.files, self.file_meta)]
            self.cache[key] = T.roles_of(metas, self.table, self.label, keys)
        return dict(self.cache[key])

    def derived(self, key: Any, make: Callable[[], np.ndarray]) -> np.ndarray:
        """Cache an array computed from columns (seed means, cumulative times)."""
        self._ensure_layout()
        if key not in self.cache:
            arr = make()
            arr.flags.writeable = False
            self.cache[key] = arr
        return self.cache[key]

    def table_frame(self) -> pd.DataFrame:
        """All rows of the partition, deduplicated, as a DataFrame (partition columns added)."""
        for _ in range(_MAX_RELISTS):
            files = [p for p in S.list_fragments(self.folder) if p not in self.bench._bad_set]
            tables = self._read_columns(None, files)
            if tables is not None:
                break
        else:
            raise UserError(f"the files of {self.folder} kept changing while being read; retry")
        tbl = pa.concat_tables([t.replace_schema_metadata(None) for t in tables]) if tables \
            else S.data_schema(self.table).empty_table()
        tbl = dedupe_keep_last(tbl, self._key_columns())
        frame = tbl.to_pandas()
        for col, value in self.values.items():
            frame.insert(0, col, value)
        return frame


class Benchmark:
    """Read-only view of a store: see the module docstring for what is read when."""

    def __init__(self, root: Path, strict: bool, surrogate: bool = True):
        self.root = root
        self.strict = strict
        self.surrogate = surrogate  # whether surrogate rows are merged in (Benchmark.open's flag)
        self._surrogates: dict[tuple[str, str, int], Path] = {}  # every surrogate partition listed
        self.ignored_surrogates: list[tuple[str, str, int]] = []  # those with no epochs beside them
        self.bad_files: list[Path] = []
        self.bad_reasons: dict[Path, str] = {}  # bad file -> why it was skipped
        self._bad_set: set[Path] = set()
        self._epochs: dict[tuple[str, str, int], _Partition] = {}
        self._archs: dict[tuple[str, str], _Partition] = {}
        self._runs: dict[str, Path] = {}
        self._trials: dict[str, Path] = {}
        self._tasks: dict[tuple, Any] = {}  # Benchmark.task's cache
        self._feedback: dict[tuple[str, str], str] = {}  # feedback_dataset's cache

    # --- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path | None = None, *, strict: bool = False,
             surrogate: bool = True) -> Benchmark:
        """Open a store by listing its partition folders (reads no file).

        ``surrogate``: merge the ``surrogate`` table's predictions into the epochs partitions
        they complete (see the module docstring); False reads trained rows only.
        """
        if not isinstance(surrogate, bool):
            raise UserError(f"surrogate must be True or False, got {surrogate!r}")
        if path is None:
            root = EMBEDDED_ROOT
            if not any(S.iter_partitions(root, "epochs")):
                raise UserError(f"the embedded benchmark is missing ({root} has no epochs "
                                "partitions); build it with `python -m benchmark_data build` "
                                "(see --help) or pass the path of a store")
        else:
            root = Path(path).expanduser()
            if not root.is_dir():
                raise UserError(f"store folder {root} does not exist; pass the folder that holds "
                                "archs/, epochs/ and runs/")
            if not any((root / t).is_dir() for t in S.TABLES):
                raise UserError(f"{root} is not a store: it has none of the folders "
                                f"{', '.join(t + '/' for t in S.TABLES)}")
        bench = cls(root.resolve(), strict, surrogate)
        bench._list()
        return bench

    def _list(self) -> None:
        from spaces import get_space
        sizes: dict[str, int] = {}

        def size(space: str) -> int:
            if space not in sizes:
                sizes[space] = get_space(space).size
            return sizes[space]

        for values, folder in S.iter_partitions(self.root, "surrogate"):
            self._surrogates[(values["space"], values["dataset"], values["hp"])] = folder
        for values, folder in S.iter_partitions(self.root, "epochs"):
            key = (values["space"], values["dataset"], values["hp"])
            merged = self._surrogates.get(key) if self.surrogate else None
            self._epochs[key] = _Partition(self, "epochs", values, folder, size(key[0]), merged)
        self.ignored_surrogates = sorted(k for k in self._surrogates if k not in self._epochs)
        for values, folder in S.iter_partitions(self.root, "archs"):
            key = (values["space"], values["dataset"])
            self._archs[key] = _Partition(self, "archs", values, folder, size(key[0]))
        for values, folder in S.iter_partitions(self.root, "runs"):
            self._runs[values["experiment"]] = folder
        for values, folder in S.iter_partitions(self.root, "trials"):
            self._trials[values["experiment"]] = folder

    def _bad_file(self, path: Path, exc: UserError) -> None:
        if self.strict:
            raise exc
        if path not in self._bad_set:
            warnings.warn(f"skipping {path}: {exc}", stacklevel=4)
            self._bad_set.add(path)
            self.bad_files.append(path)
            self.bad_reasons[path] = str(exc)

    def _count_rows(self, table: str, folder: Path) -> tuple[int, int]:
        """(good files, rows) of one partition folder from the file footers; damaged files are
        recorded as bad (see ``check_footer``)."""
        for _ in range(_MAX_RELISTS):
            files, rows, stale = 0, 0, False
            for path in S.list_fragments(folder):
                if path in self._bad_set:
                    continue
                try:
                    rows += check_footer(path, table)
                    files += 1
                except FileNotFoundError:  # compacted away: list again to see the merged file
                    stale = True
                    break
                except UserError as exc:
                    self._bad_file(path, exc)
            if not stale:
                return files, rows
        raise UserError(f"the files of {folder} kept changing while being read; retry")

    def _readable(self, table: str) -> list[tuple]:
        """Keys of the partitions of ``table`` ("epochs" or "archs") that have readable rows."""
        parts = self._epochs if table == "epochs" else self._archs
        return [k for k, p in parts.items() if p.readable()]

    # --- what is there ------------------------------------------------------------------------
    # Listing leaves out partitions without readable rows (see the module docstring): the first
    # call reads the footers of the files involved, once.
    def spaces(self) -> list[str]:
        return sorted({k[0] for k in self._readable("epochs")}
                      | {k[0] for k in self._readable("archs")})

    def datasets(self, space: str) -> list[str]:
        self._check_space(space)
        return sorted({k[1] for k in self._epochs if k[0] == space and self._epochs[k].readable()}
                      | {k[1] for k in self._archs if k[0] == space and self._archs[k].readable()})

    def hps(self, space: str, dataset: str) -> list[int]:
        self._check_dataset(space, dataset)
        return sorted(k[2] for k, p in self._epochs.items()
                      if k[:2] == (space, dataset) and p.readable())

    def seeds(self, space: str, dataset: str, hp: int) -> list[int]:
        part = self._part(space, dataset, hp)
        part._ensure_layout()
        return part.seeds.tolist()

    def num_epochs(self, space: str, dataset: str, hp: int) -> int:
        """Largest epoch recorded (normally ``hp``; less if training was cut short)."""
        part = self._part(space, dataset, hp)
        part._ensure_layout()
        return part.n_epochs

    def archs(self, space: str, dataset: str, hp: int) -> np.ndarray:
        """Project arch indices that have at least one row in this (space, dataset, hp): trained
        ones, and, when surrogate rows are merged in, predicted ones (``surrogate_archs``)."""
        part = self._part(space, dataset, hp)
        part._ensure_layout()
        return np.flatnonzero(part.present).astype(np.int32)

    # --- surrogate rows (the module docstring) -------------------------------------------------
    def surrogate_archs(self, space: str, dataset: str, hp: int) -> np.ndarray:
        """Project arch indices whose values in this view are surrogate predictions (none when
        the store was opened with ``surrogate=False``)."""
        part = self._part(space, dataset, hp)
        part._ensure_layout()
        return np.flatnonzero(part.surrogate).astype(np.int32)

    def uses_surrogate(self, space: str, dataset: str, hp: int) -> bool:
        """Whether this view of (space, dataset, hp) holds surrogate predictions."""
        part = self._part(space, dataset, hp)
        part._ensure_layout()
        return part.surrogate_rows > 0

    def surrogate_info(self, space: str, dataset: str, hp: int) -> dict[str, str] | None:
        """Metadata of the newest surrogate file whose rows are in this view (``surrogate_model``,
        ``surrogate_cv``, ... : docs/SCHEMA.md); None when no surrogate row is in use."""
        part = self._part(space, dataset, hp)
        part._ensure_layout()
        return None if part.surrogate_meta is None else _decoded(part.surrogate_meta)

    def has_surrogate_rows(self, space: str, dataset: str, hp: int) -> bool:
        """Whether the store holds readable surrogate rows for (space, dataset, hp), merged in or
        not (file footers only): what a refusal tells a user who opened with surrogate=False."""
        folder = self._surrogates.get((space, dataset, hp))
        return folder is not None and self._count_rows("surrogate", folder)[1] > 0

    def metadata(self, space: str, dataset: str, hp: int) -> dict[str, str]:
        """Provenance of the newest file of the partition (footer only, no data read)."""
        import pyarrow.parquet as pq
        part = self._part(space, dataset, hp)
        for path in reversed(S.list_fragments(part.folder)):
            if path in self._bad_set:
                continue
            try:
                check_footer(path, "epochs")  # a foreign file's metadata says nothing of ours
                meta = pq.read_schema(path).metadata or {}
            except FileNotFoundError:
                continue
            except UserError as exc:
                self._bad_file(path, exc)
                continue
            except (OSError, pa.ArrowException) as exc:
                self._bad_file(path, UserError(f"corrupt or truncated Parquet file {path}: {exc}"))
                continue
            return {k.decode(): v.decode() for k, v in meta.items() if k != b"ARROW:schema"}
        return {}

    def dataset_fingerprint(self, space: str, dataset: str, hp: int | None = None) -> str:
        """The ``dataset_fingerprint`` the epochs files of (space, dataset) record (footers only).

        ``hp`` None looks at every readable hp of the dataset. "" when no file records one (e.g.
        rows written without provenance). For a search's ``runs`` provenance, so that a result
        says which exact data and split its benchmark numbers came from. UserError when the files
        disagree (data from two different splits under one name): pass ``hp`` to pick one, or
        rebuild the odd partition.
        """
        import json

        import pyarrow.parquet as pq
        parts = [self._part(space, dataset, hp)] if hp is not None else \
            [self._part(space, dataset, h) for h in self.hps(space, dataset)]
        found: dict[str, Path] = {}
        for part in parts:
            for path in S.list_fragments(part.folder):
                if path in self._bad_set:
                    continue
                try:
                    check_footer(path, "epochs")
                    meta = {k.decode(): v.decode()
                            for k, v in (pq.read_schema(path).metadata or {}).items()}
                except FileNotFoundError:  # compacted away: the merged file carries the same
                    continue
                except UserError as exc:
                    self._bad_file(path, exc)
                    continue
                # a compacted file of mixed provenance keeps every variant's fingerprint
                variants = json.loads(meta.get("provenance_variants", "[]")) or [meta]
                for variant in variants:
                    fp = variant.get("dataset_fingerprint", "")
                    if fp:
                        found.setdefault(fp, path)
        if len(found) > 1:
            listed = "; ".join(f"{fp} (e.g. {path})" for fp, path in found.items())
            raise UserError(f"the epochs files of {space}/{dataset} record different dataset "
                            f"fingerprints: {listed}; pass hp= to pick one recipe, or rebuild the "
                            "partition whose data differ")
        return next(iter(found), "")

    def row_counts(self, table: str) -> list[tuple[dict[str, Any], int, int]]:
        """(partition values, files, rows) per partition, from the file footers only."""
        out = []
        for values, folder in self.partitions(table):
            files, rows = self._count_rows(table, folder)  # good files only
            out.append((values, files, rows))
        return out

    def experiments(self) -> list[str]:
        return sorted(self._runs)

    def partitions(self, table: str) -> list[tuple[dict[str, Any], Path]]:
        """Partition values and folders of a table (for ``info``-style tools)."""
        S.check_table(table)
        return S.iter_partitions(self.root, table)

    # --- validation ---------------------------------------------------------------------------
    def _check_space(self, space: str) -> None:
        if space not in self.spaces():
            damaged = [p for k, p in [*self._epochs.items(), *self._archs.items()] if k[0] == space]
            if damaged:  # there, but every partition unusable: say why
                raise UserError(f"space {space!r} of the store {self.root} cannot be used: "
                                f"{damaged[0].empty_error()}")
            raise UserError(f"space {space!r} is not in the store {self.root}; it has: "
                            f"{', '.join(self.spaces()) or 'nothing'}")

    def _check_dataset(self, space: str, dataset: str) -> None:
        datasets = self.datasets(space)
        if dataset not in datasets:
            damaged = [p for k, p in [*self._epochs.items(), *self._archs.items()]
                       if k[:2] == (space, dataset)]
            if damaged:  # it is there, but unusable: say why rather than "not in the store"
                raise UserError(f"dataset {dataset!r} of space {space!r} cannot be used: "
                                f"{damaged[0].empty_error()}")
            raise UserError(f"dataset {dataset!r} is not in the store for space {space!r}; "
                            f"it has: {', '.join(datasets)}")

    def _part(self, space: str, dataset: str, hp: int) -> _Partition:
        try:
            return self._epochs[(space, dataset, hp)]
        except (KeyError, TypeError):
            pass
        if isinstance(hp, (str, np.integer)) and str(hp).isdigit():  # "12" as NATS-Bench writes it
            hit = self._epochs.get((space, dataset, int(hp)))
            if hit is not None:
                return hit
        hps = self.hps(space, dataset)
        raise UserError(f"hp={hp!r} is not in the store for {space}/{dataset}; it has hp "
                        f"{', '.join(map(str, hps)) or 'none (only architecture costs)'}")

    def _arch_part(self, space: str, dataset: str) -> _Partition:
        try:
            return self._archs[(space, dataset)]
        except KeyError:
            self._check_dataset(space, dataset)
            have = sorted(k[1] for k in self._archs if k[0] == space)
            raise UserError(f"the store has no architecture costs for {space}/{dataset}; it has "
                            f"them for: {', '.join(have) or 'no dataset'}") from None

    @staticmethod
    def _metric_names(columns: Sequence[str] | None) -> tuple[str, ...]:
        if columns is None:
            return S.EPOCH_METRICS
        bad = [c for c in columns if c not in S.EPOCH_METRICS]
        if bad:
            raise UserError(f"unknown metric(s) {bad}; metrics: {', '.join(S.EPOCH_METRICS)}")
        return tuple(columns)

    @staticmethod
    def _archs_arg(part: _Partition, arch_index: Any, require_rows: bool = True) -> tuple[np.ndarray, bool]:
        scalar = np.ndim(arch_index) == 0
        arr = np.asarray(arch_index)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise UserError(f"arch_index must be an integer (or array of integers), got {arch_index!r}; "
                            "parse arch strings with spaces.get_space(name).parse(s)")
        if arr.size and (arr.min() < 0 or arr.max() >= part.size):
            bad = arr[(arr < 0) | (arr >= part.size)].ravel()[:5].tolist()
            raise UserError(f"arch_index {bad} outside 0..{part.size - 1} of space "
                            f"{part.values['space']!r}")
        part._ensure_layout()
        if require_rows and arr.size and not part.present[arr].all():
            missing = arr[~part.present[arr]].ravel()[:5].tolist()
            raise UserError(f"arch_index {missing} has no rows in {part.label} "
                            f"({int(part.present.sum())} of {part.size} archs are present; "
                            "Benchmark.archs(...) lists them)")
        return arr, scalar

    @staticmethod
    def _epochs_arg(part: _Partition, epoch: Any) -> tuple[np.ndarray | int, bool]:
        if epoch is None:
            return part.n_epochs, True
        arr = np.asarray(epoch)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise UserError(f"epoch must be an integer (1-based), got {epoch!r}")
        if arr.size and (arr.min() < 1 or arr.max() > part.n_epochs):
            raise UserError(f"epoch {epoch!r} outside 1..{part.n_epochs} recorded for {part.label}"
                            " (epochs are 1-based: the number of training epochs completed)")
        return arr, np.ndim(epoch) == 0

    def _seed_positions(self, part: _Partition, arch: np.ndarray, seed: Any, rng: Any
                        ) -> np.ndarray | None:
        """Seed axis position per query; None means the mean over seeds."""
        if isinstance(seed, str):
            if seed == "mean":
                return None
            if seed == "random":
                # one seed per query, uniformly among the seeds this arch was trained with,
                # drawn from the caller's generator so that a replay is deterministic
                mask = part.seed_present[arch]
                pick = _as_rng(rng).integers(0, mask.sum(axis=-1))
                if mask.shape[-1] == 1:  # one seed: nothing to choose (the draw keeps the
                    return pick          # rng stream independent of the seed count)
                return np.argmax(np.cumsum(mask, axis=-1) > np.expand_dims(pick, -1), axis=-1)
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            pos = part.seed_lookup.get(int(seed))
            if pos is not None:
                return np.full(arch.shape, pos)
        raise UserError(f"seed {seed!r} is not available for {part.label}; use an int from "
                        f"{part.seeds.tolist()}, 'mean' or 'random'")

    # --- queries ------------------------------------------------------------------------------
    def curve(self, space: str, dataset: str, hp: int, metric: str) -> Curve:
        """Dense array of one metric for every arch, seed and epoch (cached)."""
        (metric,) = self._metric_names([metric])
        part = self._part(space, dataset, hp)
        values = part.column(metric)
        return Curve(values, part.seeds, np.arange(1, part.n_epochs + 1, dtype=np.int16),
                     part.present, part.seed_present, part.surrogate)

    def status_is(self, space: str, dataset: str, hp: int, status: str) -> np.ndarray:
        """[archs, seeds, epochs] bool, aligned with ``curve``: where the row's ``status`` is
        ``status`` (e.g. "diverged"; ``schema.STATUSES``), False where there is no row."""
        if status not in S.STATUSES + (S.SURROGATE_STATUS,):
            raise UserError(f"unknown status {short(status)!r}: one of {', '.join(S.STATUSES)}")
        return self._part(space, dataset, hp).equals("status", status)

    def _mean(self, part: _Partition, metric: str) -> np.ndarray:
        def make() -> np.ndarray:
            values = part.column(metric)
            if values.shape[1] == 1:
                return values[:, 0, :]
            with warnings.catch_warnings():  # all-NaN (never recorded) stays NaN, silently
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(values, axis=1).astype(np.float32)
        return part.derived(("mean", metric), make)

    def metrics(self, space: str, dataset: str, hp: int, arch_index: Any, epoch: Any = None,
                seed: int | str = "mean", rng: Any = None, *,
                columns: Sequence[str] | None = None) -> dict[str, np.ndarray | float]:
        """Metrics of architectures at an epoch (default: the last recorded).

        ``arch_index`` and ``epoch`` broadcast against each other; scalars give floats.
        ``seed``: an int (that training seed), "mean" (NaN-ignoring mean over seeds) or "random"
        (one seed per query, among the seeds that arch was trained with, drawn from ``rng``:
        a Generator or an int seed; None draws from a fresh, unseeded generator).
        ``columns`` limits the metrics computed (and read).
        """
        part = self._epochs.get((space, dataset, hp)) or self._part(space, dataset, hp)
        names = self._metric_names(columns)
        # The hot path of a simulator (one arch, seed mean): plain ints, no array machinery.
        # Anything unusual falls through to the general path, which also produces the errors.
        if (seed == "mean" and isinstance(arch_index, (int, np.integer)) and part.files is not None
                and (epoch is None or isinstance(epoch, (int, np.integer)))
                and not isinstance(arch_index, bool) and not isinstance(epoch, bool)):
            a, e = int(arch_index), part.n_epochs if epoch is None else int(epoch)
            if 0 <= a < part.size and part.present[a] and 1 <= e <= part.n_epochs:
                out = {}
                for m in names:
                    arr = part.cache.get(("mean", m))
                    if arr is None:
                        arr = self._mean(part, m)
                    out[m] = float(arr[a, e - 1])
                return out
        arch, scalar_a = self._archs_arg(part, arch_index)
        ep, scalar_e = self._epochs_arg(part, epoch)
        arch, ep = np.broadcast_arrays(arch, ep)
        pos = self._seed_positions(part, arch, seed, rng)
        # One flat index for all metrics: np.take on it is ~4x faster than 2-D fancy indexing.
        n_seeds, n_epochs = part.shape[1], part.shape[2]
        flat = arch.astype(np.int64) * n_epochs + (ep - 1) if pos is None \
            else (arch.astype(np.int64) * n_seeds + pos) * n_epochs + (ep - 1)
        out: dict[str, Any] = {}
        for m in names:
            dense = self._mean(part, m) if pos is None else part.column(m)
            val = np.take(dense.reshape(-1), flat)
            out[m] = float(val) if val.ndim == 0 else val
        return out

    def cost(self, space: str, dataset: str, arch_index: Any, *, missing_ok: bool = False
             ) -> dict[str, np.ndarray | float]:
        """params_m, flops_m and latency_ms of architectures (NaN where not measured).

        ``missing_ok``: an architecture without an ``archs`` row (e.g. a surrogate prediction,
        never built, so never measured) gets NaN rather than an error."""
        part = self._arch_part(space, dataset)
        arch, scalar = self._archs_arg(part, arch_index, require_rows=not missing_ok)
        out: dict[str, Any] = {}
        for col in S.ARCH_COSTS:
            val = part.column(col)[arch]
            out[col] = float(val) if scalar else val
        return out

    def arch_table(self, space: str, dataset: str) -> pd.DataFrame:
        """The deduplicated ``archs`` rows of (space, dataset), e.g. for NATS index mapping."""
        return self._arch_part(space, dataset).table_frame()

    def best(self, space: str, dataset: str, hp: int, metric: str = "test_acc",
             epoch: int | None = None) -> tuple[int, float]:
        """The architecture with the best seed-mean ``metric`` at ``epoch`` (default: last).

        Losses and times are minimised, accuracies maximised. Ties go to the smallest index.
        """
        (metric,) = self._metric_names([metric])
        part = self._part(space, dataset, hp)
        part._ensure_layout()
        ep, _ = self._epochs_arg(part, epoch)
        column = self._mean(part, metric)[:, int(ep) - 1]
        if np.isnan(column).all():
            raise UserError(f"no architecture has a {metric} value at epoch {int(ep)} in {part.label}")
        pick = np.nanargmin if metric in _LOWER_IS_BETTER else np.nanargmax
        arch = int(pick(column))
        return arch, float(column[arch])

    # --- the task view (benchmark_data.task) ---------------------------------------------------
    def feedback_dataset(self, space: str, dataset: str, hp: int | None = None) -> str:
        """Where a search on ``dataset`` reads its feedback and times (``task.feedback_dataset``,
        as NATS-Bench: ``cifar10`` -> ``cifar10-valid``, trained on 25K and validated on the
        other 25K, when the store has training results for it). With ``hp``, that recipe must
        exist there (UserError naming the recipes it has)."""
        out = self._feedback.get((space, dataset))
        if out is None:  # cached: simulate_train_eval asks once per query
            self._check_dataset(space, dataset)
            trained = {k[1] for k, p in self._epochs.items() if k[0] == space and p.readable()}
            out = self._feedback[(space, dataset)] = T.feedback_dataset(dataset, trained)
        if hp is not None:
            self._part(space, out, hp)
        return out

    def choose_dataset(self, space: str, requested: str | None = None) -> str:
        """``requested`` (checked), else the dataset a search on this store means
        (``task.choose_dataset``: cifar10 when present, else the only one, cifar10-valid beside
        cifar10 not counting); a UserError listing the datasets otherwise."""
        return T.choose_dataset(self.datasets(space), requested, where=f"the benchmark at {self.root}",
                                space=space)

    def roles(self, space: str, dataset: str, hp: int, keys: Sequence[str] | None = None
              ) -> dict[str, str]:
        """{"objective_column", "time_column", "fidelity_column"} (or only ``keys``) of an epochs
        partition, as its files' metadata name them (``schema.provenance``), falling back to
        ``schema.ROLE_COLUMNS["epochs"]`` for a role no file names; UserError where the files
        name different columns for one role."""
        return self._part(space, dataset, hp).roles(keys)

    def task(self, space: str, dataset: str | None = None, hp: int | None = None, *,
             final_hp: int | None = None, feedback: str | None = None,
             final_metric: str = "test_acc", allow_gaps: bool = False) -> T.Task:
        """The benchmark task view of (space, dataset, hp): see ``benchmark_data.task.Task`` and
        ``Task.from_benchmark`` for the defaults and ``allow_gaps``. Cached per arguments: the
        arrays are shared read-only views of the reader's, so a second call costs nothing."""
        key = (space, dataset, hp, final_hp, feedback, final_metric, allow_gaps)
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = T.Task.from_benchmark(
                self, space, dataset, hp, feedback=feedback, final_hp=final_hp, final_metric=final_metric,
                allow_gaps=allow_gaps)
        return task

    def time_cost_curve(self, space: str, dataset: str, hp: int) -> Curve:
        """Seconds NATS-Bench charges for training to epoch e and evaluating once, per arch/seed:
        the training times of epochs 1..e plus the mean validation-pass time over epochs 1..e
        (NATS' ``train-all-time + valid-per-time``). float64: these are summed by the simulator."""
        part = self._part(space, dataset, hp)
        values = self._time_cost(part)
        return Curve(values, part.seeds, np.arange(1, part.n_epochs + 1, dtype=np.int16),
                     part.present, part.seed_present, part.surrogate)

    @staticmethod
    def _time_cost(part: _Partition) -> np.ndarray:
        def make() -> np.ndarray:
            time_column = part.roles(("time_column",))["time_column"]
            return T.nats_time_cost(part.column(time_column), part.column(T.EVAL_TIME_COLUMN))
        return part.derived("time_cost", make)

    @staticmethod
    def _objective(part: _Partition) -> np.ndarray:
        key = ("roles", ("objective_column",))
        roles = part.cache.get(key) or part.roles(key[1])  # cached: the simulator's hot path
        return part.column(roles["objective_column"])

    def simulate_train_eval(self, space: str, arch_index: Any, dataset: str, hp: int = 12,
                            epoch: int | None = None, rng: Any = None
                            ) -> tuple[Any, Any, Any]:
        """(valid_acc, latency_ms, time_cost_s) of training ``arch_index`` to ``epoch``.

        As NATS-Bench's ``simulate_train_eval``: one training seed drawn at random (from ``rng``),
        feedback from ``feedback_dataset`` (cifar10 -> cifar10-valid), time = training time up to
        the epoch plus one validation pass, latency of the requested dataset (NaN when the store
        has no latency for it). Unlike NATS-Bench, no clock is kept here: the caller sums times.
        """
        fb = self.feedback_dataset(space, dataset, hp)
        part = self._part(space, fb, hp)
        if (isinstance(arch_index, (int, np.integer)) and not isinstance(arch_index, bool)
                and (epoch is None or isinstance(epoch, (int, np.integer))) and part.files):
            a, e = int(arch_index), part.n_epochs if epoch is None else int(epoch)
            if 0 <= a < part.size and part.present[a] and 1 <= e <= part.n_epochs:
                return self._simulate_one(part, space, dataset, hp, a, e, _as_rng(rng))
        arch, scalar_a = self._archs_arg(part, arch_index)
        ep, scalar_e = self._epochs_arg(part, epoch)
        arch, ep = np.broadcast_arrays(arch, ep)
        pos = self._seed_positions(part, arch, "random", rng)
        valid = self._objective(part)[arch, pos, ep - 1]
        cost = self._time_cost(part)[arch, pos, ep - 1]
        if (space, dataset) in self._archs:
            latency = self._archs[(space, dataset)].column("latency_ms")[arch]  # NaN if absent
        else:
            latency = np.full(arch.shape, np.nan, np.float32)
        if scalar_a and scalar_e:
            return float(valid), float(latency), float(cost)
        return valid, latency, cost

    def _simulate_one(self, part: _Partition, space: str, dataset: str, hp: int, a: int, e: int,
                      rng: np.random.Generator) -> tuple[float, float, float]:
        """``simulate_train_eval`` for one plain-int query: the simulator's hot path. Draws
        from ``rng`` exactly as the vectorized path does, so both give the same answers."""
        seeds = np.flatnonzero(part.seed_present[a])
        pos = int(seeds[rng.integers(0, seeds.size)])
        valid = self._objective(part)[a, pos, e - 1]
        cost = self._time_cost(part)[a, pos, e - 1]
        archs = self._archs.get((space, dataset))
        latency = np.nan if archs is None else archs.column("latency_ms")[a]  # NaN if absent
        return float(valid), float(latency), float(cost)

    def runs(self, experiment: str | None = None) -> pd.DataFrame:
        """Rows of the ``runs`` table (one experiment, or all), deduplicated, in key order."""
        return self._experiment_rows("runs", self._runs, experiment)

    def trials(self, experiment: str | None = None) -> pd.DataFrame:
        """Rows of the ``trials`` table of live searches (one experiment, or all), deduplicated,
        in key order."""
        return self._experiment_rows("trials", self._trials, experiment)

    def _experiment_rows(self, table: str, folders: dict[str, Path], experiment: str | None) -> pd.DataFrame:
        import pandas as pd

        names = sorted(folders) if experiment is None else [experiment]
        frames = []
        for name in names:
            if name not in folders:
                raise UserError(f"experiment {name!r} is not in the store's {table} table; it has: "
                                f"{', '.join(sorted(folders)) or 'none'}")
            part = _Partition(self, table, {"experiment": name}, folders[name], 0)
            frames.append(part.table_frame())
        if not frames:
            return S.SCHEMAS[table].empty_table().to_pandas()
        out = pd.concat(frames, ignore_index=True)[S.SCHEMAS[table].names]
        return out.sort_values(list(S.KEY_COLUMNS[table]), kind="stable", ignore_index=True)
