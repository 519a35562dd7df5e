"""Repeated simulated searches: seeds, Ray fan-out, the `runs` Parquet table and the summary.

A run is cheap (milliseconds to seconds) and independent of every other run, so many runs are
spread as plain Ray tasks over a cluster when one is given; each task receives the benchmark
arrays through Ray's object store, so the nodes need no copy of the store on disk. The in-process
path and the Ray path run the very same function, so they give the same results for the same seeds.

Trajectories stay numpy columns from the simulator to the Parquet file (pyarrow writes them):
a simulated experiment never imports pandas, a third of a second of a short run's process.
``SimRuns.rows`` builds a DataFrame on demand, for analysis.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from benchmark_data.task import Task
from spaces import UserError
from spaces.errors import short

from . import protocol
from .searchers import make_searcher
from .simulator import Budget, run_search

if TYPE_CHECKING:
    import pandas as pd

# NATS-Bench's budgets of recorded training time (seconds), the same for every searcher, per
# space: exps/NATS-Bench/draw-table.py's "cifar10-T20000", ..., "ImageNet16-120-T120000" (tss)
# and "ImageNet16-120-T60000" (sss).
NATS_BUDGETS_S = {
    ("tss", "cifar10"): 2e4, ("tss", "cifar100"): 4e4, ("tss", "ImageNet16-120"): 1.2e5,
    ("sss", "cifar10"): 2e4, ("sss", "cifar100"): 4e4, ("sss", "ImageNet16-120"): 6e4,
}
# Other datasets get the time of this many median full evaluations of the search recipe (see
# default_budget); NATS-Bench's searchers complete on the order of a hundred evaluations within
# their CIFAR-10 budget.
DEFAULT_EVALUATIONS_WORTH = 150


def default_budget(table: Task) -> tuple[Budget, str]:
    """NATS-Bench's budget for its datasets, else a documented equivalent; and why."""
    nats = NATS_BUDGETS_S.get((table.space.name, table.dataset))
    if nats is not None and table.has_time:
        return Budget(seconds=nats), f"NATS-Bench's budget for {table.space.name}/{table.dataset}"
    if not table.has_time:
        return Budget(evaluations=DEFAULT_EVALUATIONS_WORTH), "no recorded times: an evaluation budget"
    full = table.cost[:, :, -1]
    median = float(np.nanmedian(np.where(np.isnan(table.feedback[:, :, -1]), np.nan, full)))
    seconds = float(np.round(DEFAULT_EVALUATIONS_WORTH * median, 1))
    return Budget(seconds=seconds), (f"{DEFAULT_EVALUATIONS_WORTH} x the median full evaluation "
                                     f"({median:.3g} s) of {table.dataset} at hp={table.feedback_hp}")


@dataclass
class RunSpec:
    """One searcher's runs: its budget, simulated workers, stopping scheduler, knobs and protocol."""

    searcher: str
    budget: Budget
    workers: int = 1
    knobs: dict = field(default_factory=dict)
    incumbent: str = "nats"
    past_budget: bool | None = None  # None: as NATS-Bench's script for this searcher
    scheduler: str = "fifo"          # fifo | asha | hyperband (orchestrator.schedulers)

    def runs_past_budget(self) -> bool:
        return self.searcher in protocol.RUNS_PAST_BUDGET if self.past_budget is None else self.past_budget

    def check(self, table: Task) -> None:
        """UserError now, before any run, for what the runs would refuse later."""
        from .common import check_scheduler

        check_scheduler(self.searcher, self.scheduler)
        scheduler = self.make_scheduler(table)
        if scheduler is not None:
            from .simulator import check_scheduled

            check_scheduled(table, make_run_searcher(table, self, 0), scheduler)

    def make_scheduler(self, table: Task):
        """The simulated stopping scheduler of one run (None for FIFO) over the table's epochs,
        with live mode's knobs (``orchestrator.common``: grace period, reduction factor)."""
        if self.scheduler == "fifo":
            return None  # (and the schedulers are not even imported)
        from .common import GRACE_PERIOD, REDUCTION_FACTOR
        from .schedulers import make_sim_scheduler

        return make_sim_scheduler(self.scheduler, max_t=table.num_epochs, grace_period=GRACE_PERIOD,
                                  reduction_factor=REDUCTION_FACTOR)


@dataclass(frozen=True)
class RunTrajectory:
    """One seeded run: ``run_search``'s columns (one entry per event) and the wall time it took."""

    searcher: str
    seed: int
    columns: dict[str, np.ndarray]
    wall_s: float

    def __len__(self) -> int:
        return len(self.columns["event"])


@dataclass
class SimRuns:
    """The runs of an experiment, sorted by (searcher, seed) as the ``runs`` table's key."""

    runs: list[RunTrajectory]

    @property
    def wall_s(self) -> dict[tuple[str, int], float]:
        return {(r.searcher, r.seed): r.wall_s for r in self.runs}

    def columns(self) -> dict[str, np.ndarray]:
        """Every run's columns end to end, with ``searcher`` and ``run_seed`` in front."""
        n = [len(r) for r in self.runs]
        out = {"searcher": np.repeat(np.array([r.searcher for r in self.runs], dtype=object), n),
               "run_seed": np.repeat(np.array([r.seed for r in self.runs], dtype=np.int64), n)}
        for name in self.runs[0].columns:
            out[name] = np.concatenate([r.columns[name] for r in self.runs])
        return out

    @functools.cached_property
    def rows(self) -> pd.DataFrame:
        """The runs as one DataFrame (pandas imported here, on demand)."""
        import pandas as pd

        return pd.DataFrame(self.columns())


@dataclass(frozen=True)
class SearcherSummary:
    """One summary row (see ``summarize``)."""

    searcher: str
    runs: int
    test_acc_at_budget_mean: float
    test_acc_at_budget_std: float       # NaN for one run
    last_event_test_acc_mean: float
    regret_mean: float
    sim_time_used_s_mean: float         # NaN where the table has no times
    evaluations_mean: float
    wall_s_per_run_median: float
    # Shares that came from surrogate predictions (task.surrogate_feedback / surrogate_final):
    # of the evaluations, and of the runs whose incumbent at the end had a predicted final value.
    surrogate_evaluations: float = 0.0
    surrogate_final_values: float = 0.0


def make_run_searcher(table: Task, spec: RunSpec, seed: int):
    """The searcher of one run. Fidelities span the recorded epochs: on a table that records
    only its last epoch (an imported final-accuracy table) a multi-fidelity searcher gets
    min = max = that epoch, so BOHB runs its model over the one fidelity there is."""
    return make_searcher(spec.searcher, table.space.hparams, seed, min_fidelity=table.min_fidelity,
                         max_fidelity=table.num_epochs, **dict(spec.knobs))


def resolved_knobs(table: Task, spec: RunSpec) -> dict:
    """Every knob of ``spec``'s searcher with its default filled in, for provenance."""
    return make_run_searcher(table, spec, 0).all_knobs


def run_one(table: Task, spec: RunSpec, seed: int, on_progress=None) -> RunTrajectory:
    """One seeded run: its trajectory (the `runs` columns of one run) and its wall time."""
    searcher = make_run_searcher(table, spec, seed)
    started = time.perf_counter()
    traj = run_search(table, searcher, spec.budget, workers=spec.workers, seed=seed, on_progress=on_progress,
                      incumbent=spec.incumbent, past_budget=spec.runs_past_budget(),
                      scheduler=spec.make_scheduler(table))
    return RunTrajectory(spec.searcher, seed, traj, time.perf_counter() - started)


def _run_many(table: Task, spec: RunSpec, seeds: list[int]) -> list[RunTrajectory]:
    return [run_one(table, spec, s) for s in seeds]


class RunLog:
    """The finished runs of one experiment, on disk as they finish, so a killed driver loses at
    most the last ``flush_s`` seconds of runs (``orchestrate.py simulate --resume``).

    A folder of Parquet fragments, each a batch of whole runs: written under a hidden temporary
    name, then renamed (``os.replace``), so a fragment is complete or absent, never half written.
    Each fragment's metadata lists its runs as (searcher, seed, wall_s, rows), in the order of
    its rows, so runs without a single evaluation are remembered too. ``load`` reads them back
    (a run found twice, by two drivers, counts once: the first fragment's)."""

    PREFIX = "runs-"

    def __init__(self, folder: str | Path, flush_s: float = 1.0) -> None:
        self.folder, self.flush_s = Path(folder), flush_s
        self.pending: list[RunTrajectory] = []
        self.last_flush = time.monotonic()

    def load(self) -> list[RunTrajectory]:
        from benchmark_data.arrow import to_numpy

        runs: dict[tuple[str, int], RunTrajectory] = {}
        for path in sorted(self.folder.glob(f"{self.PREFIX}*.parquet")):
            tbl, listed = self._read(path)
            start = 0
            for searcher, seed, wall_s, n in listed:
                part = tbl.slice(start, n)
                start += n
                cols = {c: to_numpy(part.column(c).combine_chunks()) for c in part.column_names
                        if c not in ("searcher", "run_seed")}
                runs.setdefault((searcher, int(seed)), RunTrajectory(searcher, int(seed), cols, float(wall_s)))
        return list(runs.values())

    @staticmethod
    def _read(path: Path) -> tuple[pa.Table, list]:
        """A fragment and its list of runs; UserError for a file the log did not write whole (a disk
        error, a file copied in): its runs are not trusted, they are run again once it is gone."""
        import pyarrow.parquet as pq

        try:
            tbl = pq.read_table(path)
            listed = json.loads((tbl.schema.metadata or {})[b"runs"])
            if sum(int(n) for *_, n in listed) != tbl.num_rows:
                raise ValueError(f"it lists {sum(int(n) for *_, n in listed)} rows and holds {tbl.num_rows}")
        except (OSError, pa.ArrowException, KeyError, TypeError, ValueError) as exc:
            why = "no list of runs in its metadata" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
            raise UserError(f"{path} is not a fragment of finished runs this log wrote ({short(why, 200)}); delete "
                            "it and --resume again: the runs it held run again") from None
        return tbl, listed

    def add(self, runs: list[RunTrajectory]) -> None:
        self.pending.extend(runs)
        if time.monotonic() - self.last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        import pyarrow.parquet as pq

        self.last_flush = time.monotonic()
        if not self.pending:
            return
        runs, self.pending = self.pending, []
        cols = SimRuns(runs).columns()
        cols["searcher"] = pa.array(cols["searcher"], pa.string())  # typed: no pandas check of objects
        tbl = pa.table(cols).replace_schema_metadata(
            {"runs": json.dumps([[r.searcher, r.seed, r.wall_s, len(r)] for r in runs])})
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self.PREFIX}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.folder / f".{name}.tmp"
        pq.write_table(tbl, tmp)
        os.replace(tmp, self.folder / name)


def run_experiment(table: Task, specs: list[RunSpec], seeds: list[int], *, address: str | None = None,
                   parallel: int | None = None, progress: bool = True, log: RunLog | None = None) -> SimRuns:
    """All (searcher, seed) runs; in-process, or as Ray tasks when an address or parallelism is given.
    With a ``log``, the runs it holds already are not run again, and every run that finishes is
    added to it (flushed at the end and on any exception, Ctrl-C included)."""
    done: list[RunTrajectory] = []
    if log is not None:
        wanted = {(spec.searcher, s) for spec in specs for s in seeds}
        done = [r for r in log.load() if (r.searcher, r.seed) in wanted]
    finished = {(r.searcher, r.seed) for r in done}
    jobs = [(spec, s) for spec in specs for s in seeds if (spec.searcher, s) not in finished]
    record = log.add if log is not None else (lambda runs: None)
    try:
        _run_jobs(table, jobs, done, record, address, parallel, progress)
    finally:
        if log is not None:
            log.flush()
    runs = sorted((r for r in done if len(r)), key=lambda r: (r.searcher, r.seed))
    if not runs:
        raise UserError("no run completed a single evaluation within the budget; raise the budget")
    return SimRuns(runs)


def _run_jobs(table: Task, jobs: list[tuple[RunSpec, int]], done: list[RunTrajectory], record,
              address: str | None, parallel: int | None, progress: bool) -> None:
    """Run ``jobs``, appending each finished run to ``done`` and handing it to ``record``."""
    from .common import advance_bar, finish_bar, progress_bar

    if not jobs:
        return
    if len(jobs) == 1 and address is None and not parallel:
        # One long run: show its progress through the budget rather than a 0/1 run counter.
        spec, s = jobs[0]
        by_time = spec.budget.seconds is not None
        bar = progress_bar(spec.budget.seconds if by_time else spec.budget.evaluations, desc=spec.searcher,
                           unit="sim s" if by_time else "eval", quiet=not progress)

        def advance(sim_time: float, evaluations: int) -> None:
            advance_bar(bar, sim_time if by_time else evaluations)
            bar.set_postfix_str(f"{evaluations} evaluations", refresh=False)

        run = run_one(table, spec, s, on_progress=advance)
        done.append(run)
        record([run])
        finish_bar(bar)
    elif address is None and not parallel:
        bar = progress_bar(len(jobs), desc="runs", unit="run", quiet=not progress)
        for spec, s in jobs:
            bar.set_postfix_str(spec.searcher, refresh=False)
            run = run_one(table, spec, s)
            done.append(run)
            record([run])
            bar.update()
        finish_bar(bar)
    else:
        import ray

        from .common import ray_session

        by_spec: dict[int, tuple[RunSpec, list[int]]] = {}
        for spec, s in jobs:
            by_spec.setdefault(id(spec), (spec, []))[1].append(s)
        bar = progress_bar(len(jobs), desc="runs", unit="run", quiet=not progress)
        with ray_session(address=address, num_cpus=parallel, quiet=not progress):
            remote = ray.remote(num_cpus=1)(_run_many)
            table_ref = ray.put(table)
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            pending = {}
            for spec, seeds in by_spec.values():
                chunk = max(1, len(seeds) // (4 * cpus))
                for i in range(0, len(seeds), chunk):
                    part = seeds[i:i + chunk]
                    pending[remote.remote(table_ref, spec, part)] = len(part)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                runs = ray.get(ready[0])
                done.extend(runs)
                record(runs)
                bar.update(pending.pop(ready[0]))
        finish_bar(bar)


def summarize(result: SimRuns, table: Task, budget: Budget) -> list[SearcherSummary]:
    """Per searcher, as NATS-Bench reports it: the incumbent's test accuracy at the budget (for a
    time budget interpolated between the two events nearest to it, ``protocol.value_at``), its
    mean and std over runs (ddof 0, ``protocol.NATS_STD_DDOF``); beside it the accuracy at the
    run's last event, the regret, time used, evaluations, wall time, and the shares of
    evaluations and of final values that came from a surrogate model (0 without one)."""
    by_searcher: dict[str, list[RunTrajectory]] = {}
    for r in result.runs:
        by_searcher.setdefault(r.searcher, []).append(r)
    out = []
    for name, runs in by_searcher.items():
        acc = [r.columns["best_test_acc"] for r in runs]
        times = [r.columns["sim_time_s"] for r in runs]
        at_budget = np.asarray([protocol.value_at(t, a, budget.seconds) if budget.seconds is not None else a[-1]
                                for t, a in zip(times, acc)], dtype=np.float64)
        wall = np.asarray([r.wall_s for r in runs], dtype=np.float64)
        evaluated = np.concatenate([r.columns["arch_index"] for r in runs])
        evaluated = evaluated[evaluated >= 0]
        incumbents = np.asarray([r.columns["best_arch_index"][-1] for r in runs])
        out.append(SearcherSummary(
            searcher=name, runs=len(runs),
            test_acc_at_budget_mean=float(at_budget.mean()),
            test_acc_at_budget_std=float(at_budget.std(ddof=protocol.NATS_STD_DDOF)) if len(runs) > 1 else np.nan,
            last_event_test_acc_mean=float(np.mean([a[-1] for a in acc])),
            regret_mean=float(table.best_final - at_budget.mean()),
            sim_time_used_s_mean=float(np.mean([t[-1] for t in times])) if table.has_time else np.nan,
            evaluations_mean=float(np.mean([len(r) for r in runs])),
            wall_s_per_run_median=float(np.nanmedian(wall)) if not np.isnan(wall).all() else np.nan,
            surrogate_evaluations=float(table.surrogate_feedback[evaluated].mean()) if evaluated.size else 0.0,
            # a run without an incumbent (every evaluation failed) ended on no value at all
            surrogate_final_values=float(np.mean([a >= 0 and table.surrogate_final[a] for a in incumbents]))))
    return out


def surrogate_record(summary: list[SearcherSummary], table: Task) -> dict | None:
    """What the runs file records about surrogate values (its ``surrogate`` metadata entry):
    the model, its cross-validation figures and each searcher's shares; None when the task used
    no surrogate row."""
    if not table.uses_surrogate:
        return None
    return {"model": table.surrogate_model, "cv": table.surrogate_cv,
            "feedback_archs": int(table.surrogate_feedback.sum()), "final_archs": int(table.surrogate_final.sum()),
            "shares": {r.searcher: {"evaluations": r.surrogate_evaluations, "final_values": r.surrogate_final_values}
                       for r in summary}}


def curves_table(result: SimRuns, budget: Budget, step_s: float = protocol.CURVE_STEP_S) -> pa.Table:
    """Each run's incumbent test accuracy every ``step_s`` simulated seconds up to the budget
    (NATS-Bench's Figure 6 / the thesis' Figure 5.6 curves); no rows for an evaluation budget."""
    searchers, seeds, tickets, accs = [], [], [], []
    if budget.seconds is not None:
        for r in result.runs:
            t, acc = protocol.curve(r.columns["sim_time_s"], r.columns["best_test_acc"], budget.seconds, step_s)
            searchers.append(np.full(len(t), r.searcher, dtype=object))
            seeds.append(np.full(len(t), r.seed, dtype=np.int64))
            tickets.append(np.asarray(t, dtype=np.float64))
            accs.append(np.asarray(acc, dtype=np.float64))
    def cat(parts: list[np.ndarray], dtype) -> np.ndarray:
        return np.concatenate(parts) if parts else np.array([], dtype=dtype)

    return pa.table({"searcher": pa.array(cat(searchers, object), pa.string()), "run_seed": cat(seeds, np.int64),
                     "sim_time_s": cat(tickets, np.float64), "test_acc": cat(accs, np.float64)})


def runs_table(result: SimRuns, table: Task, experiment: str, budget: Budget) -> pa.Table:
    """The trajectories with the experiment-wide columns of the `runs` schema."""
    cols = result.columns()
    n = len(cols["event"])
    out = {"experiment": pa.array([experiment] * n, pa.string())}
    out.update({k: pa.array(v, pa.string()) if k == "searcher" else v for k, v in cols.items()})
    # The run's times are sim_time_s, the benchmark's recorded training time.
    out["clock"] = pa.array(["simulated"] * n, pa.string())
    out["space"] = pa.array([table.space.name] * n, pa.string())
    out["dataset"] = pa.array([table.dataset] * n, pa.string())
    out["budget_s"] = np.full(n, budget.seconds if budget.seconds is not None else np.nan)
    out["budget_evals"] = pa.array([budget.evaluations] * n, pa.int32())  # null for a time budget
    out["final_recipe_hp"] = np.full(n, table.final_hp, dtype=np.int16)
    # Arch strings beside the indices, so a reader needs neither the store nor our index order.
    for col, idx in (("arch", "arch_index"), ("best_arch", "best_arch_index")):
        uniq, inverse = np.unique(cols[idx], return_inverse=True)
        names = [table.space.to_str(int(i)) if i >= 0 else None for i in uniq]
        out[col] = pa.array([names[i] for i in inverse], pa.string())
    # Whether the evaluated arch's feedback / the incumbent's final value is a surrogate's
    # prediction; null where there is no arch (no incumbent yet).
    for col, idx, predicted in (("surrogate", "arch_index", table.surrogate_feedback),
                                ("best_surrogate", "best_arch_index", table.surrogate_final)):
        arch = cols[idx]
        out[col] = pa.array(predicted[np.maximum(arch, 0)], pa.bool_(), mask=arch < 0)
    return pa.table(out)


def discard_tables(out_root: str | Path, experiment: str, tables: tuple[str, ...] = ("runs", "curves")) -> None:
    """Remove what a finish interrupted while writing may have left of ``experiment``'s tables, so
    a resumed finish writes them again, whole."""
    for table in tables:
        shutil.rmtree(Path(out_root).expanduser() / table / f"experiment={experiment}", ignore_errors=True)


def write_runs(out_root: str | Path, rows: pa.Table | pd.DataFrame, metadata: dict[str, str]) -> list[Path]:
    """The rows' ``runs`` columns as one fragment; other columns (a caller's diagnostics) stay out."""
    from benchmark_data.schema import SCHEMAS
    from benchmark_data.writer import write_fragment

    names = list(rows.column_names if isinstance(rows, pa.Table) else rows.columns)
    keep = [c for c in names if c in SCHEMAS["runs"].names]
    return write_fragment(out_root, "runs", rows.select(keep) if isinstance(rows, pa.Table) else rows[keep],
                          metadata=metadata)


def write_curves(out_root: str | Path, experiment: str, curves: pa.Table, metadata: dict[str, str]) -> Path | None:
    """The sampled curves as ``OUT/curves/experiment=NAME/curves.parquet`` (written to a hidden
    temporary name, then renamed, so an interrupted run leaves no half file); None if empty."""
    import os

    import pyarrow.parquet as pq

    if curves.num_rows == 0:
        return None
    folder = Path(out_root).expanduser() / "curves" / f"experiment={experiment}"
    folder.mkdir(parents=True, exist_ok=True)
    table = curves.replace_schema_metadata({**metadata, "table": "curves"})
    final, tmp = folder / "curves.parquet", folder / ".curves.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final
