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

from spaces import UserError

from . import protocol
from .searchers import make_searcher
from .simulator import Budget, SimTable, run_search

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


def default_budget(table: SimTable) -> tuple[Budget, str]:
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


def choose_dataset(bench, space: str, requested: str | None) -> str:
    """``requested``, else cifar10 when the benchmark has it, else its only dataset (UserError if several)."""
    if requested is not None:
        return requested
    datasets = bench.datasets(space)
    candidates = [d for d in datasets if not d.endswith("-valid")]
    dataset = "cifar10" if "cifar10" in candidates else (candidates[0] if len(candidates) == 1 else None)
    if dataset is None:
        raise UserError(f"the benchmark holds several datasets ({', '.join(datasets)}); choose one with --dataset")
    return dataset


def unique_experiment_name(stem: str) -> str:
    """``stem``, the time and a random suffix: two runs started in the same second never share
    a default name (and so never write one partition twice)."""
    import uuid

    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}".replace(" ", "")


def check_new_experiment(out_root: str | Path, experiment: str) -> None:
    """Refuse an experiment name whose ``runs`` partition exists already: appending would put two
    runs' rows under one key (readers would stitch them, ``compact`` would drop one silently)."""
    from benchmark_data.schema import check_partition_value

    check_partition_value("experiment", experiment)
    folder = Path(out_root).expanduser() / "runs" / f"experiment={experiment}"
    if folder.exists() and any(folder.iterdir()):
        raise UserError(f"experiment {experiment!r} exists already in {folder.parent}; choose another "
                        "--experiment (or leave it out for a fresh name), or remove that folder to redo it")


@dataclass
class RunSpec:
    searcher: str
    budget: Budget
    workers: int = 1
    knobs: dict = field(default_factory=dict)
    incumbent: str = "nats"
    past_budget: bool | None = None  # None: as NATS-Bench's script for this searcher

    def runs_past_budget(self) -> bool:
        return self.searcher in protocol.RUNS_PAST_BUDGET if self.past_budget is None else self.past_budget


def make_run_searcher(table: SimTable, spec: RunSpec, seed: int):
    """The searcher of one run. Fidelities span the recorded epochs: on a table that records
    only its last epoch (an imported final-accuracy table) a multi-fidelity searcher gets
    min = max = that epoch, so BOHB runs its model over the one fidelity there is."""
    return make_searcher(spec.searcher, table.space.hparams, seed, min_fidelity=table.min_fidelity,
                         max_fidelity=table.num_epochs, **dict(spec.knobs))


def resolved_knobs(table: SimTable, spec: RunSpec) -> dict:
    """Every knob of ``spec``'s searcher with its default filled in, for provenance."""
    return make_run_searcher(table, spec, 0).all_knobs


def run_one(table: SimTable, spec: RunSpec, seed: int, on_progress=None) -> pd.DataFrame:
    """One seeded run as rows of the `runs` table (without the experiment-wide columns)."""
    searcher = make_run_searcher(table, spec, seed)
    started = time.perf_counter()
    traj = run_search(table, searcher, spec.budget, workers=spec.workers, seed=seed, on_progress=on_progress,
                      incumbent=spec.incumbent, past_budget=spec.runs_past_budget())
    df = pd.DataFrame(traj)
    df.insert(0, "run_seed", seed)
    df.insert(0, "searcher", spec.searcher)
    df.attrs["wall_s"] = time.perf_counter() - started
    return df


def _run_many(table: SimTable, spec: RunSpec, seeds: list[int]) -> list[pd.DataFrame]:
    return [run_one(table, spec, s) for s in seeds]


def run_experiment(table: SimTable, specs: list[RunSpec], seeds: list[int], *, address: str | None = None,
                   parallel: int | None = None, progress: bool = True) -> pd.DataFrame:
    """All (searcher, seed) runs; in-process, or as Ray tasks when an address or parallelism is given."""
    from tqdm.auto import tqdm

    jobs = [(spec, s) for spec in specs for s in seeds]
    frames: list[pd.DataFrame] = []
    if len(jobs) == 1 and address is None and not parallel:
        # One long run: show its progress through the budget rather than a 0/1 run counter.
        spec, s = jobs[0]
        by_time = spec.budget.seconds is not None
        bar = tqdm(total=spec.budget.seconds if by_time else spec.budget.evaluations, disable=not progress,
                   desc=spec.searcher, unit="sim s" if by_time else "eval", dynamic_ncols=True)

        def advance(sim_time: float, evaluations: int) -> None:
            bar.update((sim_time if by_time else evaluations) - bar.n)
            bar.set_postfix_str(f"{evaluations} evaluations")

        frames.append(run_one(table, spec, s, on_progress=advance))
        bar.close()
        jobs = []
    bar = tqdm(total=len(jobs), desc="runs", unit="run", disable=not progress or not jobs, dynamic_ncols=True)
    if not jobs:
        pass
    elif address is None and not parallel:
        for spec, s in jobs:
            bar.set_postfix_str(spec.searcher)
            frames.append(run_one(table, spec, s))
            bar.update()
    else:
        import ray

        from trainables.ray_utils import start_ray

        with start_ray(address=address, num_cpus=parallel):
            remote = ray.remote(num_cpus=1)(_run_many)
            table_ref = ray.put(table)
            chunk = max(1, len(seeds) // (4 * max(1, int(ray.cluster_resources().get("CPU", 1)))))
            pending = {}
            for spec in specs:
                for i in range(0, len(seeds), chunk):
                    part = seeds[i:i + chunk]
                    pending[remote.remote(table_ref, spec, part)] = len(part)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                frames.extend(ray.get(done[0]))
                bar.update(pending.pop(done[0]))
    bar.close()
    walls = {(f["searcher"].iat[0], int(f["run_seed"].iat[0])): f.attrs.get("wall_s", np.nan) for f in frames if len(f)}
    frames = [f for f in frames if len(f)]
    if not frames:
        raise UserError("no run completed a single evaluation within the budget; raise the budget")
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["searcher", "run_seed", "event"], kind="stable").reset_index(drop=True)
    out.attrs["run_wall_s"] = walls
    return out


def summarize(runs: pd.DataFrame, table: SimTable, budget: Budget) -> pd.DataFrame:
    """Per searcher, as NATS-Bench reports it: the incumbent's test accuracy at the budget (for a
    time budget interpolated between the two events nearest to it, ``protocol.value_at``), its
    mean and std over runs (ddof 0, ``protocol.NATS_STD_DDOF``); beside it the accuracy at the
    run's last event, the regret, time used, evaluations and wall time."""
    walls = runs.attrs.get("run_wall_s", {})
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
            "wall_ms_per_run_median": 1e3 * float(np.nanmedian(wall)) if not np.isnan(wall).all() else np.nan,
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


def runs_table(runs: pd.DataFrame, table: SimTable, experiment: str, budget: Budget) -> pd.DataFrame:
    """The trajectory with the experiment-wide columns of the `runs` schema."""
    df = runs.copy()
    df.attrs = {}  # per-run wall times live in the summary, not in the file
    df.insert(0, "experiment", experiment)
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
