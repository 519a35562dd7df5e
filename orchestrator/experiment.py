"""Repeated simulated searches: seeds, Ray fan-out, the `runs` Parquet table and the summary.

A run is cheap (milliseconds to seconds) and independent of every other run, so many runs are
spread as plain Ray tasks over a cluster when one is given; each task receives the benchmark
arrays through Ray's object store, so the nodes need no copy of the store on disk. The in-process
path and the Ray path run the very same function, so they give the same results for the same seeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark_data.task import Task
from spaces import UserError

from . import protocol
from .searchers import make_searcher
from .simulator import Budget, run_search

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


@dataclass
class SimRuns:
    """The trajectories of an experiment's runs and the wall time each run took."""

    rows: pd.DataFrame                       # one row per event, sorted by searcher, run_seed, event
    wall_s: dict[tuple[str, int], float]     # (searcher, run_seed) -> seconds


def make_run_searcher(table: Task, spec: RunSpec, seed: int):
    """The searcher of one run. Fidelities span the recorded epochs: on a table that records
    only its last epoch (an imported final-accuracy table) a multi-fidelity searcher gets
    min = max = that epoch, so BOHB runs its model over the one fidelity there is."""
    return make_searcher(spec.searcher, table.space.hparams, seed, min_fidelity=table.min_fidelity,
                         max_fidelity=table.num_epochs, **dict(spec.knobs))


def resolved_knobs(table: Task, spec: RunSpec) -> dict:
    """Every knob of ``spec``'s searcher with its default filled in, for provenance."""
    return make_run_searcher(table, spec, 0).all_knobs


def run_one(table: Task, spec: RunSpec, seed: int, on_progress=None) -> tuple[pd.DataFrame, float]:
    """One seeded run as rows of the `runs` table (without the experiment-wide columns), and its wall time."""
    searcher = make_run_searcher(table, spec, seed)
    started = time.perf_counter()
    traj = run_search(table, searcher, spec.budget, workers=spec.workers, seed=seed, on_progress=on_progress,
                      incumbent=spec.incumbent, past_budget=spec.runs_past_budget(),
                      scheduler=spec.make_scheduler(table))
    wall = time.perf_counter() - started
    df = pd.DataFrame(traj)
    df.insert(0, "run_seed", seed)
    df.insert(0, "searcher", spec.searcher)
    return df, wall


def _run_many(table: Task, spec: RunSpec, seeds: list[int]) -> list[tuple[pd.DataFrame, float]]:
    return [run_one(table, spec, s) for s in seeds]


def run_experiment(table: Task, specs: list[RunSpec], seeds: list[int], *, address: str | None = None,
                   parallel: int | None = None, progress: bool = True) -> SimRuns:
    """All (searcher, seed) runs; in-process, or as Ray tasks when an address or parallelism is given."""
    from .common import advance_bar, finish_bar, progress_bar

    jobs = [(spec, s) for spec in specs for s in seeds]
    done: list[tuple[pd.DataFrame, float]] = []
    if len(jobs) == 1 and address is None and not parallel:
        # One long run: show its progress through the budget rather than a 0/1 run counter.
        spec, s = jobs[0]
        by_time = spec.budget.seconds is not None
        bar = progress_bar(spec.budget.seconds if by_time else spec.budget.evaluations, desc=spec.searcher,
                           unit="sim s" if by_time else "eval", quiet=not progress)

        def advance(sim_time: float, evaluations: int) -> None:
            advance_bar(bar, sim_time if by_time else evaluations)
            bar.set_postfix_str(f"{evaluations} evaluations", refresh=False)

        done.append(run_one(table, spec, s, on_progress=advance))
        finish_bar(bar)
    elif address is None and not parallel:
        bar = progress_bar(len(jobs), desc="runs", unit="run", quiet=not progress)
        for spec, s in jobs:
            bar.set_postfix_str(spec.searcher, refresh=False)
            done.append(run_one(table, spec, s))
            bar.update()
        finish_bar(bar)
    else:
        import ray

        from .common import ray_session

        bar = progress_bar(len(jobs), desc="runs", unit="run", quiet=not progress)
        with ray_session(address=address, num_cpus=parallel, quiet=not progress):
            remote = ray.remote(num_cpus=1)(_run_many)
            table_ref = ray.put(table)
            chunk = max(1, len(seeds) // (4 * max(1, int(ray.cluster_resources().get("CPU", 1)))))
            pending = {}
            for spec in specs:
                for i in range(0, len(seeds), chunk):
                    part = seeds[i:i + chunk]
                    pending[remote.remote(table_ref, spec, part)] = len(part)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                done.extend(ray.get(ready[0]))
                bar.update(pending.pop(ready[0]))
        finish_bar(bar)
    walls = {(f["searcher"].iat[0], int(f["run_seed"].iat[0])): w for f, w in done if len(f)}
    frames = [f for f, _ in done if len(f)]
    if not frames:
        raise UserError("no run completed a single evaluation within the budget; raise the budget")
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["searcher", "run_seed", "event"], kind="stable").reset_index(drop=True)
    return SimRuns(out, walls)


def summarize(result: SimRuns, table: Task, budget: Budget) -> pd.DataFrame:
    """Per searcher, as NATS-Bench reports it: the incumbent's test accuracy at the budget (for a
    time budget interpolated between the two events nearest to it, ``protocol.value_at``), its
    mean and std over runs (ddof 0, ``protocol.NATS_STD_DDOF``); beside it the accuracy at the
    run's last event, the regret, time used, evaluations and wall time."""
    runs, walls = result.rows, result.wall_s
    rows = []
    for name, g in runs.groupby("searcher", sort=False):
        at_budget, last, used, events, wall = [], [], [], [], []
        for seed, r in g.groupby("run_seed", sort=False):
            acc = r["best_test_acc"].to_numpy()
            last.append(acc[-1])
            at_budget.append(protocol.value_at(r["sim_time_s"].to_numpy(), acc, budget.seconds)
                             if budget.seconds is not None else acc[-1])
            used.append(r["sim_time_s"].iat[-1])
            events.append(len(r))
            wall.append(walls.get((name, int(seed)), np.nan))
        at_budget = np.asarray(at_budget, dtype=np.float64)
        rows.append({
            "searcher": name,
            "runs": len(at_budget),
            "test_acc_at_budget_mean": at_budget.mean(),
            "test_acc_at_budget_std": at_budget.std(ddof=protocol.NATS_STD_DDOF) if len(at_budget) > 1 else np.nan,
            "last_event_test_acc_mean": float(np.mean(last)),
            "regret_mean": table.best_final - at_budget.mean(),
            "sim_time_used_s_mean": float(np.mean(used)) if table.has_time else np.nan,
            "evaluations_mean": float(np.mean(events)),
            "wall_s_per_run_median": float(np.nanmedian(wall)) if not np.isnan(wall).all() else np.nan,
        })
    return pd.DataFrame(rows)


def curves_table(runs: pd.DataFrame, budget: Budget, step_s: float = protocol.CURVE_STEP_S) -> pd.DataFrame:
    """Each run's incumbent test accuracy every ``step_s`` simulated seconds up to the budget
    (NATS-Bench's Figure 6 / the thesis' Figure 5.6 curves); empty for an evaluation budget."""
    frames = []
    if budget.seconds is None:
        return pd.DataFrame(columns=["searcher", "run_seed", "sim_time_s", "test_acc"])
    for (name, seed), r in runs.groupby(["searcher", "run_seed"], sort=False):
        tickets, acc = protocol.curve(r["sim_time_s"].to_numpy(), r["best_test_acc"].to_numpy(), budget.seconds,
                                      step_s)
        frames.append(pd.DataFrame({"searcher": name, "run_seed": seed, "sim_time_s": tickets, "test_acc": acc}))
    return pd.concat(frames, ignore_index=True)


def runs_table(runs: pd.DataFrame, table: Task, experiment: str, budget: Budget) -> pd.DataFrame:
    """The trajectory with the experiment-wide columns of the `runs` schema."""
    df = runs.copy()
    df.insert(0, "experiment", experiment)
    df["clock"] = "simulated"  # the run's times are sim_time_s (the benchmark's recorded training time)
    df["space"] = table.space.name
    df["dataset"] = table.dataset
    df["budget_s"] = budget.seconds if budget.seconds is not None else np.nan
    df["budget_evals"] = budget.evaluations if budget.evaluations is not None else pd.NA
    df["final_recipe_hp"] = table.final_hp
    # Arch strings beside the indices, so a reader needs neither the store nor our index order.
    for col, idx in (("arch", "arch_index"), ("best_arch", "best_arch_index")):
        uniq, inverse = np.unique(df[idx].to_numpy(), return_inverse=True)
        names = np.array([table.space.to_str(int(i)) if i >= 0 else None for i in uniq], dtype=object)
        df[col] = names[inverse] if len(df) else pd.Series(dtype=object)
    return df


def write_runs(out_root: str | Path, df: pd.DataFrame, metadata: dict[str, str]) -> list[Path]:
    """The rows' ``runs`` columns as one fragment; other columns (a caller's diagnostics) stay out."""
    from benchmark_data.schema import SCHEMAS
    from benchmark_data.writer import write_fragment

    return write_fragment(out_root, "runs", df[[c for c in df.columns if c in SCHEMAS["runs"].names]],
                          metadata=metadata)


def write_curves(out_root: str | Path, experiment: str, curves: pd.DataFrame, metadata: dict[str, str]) -> Path | None:
    """The sampled curves as ``OUT/curves/experiment=NAME/curves.parquet`` (written to a hidden
    temporary name, then renamed, so an interrupted run leaves no half file); None if empty."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    if curves.empty:
        return None
    folder = Path(out_root).expanduser() / "curves" / f"experiment={experiment}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(curves, preserve_index=False)
    table = table.replace_schema_metadata({**metadata, "table": "curves"})
    final, tmp = folder / "curves.parquet", folder / ".curves.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final
