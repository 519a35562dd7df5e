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

from .searchers import make_searcher
from .simulator import Budget, SimTable, run_search

# NATS-Bench's budgets of recorded training time (seconds), the same for every searcher.
NATS_BUDGETS_S = {"cifar10": 2e4, "cifar100": 4e4, "ImageNet16-120": 1.2e5}
# Other datasets get the time of this many median full evaluations of the search recipe (see
# default_budget); NATS-Bench's searchers complete on the order of a hundred evaluations within
# their CIFAR-10 budget.
DEFAULT_EVALUATIONS_WORTH = 150


def default_budget(table: SimTable) -> tuple[Budget, str]:
    """NATS-Bench's budget for its datasets, else a documented equivalent; and why."""
    if table.dataset in NATS_BUDGETS_S and table.has_time:
        return Budget(seconds=NATS_BUDGETS_S[table.dataset]), f"NATS-Bench's budget for {table.dataset}"
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


@dataclass
class RunSpec:
    searcher: str
    budget: Budget
    workers: int = 1
    knobs: dict = field(default_factory=dict)


def run_one(table: SimTable, spec: RunSpec, seed: int, on_progress=None) -> pd.DataFrame:
    """One seeded run as rows of the `runs` table (without the experiment-wide columns)."""
    knobs = dict(spec.knobs)
    searcher = make_searcher(spec.searcher, table.space.hparams, seed,
                             min_fidelity=1, max_fidelity=table.num_epochs, **knobs)
    started = time.perf_counter()
    traj = run_search(table, searcher, spec.budget, workers=spec.workers, seed=seed, on_progress=on_progress)
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


def summarize(runs: pd.DataFrame, table: SimTable) -> pd.DataFrame:
    """Per searcher: final test accuracy mean +- std, regret, time used, evaluations, wall time."""
    last = runs.groupby(["searcher", "run_seed"], sort=False).tail(1)
    walls = runs.attrs.get("run_wall_s", {})
    rows = []
    for name, g in last.groupby("searcher", sort=False):
        wall = [walls.get((name, int(s)), np.nan) for s in g["run_seed"]]
        rows.append({
            "searcher": name,
            "runs": len(g),
            "final_test_acc_mean": g["best_test_acc"].mean(),
            "final_test_acc_std": g["best_test_acc"].std(ddof=1) if len(g) > 1 else 0.0,
            "regret_mean": table.best_final - g["best_test_acc"].mean(),
            "sim_time_used_s_mean": g["sim_time_s"].mean(),
            "evaluations_mean": g["event"].mean() + 1,
            "wall_ms_per_run_median": 1e3 * float(np.nanmedian(wall)) if wall else np.nan,
        })
    return pd.DataFrame(rows)


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
    return df


def write_runs(out_root: str | Path, df: pd.DataFrame, metadata: dict[str, str]) -> list[Path]:
    """The rows' ``runs`` columns as one fragment; other columns (a caller's diagnostics) stay out."""
    from benchmark_data.schema import SCHEMAS
    from benchmark_data.writer import write_fragment

    return write_fragment(out_root, "runs", df[[c for c in df.columns if c in SCHEMAS["runs"].names]],
                          metadata=metadata)
