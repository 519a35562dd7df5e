"""Importers for the official NATS-Bench data, so published results become rows of our store.

Two sources are understood:

* an official archive: a ``NATS-{tss,sss}-v1_0-*-simple`` directory (``meta.pickle.pbz2`` plus
  one ``<index>.pickle.pbz2`` per architecture, as NATS-Bench's ``fast_mode`` reads it) or the
  single-file ``NATS-*.pickle.pbz2`` that holds the same records in one dict;
* a table in the layout of ``nats_tss_cifar10_test_acc_200ep.csv`` (``index,arch,<value>``).

Pickles can run arbitrary code when loaded, and archives come from the internet, so they are read
with a restricted unpickler that admits only the handful of container types the archives use;
anything else (``os.system``, ``builtins.eval``, any class) is refused before it is looked up.

How NATS-Bench's evaluation sets map onto our columns (what NATS-Bench's own
``remap_dataset_set_names`` calls valid and test):

===================  =====================  ======================  =====================
NATS-Bench dataset   train_* (trained on)   valid_*                 test_*
===================  =====================  ======================  =====================
cifar10-valid        train (25K)            x-valid (other 25K)     ori-test (10K test)
cifar10              train + valid (50K)    null (no such split)    ori-test (10K test)
cifar100             train (50K)            x-valid (5K of test)    x-test (other 5K)
ImageNet16-120       train (151.7K)         x-valid (3K of test)    x-test (other 3K)
===================  =====================  ======================  =====================

For cifar100 and ImageNet16-120, NATS-Bench's ``ori-test`` is the union of the two equal halves
x-valid and x-test, so its accuracy and loss are their mean; it is not stored (the facade derives
it). The importer checks that relation wherever all three are present and reports the largest
deviation, and it counts ``ori-test`` points it had to drop because a half was missing.
``epoch_time_s`` is the recorded training time of that epoch and ``eval_time_s`` the recorded
time of one pass over the x-valid set (null for cifar10, which has none); NATS-Bench's test-set
times are not kept. Costs (params, FLOPs, latency) are taken from the longest recipe (hp) of each
architecture, exactly as NATS-Bench's ``get_compute_costs`` averages them over seeds.
"""

from __future__ import annotations

import argparse
import bz2
import collections
import csv
import functools
import math
import pickle
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from spaces import get_space
from spaces.errors import UserError

from . import schema as S
from . import writer

PICKLE_EXT = ".pickle.pbz2"
_ARCH_FILE = re.compile(r"^(\d+)\.pickle\.pbz2$")
# Everything an official archive needs to be rebuilt. Resolved here, never imported by name from
# the file, so a pickle cannot even make us import a module.
_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("numpy", "dtype"): np.dtype,  # numpy scalars / arrays, should a record hold any
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy", "ndarray"): np.ndarray,
}
# Official recipe of every NATS-Bench hp (the hyper-opts configs of AutoDL-Projects).
_RECIPE = {"optimizer": "SGD", "nesterov": True, "momentum": 0.9, "weight_decay": 5e-4,
           "lr": 0.1, "lr_min": 0.0, "schedule": "cosine", "batch_size": 256}
_SKELETON = {"tss": {"C": 16, "N": 5}, "sss": {"N": 1}}
_METRICS = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
            "epoch_time_s", "eval_time_s")


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickler that knows only ``_SAFE_GLOBALS``: a refused name is never imported or called."""

    def __init__(self, fh: Any, path: Path):
        super().__init__(fh)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        obj = _SAFE_GLOBALS.get((module, name))
        if obj is None:
            raise UserError(
                f"{self._path}: refused to load: the pickle asks for {module}.{name}, which no "
                "NATS-Bench archive contains (the file may be malicious or not an archive); "
                "re-download the official archive")
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise UserError(f"{self._path}: refused to load: the pickle uses persistent ids, which no "
                        "NATS-Bench archive contains; re-download the official archive")


def load_pickle(path: str | Path) -> Any:
    """Load one bz2-compressed pickle of an official archive, safely."""
    path = Path(path)
    try:
        with bz2.open(path, "rb") as fh:
            return _ArchiveUnpickler(fh, path).load()
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; give the path of an official NATS-Bench archive") from None
    except Exception as exc:  # bz2/pickle raise many types for damaged files
        raise UserError(f"{path} is not a readable NATS-Bench pickle ({type(exc).__name__}: "
                        f"{exc}); re-download the archive") from exc


@dataclass
class ImportReport:
    """What an import wrote, for the CLI and for tests."""
    source: str
    space: str
    datasets: list[str] = field(default_factory=list)
    hps: list[int] = field(default_factory=list)
    archs: int = 0                 # architectures with results
    arch_rows: int = 0
    epoch_rows: int = 0
    seconds: float = 0.0
    ori_test_checked: int = 0      # (cifar100/ImageNet) points where ori-test was compared
    ori_test_max_dev: float = 0.0  # largest |ori-test - mean(x-valid, x-test)|, percent
    ori_test_dropped: int = 0      # ori-test points not stored because a half was missing

    def __str__(self) -> str:
        text = (f"imported {self.source}: space {self.space}, {self.archs} architecture(s), "
                f"dataset(s) {', '.join(self.datasets)}, hp {', '.join(map(str, self.hps))}; "
                f"{self.arch_rows} archs row(s), {self.epoch_rows} epochs row(s) "
                f"in {self.seconds:.1f} s")
        if self.ori_test_checked:
            text += (f"; ori-test = mean(x-valid, x-test) within {self.ori_test_max_dev:.4f} "
                     f"points at {self.ori_test_checked} point(s)")
        if self.ori_test_dropped:
            text += f"; {self.ori_test_dropped} ori-test point(s) without both halves dropped"
        return text


# --------------------------------------------------------------------------------------------
# The official archive
def _detect_space(meta_archs: Any, where: Path) -> str:
    if not isinstance(meta_archs, (list, tuple)) or not meta_archs or \
            not all(isinstance(a, str) for a in meta_archs):
        raise UserError(f"{where}: 'meta_archs' is not a list of architecture strings; this is "
                        "not a NATS-Bench archive")
    if all(a.startswith("|") for a in meta_archs):
        return "tss"
    if all(":" in a for a in meta_archs):
        return "sss"
    raise UserError(f"{where}: 'meta_archs' mixes or contains unknown architecture strings "
                    f"(first: {meta_archs[0]!r}); expected all topology or all size strings")


def _project_indices(space: str, meta_archs: Sequence[str], where: str) -> np.ndarray:
    """Project index of every official string, checking the strings are canonical and unique."""
    sp = get_space(space)
    out = np.empty(len(meta_archs), dtype=np.int64)
    for i, arch in enumerate(meta_archs):
        try:
            out[i] = sp.parse(arch)
        except UserError as exc:
            raise UserError(f"{where}: official index {i}: {exc}") from None
        if sp.to_str(int(out[i])) != arch:
            raise UserError(f"{where}: official index {i}: {arch!r} is not in canonical form "
                            f"({sp.to_str(int(out[i]))!r})")
    uniq, counts = np.unique(out, return_counts=True)
    if (counts > 1).any():
        dup = int(uniq[counts > 1][0])
        first = [i for i, v in enumerate(out) if v == dup][:2]
        raise UserError(f"{where}: official indices {first[0]} and {first[1]} are the same "
                        f"architecture {meta_archs[first[0]]!r}; the archive is corrupt")
    return out


def _open_archive(src: Path) -> tuple[list[str], Iterator[tuple[int, Path, Any]], int]:
    """meta_archs, an iterator of (official index, file, {hp: ArchResults state}), and a count."""
    if src.is_dir():
        meta_path = src / f"meta{PICKLE_EXT}"
        if not meta_path.is_file():
            raise UserError(f"{src} has no meta{PICKLE_EXT}; give an official NATS-Bench "
                            "'*-simple' directory (e.g. NATS-tss-v1_0-3ffb9-simple)")
        meta = load_pickle(meta_path)
        if not isinstance(meta, Mapping) or "meta_archs" not in meta:
            raise UserError(f"{meta_path} holds no 'meta_archs'; this is not a NATS-Bench archive")
        files: dict[int, Path] = {}
        for p in src.iterdir():
            m = _ARCH_FILE.match(p.name)
            if m:
                idx = int(m.group(1))
                if idx in files:
                    raise UserError(f"{src}: both {files[idx].name} and {p.name} hold official "
                                    f"index {idx}; remove one")
                files[idx] = p
        order = sorted(files)
        return list(meta["meta_archs"]), ((i, files[i], load_pickle(files[i])) for i in order), \
            len(order)
    data = load_pickle(src)
    if not isinstance(data, Mapping) or "meta_archs" not in data:
        raise UserError(f"{src} holds no 'meta_archs'; this is not a NATS-Bench archive")
    infos = data.get("arch2infos")
    if not isinstance(infos, Mapping):
        raise UserError(f"{src} is the meta file of a '*-simple' directory (it has no records); "
                        "give the directory itself")
    return list(data["meta_archs"]), ((int(i), src, infos[i]) for i in sorted(infos)), len(infos)


def _series(values: Any, n: int, keys: Sequence[Any] | None = None) -> np.ndarray:
    """float64 values at iepoch 0..n-1 (or at ``keys``) of a per-epoch dict or list; NaN gaps."""
    keys = range(n) if keys is None else keys
    if values is None:
        return np.full(n, np.nan)
    if isinstance(values, Mapping):
        return np.array([values.get(k) for k in keys], dtype=np.float64)
    return np.array([values[k] if k < len(values) else None for k in keys], dtype=np.float64)


@functools.lru_cache(maxsize=64)
def _set_keys(name: str, n: int) -> tuple[str, ...]:
    return tuple(f"{name}@{e}" for e in range(n))  # NATS-Bench's "<set>@<iepoch>" keys


def _set_series(rc: Mapping, kind: str, name: str | None, n: int) -> np.ndarray:
    if name is None:
        return np.full(n, np.nan)
    return _series(rc.get(kind), n, _set_keys(name, n))


def value_problem(metric: str, value: float) -> str | None:
    """Why ``value`` cannot be a true ``metric`` value, or None if it can. NaN is a gap: fine.

    Accuracies are percentages; times and losses cannot be negative (cross-entropy is >= 0). An
    infinite loss can be true (a diverged network), an infinite accuracy or time cannot.
    """
    if value != value:
        return None
    if metric.endswith("_acc") and not 0.0 <= value <= 100.0:
        return f"{metric} {value!r} is outside 0..100 (accuracies are percent)"
    if metric.endswith("_time_s") and not (0.0 <= value < math.inf):
        return f"{metric} {value!r} is not a finite number of seconds >= 0"
    if metric.endswith("_loss") and not value >= 0.0:
        return f"{metric} {value!r} is negative (a cross-entropy is >= 0)"
    return None


def _check_values(cols: Mapping[str, np.ndarray], where: str) -> None:
    """UserError naming the first impossible value of a trial (vectorized: this runs per trial)."""
    for metric, values in cols.items():
        with np.errstate(invalid="ignore"):
            if metric.endswith("_acc"):
                bad = (values < 0) | (values > 100) | np.isinf(values)
            elif metric.endswith("_time_s"):
                bad = (values < 0) | np.isinf(values)
            else:
                bad = values < 0
        if bad.any():
            e = int(np.flatnonzero(bad)[0])
            raise UserError(f"{where}: epoch {e + 1} (iepoch {e}): "
                            f"{value_problem(metric, float(values[e]))}; the archive is corrupt, "
                            "re-download it")


def _trial_columns(rc: Mapping, report: ImportReport, where: str = "") -> dict[str, np.ndarray]:
    """Per-epoch columns of one trial (a ResultsCount state dict), mapped as the module says."""
    n = int(rc["epochs"])
    if n < 1:
        raise UserError(f"{where}: the trial records {n} epochs; a trial has at least one "
                        "(the archive is corrupt, re-download it)")
    names = set(rc.get("eval_names") or ())
    valid = "x-valid" if "x-valid" in names else None
    test = "x-test" if "x-test" in names else ("ori-test" if "ori-test" in names else None)
    cols = {
        "train_loss": _series(rc.get("train_losses"), n),
        "train_acc": _series(rc.get("train_acc1es"), n),
        "valid_loss": _set_series(rc, "eval_losses", valid, n),
        "valid_acc": _set_series(rc, "eval_acc1es", valid, n),
        "test_loss": _set_series(rc, "eval_losses", test, n),
        "test_acc": _set_series(rc, "eval_acc1es", test, n),
        "epoch_time_s": _series(rc.get("train_times"), n),
        "eval_time_s": _set_series(rc, "eval_times", valid, n),
    }
    if test == "x-test" and "ori-test" in names:  # the union of the halves: check, then drop
        union = _set_series(rc, "eval_acc1es", "ori-test", n)
        both = ~np.isnan(cols["valid_acc"]) & ~np.isnan(cols["test_acc"]) & ~np.isnan(union)
        if both.any():
            dev = np.abs(union - (cols["valid_acc"] + cols["test_acc"]) / 2)[both]
            report.ori_test_max_dev = max(report.ori_test_max_dev, float(dev.max()))
            report.ori_test_checked += int(both.sum())
        report.ori_test_dropped += int((~np.isnan(union) & ~both).sum())
    _check_values(cols, where)
    return cols


def _trial_costs(arch: Mapping, dataset: str) -> tuple[float, float, float]:
    """params_m, flops_m, latency_ms of one dataset, as NATS-Bench's get_compute_costs."""
    seeds = list(arch["dataset_seed"][dataset])
    trials = [arch["all_results"][(dataset, s)] for s in seeds]

    def consistent(values: list[float]) -> list[float]:
        # NATS-Bench's fix of a legacy issue: if seeds disagree, seed 888's value is the right one.
        if len(values) > 1 and len({f"{v:.5f}" for v in values}) > 1 and 888 in seeds:
            return [values[seeds.index(888)]]
        return values

    params = consistent([float(t["params"]) for t in trials])
    flops = consistent([float(t["flop"]) for t in trials])
    lat = [sum(t["latency"]) / len(t["latency"]) for t in trials if t.get("latency")]
    lat = [x for x in lat if x > 0]
    return (sum(params) / len(params), sum(flops) / len(flops),
            (sum(lat) / len(lat)) * 1000.0 if lat else math.nan)


def _float_array(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.float32), type=pa.float32(), from_pandas=True)


class _EpochBuffer:
    """Rows of one (dataset, hp) partition, written as one fragment when large enough.

    ``root`` is the import's staging store (``writer.staged``), never the destination itself.
    """

    def __init__(self, root: Path, space: str, dataset: str, hp: int, metadata: dict[str, str]):
        self.root, self.space, self.dataset, self.hp, self.metadata = root, space, dataset, hp, metadata
        self.parts: list[dict[str, np.ndarray]] = []
        self.rows = 0

    def add(self, arch_index: int, seed: int, cols: dict[str, np.ndarray]) -> None:
        n = len(cols["train_acc"])
        self.parts.append({"arch_index": np.full(n, arch_index, np.int32),
                           "seed": np.full(n, seed, np.int32),
                           "epoch": np.arange(1, n + 1, dtype=np.int16), **cols})
        self.rows += n

    def flush(self) -> int:
        if not self.rows:
            return 0
        n, cat = self.rows, {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        tbl = pa.table({
            "space": pa.repeat(self.space, n), "dataset": pa.repeat(self.dataset, n),
            "hp": pa.repeat(pa.scalar(self.hp, pa.int16()), n),
            "arch_index": cat["arch_index"], "seed": cat["seed"], "epoch": cat["epoch"],
            **{m: _float_array(cat[m]) for m in _METRICS},
            "status": pa.repeat("imported", n),
        })
        writer.write_fragment(self.root, "epochs", tbl, metadata=self.metadata)
        self.parts, self.rows = [], 0
        return n


def _provenance(space: str, dataset: str, hp: int | None, extra: dict[str, str]) -> dict[str, str]:
    recipe = {"name": f"NATS-Bench {hp} epochs", "epochs": hp, **_RECIPE} if hp else {}
    return S.provenance("epochs" if hp else "archs", recipe=recipe, skeleton=_SKELETON[space],
                        dataset_fingerprint=f"NATS-Bench:{dataset}", extra=extra)


def _existing_archs(root: Path, space: str, dataset: str) -> dict[int, dict[str, Any]]:
    """Current archs rows of one partition (last written wins), to merge new rows into."""
    folder = S.partition_path(root, "archs", {"space": space, "dataset": dataset})
    rows: dict[int, dict[str, Any]] = {}
    for path in S.list_fragments(folder):
        for row in writer.read_fragment(path, "archs").to_pylist():
            rows[row["arch_index"]] = row
    return rows


def _write_archs(root: Path, space: str, dataset: str, project: np.ndarray, official: np.ndarray,
                 costs: Mapping[int, tuple[float, float, float]], extra: dict[str, str],
                 out: Path | None = None) -> int:
    """Archs rows of one dataset; values this import lacks are kept from rows already there.

    Reads the existing rows from ``root`` and writes to ``out`` (a staging store; default root).
    """
    sp = get_space(space)
    iso = sp.iso_class_ids()
    old = _existing_archs(root, space, dataset)
    cost = np.array([costs.get(int(i), (math.nan,) * 3) for i in project], dtype=np.float64)
    cost = cost.reshape(len(project), 3)
    for j, col in enumerate(S.ARCH_COSTS):  # fill our gaps from an earlier import or build
        for r, a in enumerate(project):
            prev = old.get(int(a), {}).get(col)
            if math.isnan(cost[r, j]) and prev is not None:
                cost[r, j] = prev
    n = len(project)
    tbl = pa.table({
        "space": pa.repeat(space, n), "dataset": pa.repeat(dataset, n),
        "arch_index": project.astype(np.int32), "arch": [sp.to_str(int(a)) for a in project],
        "iso_class": iso[project].astype(np.int32), "nats_index": official.astype(np.int32),
        **{c: _float_array(cost[:, j]) for j, c in enumerate(S.ARCH_COSTS)},
    })
    writer.write_fragment(out or root, "archs", tbl,
                          metadata=_provenance(space, dataset, None, extra))
    return n


def import_nats_archive(src_dir: str | Path, dest_root: str | Path, *, progress: bool = True,
                        workers: int = 1, flush_rows: int = 1_000_000) -> ImportReport:
    """Import an official NATS-Bench archive (``*-simple`` directory or single file) into a store.

    Writes, for every dataset / hp / seed / epoch the archive holds, one ``epochs`` row with
    status "imported", and for every official architecture and dataset one ``archs`` row with
    its official index in ``nats_index``. ``workers`` > 1 decompresses and converts the records
    of a directory in that many processes (bz2 is most of the time; results stay in order).
    ``flush_rows`` bounds memory: a partition's buffered rows are written as one fragment when
    they exceed it.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    src, root = Path(src_dir), Path(dest_root)
    if not src.exists():
        raise UserError(f"{src} does not exist; give an official NATS-Bench '*-simple' directory")
    if not isinstance(workers, int) or workers < 1:
        raise UserError(f"workers must be a positive integer, got {workers!r}")
    meta_archs, records, count = _open_archive(src)
    space = _detect_space(meta_archs, src)
    project = _project_indices(space, meta_archs, str(src))
    report = ImportReport(source=src.name, space=space)
    extra = {"source": "NATS-Bench official archive", "source_archive": src.name,
             "importer": "benchmark_data.importers.import_nats_archive"}
    buffers: dict[tuple[str, int], _EpochBuffer] = {}
    costs: dict[str, dict[int, tuple[float, float, float]]] = {}

    def jobs() -> Iterator[tuple[int, Path, Any, str]]:
        for official, path, hp2arch in records:
            if not 0 <= official < len(meta_archs):
                raise UserError(f"{path}: official index {official} is outside the archive's "
                                f"{len(meta_archs)} architectures")
            yield official, path, hp2arch, meta_archs[official]

    results = tqdm(_run_jobs(jobs(), workers), total=count, desc=f"import {src.name}",
                   unit="arch", disable=not progress)
    # Records are validated as they are converted, and partitions are flushed as they fill (to
    # bound memory), so the fragments go to a staging store first: a bad record anywhere in the
    # archive leaves the destination exactly as it was.
    with writer.staged(root) as stage:
        for official, trials, arch_costs, counts in results:
            arch_index = int(project[official])
            for dataset, hp, seed, cols in trials:
                buf = buffers.get((dataset, hp))
                if buf is None:
                    buf = buffers[(dataset, hp)] = _EpochBuffer(
                        stage, space, dataset, hp, _provenance(space, dataset, hp, extra))
                buf.add(arch_index, seed, cols)
                if buf.rows >= flush_rows:
                    report.epoch_rows += buf.flush()
            for dataset, value in arch_costs.items():
                costs.setdefault(dataset, {})[arch_index] = value
            report.ori_test_checked += counts.ori_test_checked
            report.ori_test_dropped += counts.ori_test_dropped
            report.ori_test_max_dev = max(report.ori_test_max_dev, counts.ori_test_max_dev)
            report.archs += 1
        for buf in buffers.values():
            report.epoch_rows += buf.flush()
        for dataset in sorted(costs):
            report.arch_rows += _write_archs(root, space, dataset, project,
                                             np.arange(len(meta_archs)), costs[dataset], extra,
                                             out=stage)
    report.datasets = sorted(costs)
    report.hps = sorted({hp for _, hp in buffers})
    report.seconds = time.perf_counter() - start
    return report


def _run_jobs(jobs: Iterator[tuple], workers: int) -> Iterator[tuple]:
    """``_convert_job`` over ``jobs`` in order, in a process pool when ``workers`` > 1.

    Jobs go to the pool in windows so that finished results never pile up in memory.
    """
    if workers == 1:
        yield from map(_convert_job, jobs)
        return
    import concurrent.futures
    import itertools
    import multiprocessing

    # spawn: forking a process that already runs Arrow / tqdm threads is unsafe
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        while window := list(itertools.islice(jobs, 32 * workers)):
            yield from pool.map(_convert_job, window, chunksize=8)


def _convert_job(job: tuple[int, Path, Any, str]) -> tuple[int, list, dict, ImportReport]:
    """Load (if needed) and convert one architecture's record; errors name its file."""
    official, path, hp2arch, arch_str = job
    counts = ImportReport(source=path.name, space="")
    try:
        if hp2arch is None:
            hp2arch = load_pickle(path)
        trials, costs = _convert_record(hp2arch, arch_str, counts, official)
    except UserError as exc:
        raise UserError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise UserError(f"{path}: not a NATS-Bench record ({type(exc).__name__}: {exc}); "
                        "re-download the archive") from None
    return official, trials, costs, counts


def _convert_record(hp2arch: Any, arch_str: str, counts: ImportReport, official: int = -1
                    ) -> tuple[list[tuple[str, int, int, dict[str, np.ndarray]]],
                               dict[str, tuple[float, float, float]]]:
    """(dataset, hp, seed, columns) of every trial of one architecture, and its costs."""
    if not isinstance(hp2arch, Mapping) or not hp2arch:
        raise UserError("a record must map hp ('12', '200', ...) to results")
    hps = sorted(hp2arch, key=int)
    trials = []
    for hp_key in hps:
        arch = hp2arch[hp_key]
        if int(hp_key) < 1:  # hp is the recipe length in epochs
            raise UserError(f"official index {official}: hp {hp_key!r} is not a positive number "
                            "of epochs; the archive is corrupt")
        if arch.get("arch_str") != arch_str:
            raise UserError(f"hp {hp_key} holds arch {arch.get('arch_str')!r} but meta lists "
                            f"{arch_str!r} at this index; the archive is corrupt")
        for (dataset, seed), rc in sorted(arch["all_results"].items()):
            where = f"official index {official}, dataset {dataset!r}, hp {hp_key}, seed {seed}"
            S.check_dataset(dataset, where)
            trials.append((dataset, int(hp_key), int(seed), _trial_columns(rc, counts, where)))
    longest = hp2arch[hps[-1]]  # costs from the final recipe, like the published tables
    return trials, {d: _trial_costs(longest, d) for d in longest["dataset_seed"]}


# --------------------------------------------------------------------------------------------
# The published table (index, arch, value)
def import_nats_table(csv_path: str | Path, dest_root: str | Path, *, space: str = "tss",
                      dataset: str = "cifar10", hp: int = 200,
                      metric: str = "test_acc") -> ImportReport:
    """Import ``index,arch,<value>`` rows: one aggregate (seed -1) value per architecture.

    The value lands in ``metric`` at epoch ``hp`` (the end of the recipe); the official index is
    kept as ``nats_index``. Every malformed line is a UserError naming the line.
    """
    start = time.perf_counter()
    path, root = Path(csv_path), Path(dest_root)
    if metric not in S.EPOCH_METRICS:
        raise UserError(f"unknown metric {metric!r}; choose one of {', '.join(S.EPOCH_METRICS)}")
    if not isinstance(hp, int) or not 0 < hp < 2 ** 15:
        raise UserError(f"hp must be a positive number of epochs (e.g. 200), got {hp!r}")
    S.check_dataset(dataset)
    sp = get_space(space)
    if not path.is_file():
        raise UserError(f"{path} does not exist; give a CSV with columns index,arch,<value>")
    official, project, values = [], [], []
    seen_index: dict[int, int] = {}
    seen_arch: dict[int, int] = {}
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if header is None or len(header) != 3 or [h.strip() for h in header[:2]] != ["index", "arch"]:
            raise UserError(f"{path}:1: expected the header 'index,arch,<value>', got {header!r}")
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != 3:
                raise UserError(f"{path}:{line}: expected 3 fields (index,arch,value), got {len(row)}")
            try:
                idx = int(row[0])
                value = float(row[2])
            except ValueError:
                raise UserError(f"{path}:{line}: index must be an integer and value a number, "
                                f"got {row[0]!r} and {row[2]!r}") from None
            if idx < 0:
                raise UserError(f"{path}:{line}: index {idx} is negative")
            problem = value_problem(metric, value) if value == value else \
                f"{metric} is NaN (leave the architecture out instead)"
            if problem:
                raise UserError(f"{path}:{line}: {problem}; fix the table or pick the right "
                                "--metric")
            try:
                a = sp.parse(row[1])
            except UserError as exc:
                raise UserError(f"{path}:{line}: {exc}") from None
            if sp.to_str(a) != row[1]:
                raise UserError(f"{path}:{line}: {row[1]!r} is not in canonical form "
                                f"({sp.to_str(a)!r})")
            if idx in seen_index or a in seen_arch:
                what = f"index {idx}" if idx in seen_index else f"arch {row[1]!r}"
                first = seen_index.get(idx, seen_arch.get(a))
                raise UserError(f"{path}:{line}: {what} already appeared on line {first}")
            seen_index[idx], seen_arch[a] = line, line
            official.append(idx)
            project.append(a)
            values.append(value)
    if not official:
        raise UserError(f"{path} has a header but no rows")
    extra = {"source": "NATS-Bench published table", "source_table": path.name,
             "value_column": header[2].strip(), "importer": "benchmark_data.importers.import_nats_table",
             "aggregate": "seed -1: the published value (mean over NATS-Bench's seeds)"}
    n = len(official)
    tbl = pa.table({
        "space": pa.repeat(space, n), "dataset": pa.repeat(dataset, n),
        "hp": pa.repeat(pa.scalar(hp, pa.int16()), n),
        "arch_index": np.asarray(project, np.int32), "seed": np.full(n, -1, np.int32),
        "epoch": np.full(n, hp, np.int16), metric: _float_array(np.asarray(values)),
        "status": pa.repeat("imported", n),
    })
    writer.write_fragment(root, "epochs", tbl, metadata=_provenance(space, dataset, hp, extra))
    report = ImportReport(source=path.name, space=space, datasets=[dataset], hps=[hp], archs=n,
                          epoch_rows=n)
    report.arch_rows = _write_archs(root, space, dataset, np.asarray(project), np.asarray(official),
                                    {}, extra)
    report.seconds = time.perf_counter() - start
    return report


# --------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    from .cli import Parser, add_old_store_forms, add_store_flag

    p = Parser(prog="python -m benchmark_data import",
               description="Import official NATS-Bench data into a store: an archive directory "
                           "('*-simple', or the single .pickle.pbz2 file) or an index,arch,value "
                           "CSV table.")
    p.add_argument("src", metavar="SRC", help="archive directory / .pickle.pbz2 file, or a .csv table")
    add_old_store_forms(p, "import", before_dest="src")
    add_store_flag(p, reads=False, required=True,
                   help="store folder to write into (required; created if absent)")
    p.add_argument("--space", default="tss", choices=("tss", "sss"),
                   help="table only: search space of the arch strings")
    p.add_argument("--dataset", default="cifar10",
                   help=f"table only: dataset (default: cifar10; known: {', '.join(S.DATASETS)})")
    p.add_argument("--hp", type=int, default=200, help="table only: recipe length in epochs")
    p.add_argument("--metric", default="test_acc", choices=S.EPOCH_METRICS, metavar="COLUMN",
                   help=f"table only: the column the value lands in ({', '.join(S.EPOCH_METRICS)})")
    p.add_argument("--workers", type=int, default=1, metavar="W",
                   help="archive only: records converted at once, one process each")
    p.add_argument("--quiet", action="store_true", help="no progress bar: only the report and errors")
    p.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmark_data import SRC --store DEST ...``: ``argv`` is what follows ``import``.

    Errors a user can cause raise UserError (``benchmark_data.cli.run_cli`` prints them).
    """
    from .cli import store_to_write

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    dest = store_to_write(args.store)
    src = Path(args.src)
    if src.is_dir() or src.name.endswith(PICKLE_EXT):
        report = import_nats_archive(src, dest, progress=not args.quiet, workers=args.workers)
    elif src.suffix.lower() == ".csv":
        report = import_nats_table(src, dest, space=args.space, dataset=args.dataset,
                                   hp=args.hp, metric=args.metric)
    elif not src.exists():
        raise UserError(f"{src} does not exist; give an archive directory or a .csv table")
    else:
        raise UserError(f"{src} is neither a directory, a {PICKLE_EXT} archive nor a .csv table")
    print(report)
    return 0


if __name__ == "__main__":  # pragma: no cover - the package CLI is the documented entry point
    from .cli import run_cli

    sys.exit(run_cli(main))
