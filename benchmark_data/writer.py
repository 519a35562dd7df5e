"""Append-only writing of store fragments, and compaction.

Writers never modify a finished file. Each call writes new fragments under a hidden temporary
name, fsyncs, and renames them into place (``os.replace`` is atomic on POSIX), so a reader, another
writer process or a crash never exposes a half-written ``.parquet`` file. Many small fragments are
slow to read, so ``compact`` merges each partition's fragments into one file, again atomically,
and only then deletes the merged fragments. A reader that lists the folder in between sees both
the merged file and (some of) its sources; it drops duplicate keys exactly as compaction does, so
the answer is the same.

Two writers of the same key at once (two live searches sharing a store, both training one
architecture and seed) would each find the key missing and each write it. ``write_new_rows``
checks and writes under the partition's lock (the one compaction takes), so the second writer
finds the first's rows and writes none of them. Whatever reaches a store by other means (two
builders planned at once, files copied in) is still resolved by the one key rule: the reader and
``compact`` keep the last written row of every key.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spaces.errors import UserError

from . import schema as S
from .arrow import to_numpy

if TYPE_CHECKING:  # rows may come as a DataFrame, but a writer handed Arrow tables needs no pandas
    import pandas as pd

# zstd: about half the size of snappy on these float tables and just as fast to read.
_COMPRESSION = "zstd"
_RESERVED_META = ("table", "partition")
# Metadata keys that legitimately differ between fragments of one recipe (not provenance).
_VOLATILE_META = ("created_at", "table", "partition", "compacted_at", "provenance_variants",
                  "ARROW:schema")


def _to_arrow(rows: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    pd = sys.modules.get("pandas")  # a DataFrame exists only if pandas was imported
    if pd is not None and isinstance(rows, pd.DataFrame):
        try:
            return pa.Table.from_pandas(rows, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise UserError(f"rows cannot be converted to Arrow (a column mixes types?): {exc}") \
                from exc
    raise UserError(f"rows must be a pandas DataFrame or a pyarrow Table, got {type(rows).__name__}")


def conform(table: str, rows: pd.DataFrame | pa.Table, *, stored: bool = False,
            columns: list[str] | tuple[str, ...] | None = None) -> pa.Table:
    """Return ``rows`` with exactly the table's columns, order and types.

    Missing optional columns become nulls (gaps stay gaps); unknown columns, missing key columns,
    nulls in key columns, values that do not fit the column type (e.g. 70000 in an int16, 'abc'
    in a float) and unknown status values raise UserError, because silently dropping or
    coercing them would corrupt the benchmark. ``stored=True`` conforms to the in-file schema
    (partition columns removed), as used when re-reading fragments; ``columns`` restricts the
    result to those columns (a reader asking for one metric).
    """
    target = S.data_schema(table) if stored else S.check_table(table)
    if columns is not None:
        missing = [c for c in columns if c not in target.names]
        if missing:
            raise UserError(f"table {table!r} has no column(s) {missing}; "
                            f"its columns are {', '.join(target.names)}")
        target = pa.schema([target.field(c) for c in columns])
    tbl = _to_arrow(rows)
    partition_cols = set(S.PARTITION_COLUMNS[table])
    unknown = [c for c in tbl.column_names if c not in target.names
               and not (stored and c in partition_cols)] if columns is None else []
    if unknown:
        raise UserError(f"table {table!r} has no column(s) {', '.join(map(repr, unknown))}; "
                        f"its columns are {', '.join(target.names)}")
    if len(set(tbl.column_names)) != len(tbl.column_names):
        raise UserError(f"rows for {table!r} have duplicate column names: {tbl.column_names}")
    n = tbl.num_rows
    arrays = []
    for fld in target:
        if fld.name not in tbl.column_names:
            if not fld.nullable:
                raise UserError(f"rows for {table!r} lack the required column {fld.name!r}")
            arrays.append(pa.nulls(n, fld.type))
            continue
        col = tbl.column(fld.name)
        if pa.types.is_dictionary(col.type):  # pandas categoricals
            col = col.cast(col.type.value_type)
        if col.type != fld.type:
            try:
                col = col.cast(fld.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise UserError(f"column {fld.name!r} of {table!r}: cannot store {col.type} values "
                                f"as {fld.type} ({exc}); fix the values or their type") from exc
        if not fld.nullable and col.null_count:
            raise UserError(f"column {fld.name!r} of {table!r} is a key column and has "
                            f"{col.null_count} null value(s); every row needs a value there")
        arrays.append(col)
    out = pa.Table.from_arrays(arrays, schema=target)
    for name, allowed in S.ALLOWED_VALUES.get(table, {}).items():
        if name not in target.names or not out.num_rows:
            continue
        given = pc.unique(out[name].drop_null())
        # (typed: pyarrow's type inference of a Python list would import pandas)
        bad = pc.filter(given, pc.invert(pc.is_in(given, value_set=pa.array(list(allowed), given.type))))
        if len(bad):
            raise UserError(f"unknown {name} value(s) {bad.to_pylist()}; "
                            f"allowed: {', '.join(allowed)}")
    return out


def _check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(metadata, Mapping):
        raise UserError("metadata must be a dict of str -> str, e.g. schema.provenance(...)")
    meta = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise UserError(f"metadata must map str -> str; got {key!r}: {value!r} "
                            "(encode structured values as JSON)")
        if key in _RESERVED_META:
            raise UserError(f"metadata key {key!r} is set by the writer; remove it")
        meta[key] = value
    version = meta.setdefault("schema_version", S.SCHEMA_VERSION)
    if version != S.SCHEMA_VERSION:
        raise UserError(f"metadata says schema_version {version!r} but this code writes "
                        f"{S.SCHEMA_VERSION!r}; build the metadata with schema.provenance()")
    return meta


def _fragment_name(timestamp_ns: int | None = None) -> str:
    ts = time.time_ns() if timestamp_ns is None else timestamp_ns
    return f"part-{ts:020d}-{uuid.uuid4().hex[:16]}{S.FRAGMENT_SUFFIX}"


def _fragment_timestamp(path: Path) -> int:
    """Write time encoded in a fragment name; 0 for foreign files (they sort as oldest)."""
    parts = path.name.split("-")
    if len(parts) >= 3 and parts[0] == "part" and parts[1].isdigit():
        return int(parts[1])
    return 0


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(tbl: pa.Table, folder: Path, timestamp_ns: int | None = None) -> Path:
    """Write ``tbl`` to a hidden temp file, fsync it, then rename it to a finished name."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".part-{uuid.uuid4().hex}{S.FRAGMENT_SUFFIX}.tmp"
    try:
        pq.write_table(tbl, tmp, compression=_COMPRESSION)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        # The name is taken at rename time so that name order is visibility order.
        final = folder / _fragment_name(timestamp_ns)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(folder)
    return final


def _partition_groups(tbl: pa.Table, table: str) -> Iterator[tuple[dict, pa.Table]]:
    cols = list(S.PARTITION_COLUMNS[table])
    # The distinct combinations, by dictionary-encoding each column (group_by would load
    # pyarrow.dataset, which imports pandas: a third of a short simulated run's process).
    codes = [pc.dictionary_encode(tbl[c]).combine_chunks() for c in cols]
    key = np.zeros(tbl.num_rows, np.int64)
    for code in codes:  # one integer per row naming its combination (mixed radix)
        key = key * len(code.dictionary) + to_numpy(code.indices)
    combos = []
    for k in np.unique(key).tolist():
        combo = {}
        for c, code in zip(reversed(cols), reversed(codes)):
            k, i = divmod(k, len(code.dictionary))
            combo[c] = code.dictionary[i].as_py()
        combos.append({c: combo[c] for c in cols})
    for combo in sorted(combos, key=lambda c: tuple(str(c[k]) for k in cols)):
        mask = None
        for col in cols:
            m = pc.equal(tbl[col], pa.scalar(combo[col], tbl.schema.field(col).type))
            mask = m if mask is None else pc.and_(mask, m)
        yield combo, (tbl if len(combos) == 1 else tbl.filter(mask))


def write_fragment(root: str | Path, table: str, rows: pd.DataFrame | pa.Table, *,
                   metadata: Mapping[str, str]) -> list[Path]:
    """Append ``rows`` to the store as one new fragment per partition present in them.

    Returns the finished paths (empty if there were no rows). Safe to call from many processes
    at once: fragments get unique names and appear atomically.
    """
    meta = _check_metadata(metadata)
    tbl = conform(table, rows)
    if tbl.num_rows == 0:
        return []
    stored = S.data_schema(table).names
    # Check every partition's folder name before writing any, so bad input writes nothing.
    groups = [(S.partition_path(root, table, combo), combo, part)
              for combo, part in _partition_groups(tbl, table)]
    written = []
    for folder, combo, part in groups:
        file_meta = {**meta, "table": table, "partition": json.dumps(combo, sort_keys=True)}
        data = part.select(stored).replace_schema_metadata(file_meta)
        written.append(_write_atomic(data, folder))
    return written


@contextlib.contextmanager
def staged(root: str | Path) -> Iterator[Path]:
    """A hidden scratch store inside ``root``; its fragments join ``root`` only if the block ends
    without an exception.

    For writers that can only validate their input while writing it in pieces (an archive import
    flushes partitions as it goes, to bound memory): on an error nothing reaches the store. The
    scratch folder starts with '.', so readers, compaction and outside tools never see it. A
    ``root`` this call had to create is removed again on an error.
    """
    root = Path(root)
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    stage = root / f".staging-{uuid.uuid4().hex}"
    try:
        yield stage
        _publish(stage, root)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                root.rmdir()  # only if still empty
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, root: Path) -> None:
    """Move every fragment of ``stage`` into ``root`` in write order, renamed with the current
    clock so that it sorts after fragments others wrote meanwhile (it becomes visible now)."""
    last = 0
    for table in S.TABLES:
        for _, folder in S.iter_partitions(stage, table):
            dest = root / folder.relative_to(stage)
            dest.mkdir(parents=True, exist_ok=True)
            for path in S.list_fragments(folder):
                last = max(time.time_ns(), last + 1)  # strictly increasing: keeps the order
                os.replace(path, dest / _fragment_name(last))
            _fsync_dir(dest)


def dedupe_keep_last(tbl: pa.Table, keys: list[str] | tuple[str, ...]) -> pa.Table:
    """Drop rows whose key repeats a later row's key: the last written row wins."""
    if tbl.num_rows == 0 or not keys:
        return tbl
    rows = tbl.select(list(keys)).append_column("__row", pa.array(np.arange(tbl.num_rows)))
    last = rows.group_by(list(keys), use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == tbl.num_rows:
        return tbl
    keep = np.sort(last["__row_max"].to_numpy())
    return tbl.take(pa.array(keep))


def _open_checked(path: Path, use: Callable[[pq.ParquetFile], tuple]) -> tuple:
    """``use(file)`` on an open Parquet file whose last item is its Arrow schema, after which the
    file's schema_version is checked; UserError naming a corrupt or incompatible file,
    FileNotFoundError passed through (a concurrent compaction removed it)."""
    try:
        pf = pq.ParquetFile(path)
        try:
            out = use(pf)
        finally:
            pf.close()
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"corrupt or truncated Parquet file {path}: {exc}; delete it (or restore "
                        "it) and re-run the step that wrote it") from exc
    version = (out[-1].metadata or {}).get(b"schema_version", b"").decode()
    if version and version.split(".")[0] != S.SCHEMA_VERSION.split(".")[0]:
        raise UserError(f"file {path} has schema_version {version}, this code reads "
                        f"{S.SCHEMA_VERSION}; upgrade the code (or re-import the data)")
    return out


def check_footer(path: Path, table: str) -> int:
    """Row count of a fragment from its footer alone, after checking that it is a file of
    ``table``: readable footer, the same major schema_version, every required column present.

    Cheap (one small read at the end of the file), so a reader can tell a truncated or foreign
    file from a good one without reading its data. UserError names the file; FileNotFoundError
    passes through (a concurrent compaction removed it).
    """
    rows, schema = _open_checked(path, lambda pf: (pf.metadata.num_rows, pf.schema_arrow))
    missing = [f.name for f in S.data_schema(table) if not f.nullable and f.name not in schema.names]
    if missing:
        raise UserError(f"file {path} is not a {table!r} fragment: it lacks the column(s) "
                        f"{', '.join(missing)} (its columns: {', '.join(schema.names) or 'none'}); "
                        "move it out of the store")
    return rows


def read_fragment(path: Path, table: str, columns: list[str] | None = None) -> pa.Table:
    """Read one fragment conformed to the stored schema; UserError naming a corrupt file.

    ``columns`` reads only those columns (absent ones, e.g. in files from an older writer, come
    back as nulls). The file's key/value metadata is kept on the result. FileNotFoundError passes
    through: it means a concurrent compaction removed the file, which callers handle by listing
    the folder again.
    """
    def read(pf: pq.ParquetFile) -> tuple[pa.Table, pa.Schema]:
        present = set(pf.schema_arrow.names)
        wanted = None if columns is None else [c for c in columns if c in present]
        return pf.read(columns=wanted, use_threads=False), pf.schema_arrow

    tbl, schema = _open_checked(path, read)
    meta = schema.metadata or {}
    try:
        out = conform(table, tbl, stored=True, columns=columns)
    except UserError as exc:
        raise UserError(f"file {path} does not match the {table!r} schema: {exc}") from exc
    if columns is None:
        parts = set(S.PARTITION_COLUMNS[table])
        out = out.select([c for c in out.column_names if c not in parts])
    return S.upgrade(table, out.replace_schema_metadata(meta))  # older files in today's meaning


@dataclass
class CompactReport:
    """What ``compact`` did, for the CLI and for tests."""
    partitions: int = 0          # partitions looked at
    compacted: int = 0           # partitions rewritten
    fragments_merged: int = 0    # fragments replaced by merged files
    rows_before: int = 0
    rows_after: int = 0          # rows_before - rows_after = duplicate keys dropped
    bad_files: list[Path] = field(default_factory=list)  # corrupt fragments left in place

    def __str__(self) -> str:
        text = (f"{self.partitions} partition(s), {self.compacted} compacted, "
                f"{self.fragments_merged} fragment(s) merged, {self.rows_before} -> "
                f"{self.rows_after} rows ({self.rows_before - self.rows_after} duplicate(s) dropped)")
        if self.bad_files:
            text += f"; {len(self.bad_files)} corrupt file(s) left in place: " + \
                ", ".join(map(str, self.bad_files))
        return text


def write_new_rows(root: str | Path, table: str, rows: pd.DataFrame | pa.Table, *,
                   metadata: Mapping[str, str]) -> int:
    """``write_fragment`` of those ``rows`` whose key the store does not hold yet; the number
    written. Per partition, the check and the write happen under the partition's lock, so
    concurrent callers (processes on one file system) never write one key twice. Rows repeating
    a key among themselves keep the last. Unreadable fragments count as holding nothing, as for
    every other writer (the reader and ``compact`` report them)."""
    meta = _check_metadata(metadata)
    tbl = conform(table, rows)
    # Within one partition folder the partition columns are equal: the rest of the key decides.
    keys = [k for k in S.KEY_COLUMNS[table] if k not in S.PARTITION_COLUMNS[table]]
    groups = [(S.partition_path(root, table, combo), part) for combo, part in _partition_groups(tbl, table)]
    written = 0
    for folder, part in groups:
        part = dedupe_keep_last(part, keys)
        with _partition_lock(folder):
            stored = []
            for path in S.list_fragments(folder):
                try:
                    stored.append(read_fragment(path, table, columns=keys))
                except (FileNotFoundError, UserError):
                    continue
            if stored:
                have = pa.concat_tables([t.select(keys) for t in stored])
                have = have.append_column("__stored", pa.array(np.ones(have.num_rows, bool)))
                part = part.append_column("__order", pa.array(np.arange(part.num_rows)))
                part = part.join(have, keys, join_type="left outer", use_threads=False)
                new = part.filter(pc.is_null(part["__stored"]))
                part = new.sort_by("__order").drop_columns(["__stored", "__order"])  # the rows' own order
            if part.num_rows:
                write_fragment(root, table, part, metadata=meta)
                written += part.num_rows
    return written


@contextlib.contextmanager
def _partition_lock(folder: Path) -> Iterator[None]:
    # Two compactions of one partition would each delete the other's sources, and two
    # check-then-write writers would each write a key the other wrote meanwhile: serialize them.
    # The lock file starts with '.' so readers never mistake it for data.
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".compact.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _merged_metadata(metas: list[dict[str, str]]) -> dict[str, str]:
    """Provenance of a merged file: the newest fragment's, plus every distinct variant if the
    fragments disagree (e.g. rows produced by two code versions), so that nothing is lost."""
    variants: list[dict[str, str]] = []
    for meta in metas:
        for old in json.loads(meta.get("provenance_variants", "[]")) or [meta]:
            core = {k: v for k, v in old.items() if k not in _VOLATILE_META}
            if core not in variants:
                variants.append(core)
    out = {k: v for k, v in metas[-1].items() if k != "ARROW:schema"}
    out.pop("provenance_variants", None)
    if len(variants) > 1:
        out["provenance_variants"] = json.dumps(variants, sort_keys=True)
    out["compacted_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return out


def _compact_partition(folder: Path, table: str, report: CompactReport) -> None:
    with _partition_lock(folder):
        files = S.list_fragments(folder)
        good, parts, metas = [], [], []
        for path in files:
            try:
                tbl = read_fragment(path, table)
            except FileNotFoundError:
                continue
            except UserError as exc:
                warnings.warn(f"compact: skipping {exc}", stacklevel=3)
                report.bad_files.append(path)
                continue
            good.append(path)
            metas.append(dict((k.decode(), v.decode()) for k, v in tbl.schema.metadata.items()))
            parts.append(tbl.replace_schema_metadata(None))
        if not good:
            return
        merged = pa.concat_tables(parts)
        rows_before = merged.num_rows
        keys = [k for k in S.KEY_COLUMNS[table] if k not in S.PARTITION_COLUMNS[table]]
        merged = dedupe_keep_last(merged, keys)
        report.rows_before += rows_before
        report.rows_after += merged.num_rows
        if len(good) == 1 and merged.num_rows == rows_before:
            return  # already one clean file: rewriting would only churn
        merged = merged.sort_by([(k, "ascending") for k in keys])
        merged = merged.replace_schema_metadata(_merged_metadata(metas))
        # The merged file takes the newest source's timestamp, so fragments that became visible
        # after this compaction listed the folder still sort after it (and still win).
        _write_atomic(merged, folder, max(_fragment_timestamp(p) for p in good))
        for path in good:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        _fsync_dir(folder)
        report.compacted += 1
        report.fragments_merged += len(good)


def compact(root: str | Path, table: str | None = None) -> CompactReport:
    """Merge each partition's fragments into one file and drop duplicate keys (last wins).

    ``table=None`` compacts every table. Corrupt fragments are left in place, reported and warned
    about; the others are merged. Safe while readers read and writers write.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"store folder {root} does not exist; give the folder that holds "
                        "archs/, epochs/ and runs/")
    tables = S.TABLES if table is None else (S.check_table(table) and (table,))
    report = CompactReport()
    for name in tables:
        for _, folder in S.iter_partitions(root, name):
            report.partitions += 1
            _compact_partition(folder, name, report)
    return report
