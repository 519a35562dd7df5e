"""What a report reads: the ``runs`` tables of searches, and the benchmark stores they ran on.

A results argument is a results folder (``orchestrate.py ... --out DIR``: every experiment under
its ``runs/``), one experiment's folder (``runs/experiment=NAME``) or one runs Parquet file. Files
are read through the store's own reader functions (``benchmark_data.writer.read_fragment``: the
schema checks, older files upgraded), the last written row of a key wins, and each experiment
keeps the provenance of its newest file. A file of a newer schema version than this code is
refused (its columns may mean something this report does not know), as are results with no row.

A search is scored by the benchmark it ran on: ``match`` finds, among the ``--benchmark`` stores,
the one whose files record the same dataset fingerprint and whose final values are the ones the
runs recorded for their incumbents, and opens it as the search read it (with surrogate
predictions exactly when the runs say they used some).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark_data import schema as S
from spaces.errors import UserError

TABLE = "runs"
# Two float32 numbers written from one value agree to ~1e-5 %; a different benchmark's differ by far more.
VALUE_TOLERANCE = 1e-3


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (0,)


def _footer(path: Path) -> dict[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"corrupt or truncated Parquet file {path}: {exc}; give the runs files a search "
                        "wrote (or re-run it)") from exc
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"ARROW:schema"}


@dataclass
class Experiment:
    """One experiment's runs: its rows (``runs`` columns, key order) and its newest file's provenance."""

    name: str
    files: tuple[Path, ...]
    rows: pd.DataFrame
    meta: dict[str, str]

    def decoded(self, key: str) -> Any:
        """A JSON metadata entry, decoded ({} when absent or not JSON)."""
        try:
            return json.loads(self.meta.get(key) or "{}")
        except ValueError:
            return {}

    @property
    def recipe(self) -> dict:
        return self.decoded("recipe")

    @property
    def oneshot(self) -> bool:
        return self.recipe.get("search") == "oneshot" or (self.rows["clock"] == "wall").all()

    @property
    def used_surrogate(self) -> bool:
        """Whether any value these runs saw or reported came from surrogate predictions."""
        flags = self.rows[["surrogate", "best_surrogate"]].fillna(False).astype(bool)
        return "surrogate" in self.meta or bool(flags.to_numpy().any())

    @property
    def where(self) -> tuple[str, str]:
        """(space, dataset) the runs searched."""
        pairs = self.rows[["space", "dataset"]].drop_duplicates()
        if len(pairs) != 1:
            raise UserError(f"experiment {self.name} ({self.files[0]}) mixes "
                            f"{', '.join(f'{s}/{d}' for s, d in pairs.itertuples(index=False))}; "
                            "a search writes one space and dataset per experiment")
        space, dataset = pairs.iloc[0]
        return str(space), str(dataset)

    @property
    def final_hp(self) -> int | None:
        hp = self.rows["final_recipe_hp"].dropna()
        return int(hp.iloc[0]) if len(hp) else self.recipe.get("final_hp")


def _runs_files(path: Path) -> list[tuple[str, list[Path]]]:
    """(experiment, its runs fragments in write order) for one results argument."""
    if path.is_file():
        meta = _footer(path)
        if meta.get("table", TABLE) != TABLE:
            raise UserError(f"{path} is a file of the {meta['table']!r} table, not of 'runs'; give the results "
                            "of a search (orchestrate.py simulate/oneshot --out DIR)")
        name = meta.get("experiment") or json.loads(meta.get("partition") or "{}").get("experiment")
        if not name and path.parent.name.startswith("experiment="):
            name = path.parent.name.partition("=")[2]
        return [(name or path.stem, [path])]
    if path.name.startswith("experiment=") and path.parent.name == TABLE:
        return [(path.name.partition("=")[2], S.list_fragments(path))]
    root = path.parent if path.name == TABLE else path
    return [(values["experiment"], S.list_fragments(folder)) for values, folder in S.iter_partitions(root, TABLE)]


def _read_experiment(name: str, files: list[Path]) -> Experiment:
    import pyarrow as pa

    from benchmark_data.writer import dedupe_keep_last, read_fragment

    metas = []
    for path in files:
        meta = _footer(path)
        version = meta.get("schema_version", "")
        if _version(version) > _version(S.SCHEMA_VERSION):
            raise UserError(f"{path} has schema_version {version}, newer than this code's {S.SCHEMA_VERSION}: its "
                            "columns may mean what this report does not know; upgrade natsflow to report it")
        metas.append(meta)
    tables = [read_fragment(p, TABLE).replace_schema_metadata(None) for p in files]
    keys = [k for k in S.KEY_COLUMNS[TABLE] if k not in S.PARTITION_COLUMNS[TABLE]]
    rows = dedupe_keep_last(pa.concat_tables(tables), keys).to_pandas() if tables else pd.DataFrame()
    if rows.empty:
        where = ", ".join(map(str, files)) or "its folder"
        raise UserError(f"experiment {name} has no runs rows ({where}); give the results of a search that "
                        "completed at least one evaluation")
    rows.insert(0, "experiment", name)
    rows = rows.sort_values(keys, kind="stable", ignore_index=True)
    return Experiment(name, tuple(files), rows, metas[-1])


def read_results(paths) -> list[Experiment]:
    """Every experiment of the results arguments (see the module docstring), in argument order."""
    found: dict[str, list[Path]] = {}
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            raise UserError(f"results {path} do not exist; give a results folder (orchestrate.py's --out), an "
                            "experiment folder (runs/experiment=NAME) or a runs .parquet file")
        listed = _runs_files(path.resolve())
        if not listed:
            raise UserError(f"{path} holds no runs table (no runs/experiment=NAME/ folder); give the --out folder "
                            "of orchestrate.py simulate or oneshot, or a runs .parquet file")
        for name, files in listed:
            before = found.setdefault(name, [])
            if before and files and before[0].parent != files[0].parent:
                raise UserError(f"two results hold an experiment named {name!r} ({before[0].parent} and "
                                f"{files[0].parent}); report them one at a time")
            before.extend(f for f in files if f not in before)
    return [_read_experiment(name, sorted(files, key=lambda p: p.name)) for name, files in found.items()]


# --- the benchmarks -------------------------------------------------------------------------------
@dataclass
class Store:
    """One ``--benchmark`` store, opened on demand as a search read it (with or without its
    surrogate predictions)."""

    label: str
    path: str | None  # None: the embedded benchmark
    _views: dict[bool, Any] = field(default_factory=dict, repr=False)

    def view(self, surrogate: bool = True):
        from benchmark_data.reader import Benchmark

        if surrogate not in self._views:
            self._views[surrogate] = Benchmark.open(self.path, surrogate=surrogate)
        return self._views[surrogate]

    @cached_property
    def root(self) -> Path:
        return self.view().root


def open_stores(values) -> list[Store]:
    """The ``--benchmark`` stores (``embedded`` or a path), each labelled by its folder name."""
    from benchmark_data.cli import EMBEDDED, store_to_read

    stores: list[Store] = []
    for value in values:
        path = store_to_read(value)
        label = EMBEDDED if path is None else Path(path).expanduser().resolve().name
        store = Store(label, path)
        if any(s.root == store.root for s in stores):
            continue  # the same store twice
        taken = sum(s.label == label or s.label.startswith(f"{label}#") for s in stores)
        store.label = f"{label}#{taken + 1}" if taken else label
        stores.append(store)
    return stores


@dataclass(frozen=True)
class Scored:
    """The benchmark an experiment ran on, as the search read it: its store and its task view."""

    store: Store
    task: Any  # benchmark_data.task.Task


def task_for(experiment: Experiment, bench):
    """The task view the experiment's runs read: the recipes, feedback and final columns their
    provenance records (gaps allowed: a report never refuses what a search already ran on)."""
    space, dataset = experiment.where
    recipe = experiment.recipe
    return bench.task(space, dataset, recipe.get("feedback_hp") or recipe.get("search_hp"),
                      final_hp=experiment.final_hp, feedback=recipe.get("feedback"),
                      final_metric=recipe.get("final", "test_acc"), allow_gaps=True)


def mismatch(experiment: Experiment, store: Store) -> tuple[str | None, Any]:
    """(why the experiment did not run on ``store``, or None; the task view when it did)."""
    space, dataset = experiment.where
    bench = store.view(surrogate=experiment.used_surrogate)
    if space not in bench.spaces() or dataset not in bench.datasets(space):
        held = ", ".join(f"{s}/{d}" for s in bench.spaces() for d in bench.datasets(s)) or "nothing"
        return f"it holds no {space}/{dataset} (it holds {held})", None
    try:
        task = task_for(experiment, bench)
        recorded = experiment.meta.get("dataset_fingerprint", "")
        if recorded:
            fingerprint = bench.dataset_fingerprint(space, task.feedback_dataset, task.feedback_hp)
            if fingerprint != recorded:
                return (f"its {space}/{task.feedback_dataset} files record dataset fingerprint "
                        f"{fingerprint or '(none)'}, the runs {recorded}"), None
    except UserError as exc:
        return str(exc), None
    rows = experiment.rows
    found = rows.loc[rows["best_arch_index"] >= 0, ["best_arch_index", "best_test_acc"]].dropna().drop_duplicates()
    arch = found["best_arch_index"].to_numpy(np.int64)
    stored = task.final[arch]
    differ = ~np.isclose(stored, found["best_test_acc"].to_numpy(np.float64), atol=VALUE_TOLERANCE, rtol=0)
    if differ.any():
        i = int(np.flatnonzero(differ)[0])
        return (f"{int(differ.sum())} of the {len(arch)} incumbents' final values differ, e.g. arch {arch[i]}: "
                f"{found['best_test_acc'].iloc[i]:.2f} % in the runs, {stored[i]:.2f} % in the store"), None
    return None, task


def match(experiment: Experiment, stores: list[Store]) -> Scored | None:
    """The store the experiment ran on (None when no store was given); UserError when it ran on
    none of them, saying why for each."""
    if not stores:
        return None
    reasons = []
    for store in stores:
        why, task = mismatch(experiment, store)
        if why is None:
            return Scored(store, task)
        reasons.append(f"{store.label} ({store.root}): {why}")
    recorded = experiment.meta.get("benchmark")
    raise UserError(f"experiment {experiment.name} ({experiment.files[0].parent}) did not run on "
                    f"{'the --benchmark given' if len(stores) == 1 else 'any --benchmark given'}: "
                    + "; ".join(reasons)
                    + (f". Its files say it ran on {recorded}" if recorded else "")
                    + "; pass that store as --benchmark (or leave --benchmark out to report the runs alone)")
