#!/usr/bin/env python
"""Stopping schedulers against BOHB and plain random search, simulated on one table.

Each method runs N seeded simulated searches with W workers on the same table and budget
(NATS-Bench's budget for the dataset, or the documented default: 150 median full evaluations):

    random+asha       random search under ASHA (Ray's AsyncHyperBandScheduler, grace 1, rf 3)
    random+hyperband  random search under HyperBand (Ray's HyperBandScheduler, rf 3)
    bohb              BOHB's own brackets (FIFO), past the budget until the value there is final
    random            random search, every trial trained to the recipe's end (FIFO)

and the table shows the incumbent's test accuracy at the budget (interpolated as NATS-Bench's
draw-table.py; mean and std over the N runs, ddof 0), trials (ended trials or evaluations) and
epochs trained per run, and the median wall time of one simulated run.

    python benchmarks/bench_schedulers.py [--store embedded] [--workers 4] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_data.reader import Benchmark  # noqa: E402
from benchmark_data.task import choose_dataset  # noqa: E402
from orchestrator import protocol  # noqa: E402
from orchestrator.experiment import default_budget  # noqa: E402
from orchestrator.schedulers import make_sim_scheduler  # noqa: E402
from orchestrator.searchers import make_searcher  # noqa: E402
from orchestrator.simulator import parse_budget, run_search  # noqa: E402
from spaces import UserError  # noqa: E402

METHODS = (("random+asha", "random", "asha"), ("random+hyperband", "random", "hyperband"),
           ("bohb", "bohb", "fifo"), ("random", "random", "fifo"))


def one_run(table, searcher: str, scheduler: str, budget, workers: int, seed: int) -> tuple[float, int, int, float]:
    """(test accuracy at the budget, trials, epochs trained, wall seconds) of one simulated run."""
    s = make_searcher(searcher, table.space.hparams, seed, min_fidelity=table.min_fidelity,
                      max_fidelity=table.num_epochs)
    sched = make_sim_scheduler(scheduler, max_t=table.num_epochs)
    t0 = time.perf_counter()
    traj = run_search(table, s, budget, workers=workers, seed=seed, scheduler=sched,
                      past_budget=searcher in protocol.RUNS_PAST_BUDGET)
    wall = time.perf_counter() - t0
    if budget.seconds is not None:
        acc = protocol.value_at(traj["sim_time_s"], traj["best_test_acc"], budget.seconds)
    else:
        acc = float(traj["best_test_acc"][-1])
    return acc, len(traj["event"]), int(traj["fidelity"].sum()), wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--store", default="embedded", help="a Parquet benchmark store, or 'embedded' (default)")
    p.add_argument("--space", choices=("tss", "sss"), default="tss")
    p.add_argument("--dataset", default=None, help="inferred when the store has one dataset")
    p.add_argument("--workers", type=int, default=4, help="simulated workers per search (default 4)")
    p.add_argument("--runs", type=int, default=20, help="seeded runs per method (default 20)")
    p.add_argument("--budget", default=None, help="e.g. 2e4s or 150ev (default: the dataset's budget)")
    args = p.parse_args(argv)
    try:
        if args.runs < 1:
            raise UserError(f"--runs must be at least 1, got {args.runs}")
        bench = Benchmark.open(None if args.store == "embedded" else args.store)
        dataset = choose_dataset(bench.datasets(args.space), args.dataset, where=f"the store {bench.root}",
                                 space=args.space)
        table = bench.task(args.space, dataset)
        budget, why = (parse_budget(args.budget), "--budget") if args.budget else default_budget(table)
        rows = []
        for label, searcher, scheduler in METHODS:
            runs = [one_run(table, searcher, scheduler, budget, args.workers, seed) for seed in range(args.runs)]
            acc, trials, epochs, walls = (np.array(col, dtype=float) for col in zip(*runs))
            rows.append((label, acc.mean(), acc.std(ddof=protocol.NATS_STD_DDOF), trials.mean(), epochs.mean(),
                         1000 * statistics.median(walls)))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.space}/{dataset} ({bench.root}); budget {budget} per run ({why}); {args.workers} workers; "
          f"{args.runs} runs per method")
    spread = f"std over {args.runs} runs" if args.runs > 1 else "std"
    head = f"{'method':<18}{'test acc at budget':>20}  {spread:>16}{'trials/run':>12}{'epochs/run':>12}{'ms/run':>9}"
    print(head)
    print("-" * len(head))
    for label, mean, std, trials, epochs, ms in rows:
        std_text = f"{std:.2f}" if args.runs > 1 else "n/a"
        print(f"{label:<18}{mean:>19.2f}%  {std_text:>16}{trials:>12,.0f}{epochs:>12,.0f}{ms:>9.1f}")
    print("(trials/run and epochs/run: mean over runs, rounded; ms/run: median wall time of one simulated run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
