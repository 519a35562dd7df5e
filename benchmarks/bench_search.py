#!/usr/bin/env python
"""How fast is a simulated search, and what would the same search cost as Ray Tune trials?

For each searcher on the embedded benchmark (NATS-Bench's CIFAR-10 protocol translated by the
documented default-budget rule, one worker): the median wall time of one simulated run over many
seeded runs, evaluations per run, the projected time of 500 runs, and — measured in the same
script — the wall time of the same searcher when every evaluation is a Ray Tune trial (through the
one generic adapter, reuse_actors=True, a trainable that only looks the answer up). The ratio is
the point: the simulator exists because per-trial overhead dwarfs a table lookup.

    python benchmarks/bench_search.py [--store STORE] [--runs 100] [--tune-runs 1]

Prints `name: value unit` lines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_data.task import Task  # noqa: E402
from orchestrator.experiment import RunSpec, default_budget, run_one  # noqa: E402
from orchestrator.searchers import SEARCHERS, make_searcher  # noqa: E402


def lookup_trainable(config: dict, table: Task) -> dict:
    """A Tune trainable that does no training: the recorded answer, as the simulator would give it."""
    arch = table.space.config_to_index({d: config[d] for d in table.space.decisions})
    value, _ = table.evaluate(arch, int(config.get("fidelity", table.num_epochs)), 0)
    return {"feedback": value}


def tune_run(table: Task, name: str, evaluations: int, seed: int, storage: str) -> float:
    """Wall seconds of one search whose every evaluation is a Ray Tune trial."""
    from ray import tune

    from orchestrator.tune_adapter import TuneSearcher

    searcher = make_searcher(name, table.space.hparams, seed, min_fidelity=1, max_fidelity=table.num_epochs)
    tuner = tune.Tuner(
        tune.with_parameters(lookup_trainable, table=table),
        tune_config=tune.TuneConfig(search_alg=TuneSearcher(searcher, metric="feedback", mode="max"),
                                    num_samples=evaluations, reuse_actors=True, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=storage, name=f"{name}-{seed}", verbose=0),
    )
    t0 = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=None, help="store (default: 'embedded', the embedded benchmark)")
    p.add_argument("--dataset", default=None)
    p.add_argument("--runs", type=int, default=100, help="simulated runs per cheap searcher")
    p.add_argument("--model-runs", type=int, default=20, help="simulated runs for bohb and tpe")
    p.add_argument("--tune-runs", type=int, default=1, help="runs per searcher as Ray Tune trials (0: skip)")
    args = p.parse_args()

    from benchmark_data.reader import Benchmark

    bench = Benchmark.open(None if args.store in (None, "embedded") else args.store)
    table = bench.task("tss", args.dataset)
    dataset = table.dataset
    budget, why = default_budget(table)
    print(f"benchmark: {bench.root} ({dataset}); budget {budget} per run ({why}); 1 worker")

    sims: dict[str, tuple[float, float]] = {}
    for name in SEARCHERS:
        n = args.model_runs if name in ("bohb", "tpe") else args.runs
        walls, evals = [], []
        for seed in range(n):
            t0 = time.perf_counter()
            run = run_one(table, RunSpec(name, budget), seed)
            walls.append(time.perf_counter() - t0)
            evals.append(len(run))
        med = statistics.median(walls)
        sims[name] = (med, statistics.mean(evals))
        print(f"{name}.sim_ms_per_run_median: {1e3 * med:.2f} ms  (over {n} runs)")
        print(f"{name}.evaluations_per_run: {statistics.mean(evals):.1f} evals")
        print(f"{name}.projected_500_runs: {500 * med:.1f} s")

    if args.tune_runs > 0:
        from trainables.ray_utils import start_ray

        with start_ray(num_cpus=2), tempfile.TemporaryDirectory() as storage:
            for name in SEARCHERS:
                evals = max(1, round(sims[name][1]))
                walls = [tune_run(table, name, evals, seed, storage) for seed in range(args.tune_runs)]
                med = statistics.median(walls)
                print(f"{name}.tune_s_per_run: {med:.2f} s  ({evals} trials, reuse_actors=True)")
                print(f"{name}.tune_over_sim_ratio: {med / sims[name][0]:.0f} x")
                print(f"{name}.tune_ms_per_trial: {1e3 * med / evals:.1f} ms")


if __name__ == "__main__":
    main()
