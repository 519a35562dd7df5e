#!/usr/bin/env python
"""Search neural architectures on a tabular benchmark (simulated clock) or live on Ray Tune.

    python orchestrate.py --searcher bohb --budget 2e4s          # on the embedded benchmark
    python orchestrate.py --searcher all --runs 500 --benchmark path/to/store --dataset cifar10
    python orchestrate.py --mode train --searcher rea --C 8 --N 1 --trials 20   # live, on Ray Tune

This file only parses arguments, builds the experiment and dispatches; the work lives in
`orchestrator/`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from trainables.oneshot import ALGORITHMS as ONESHOT_SEARCHERS  # a registry only: no torch import

SIMULATED_SEARCHERS = ("random", "rea", "reinforce", "bohb", "tpe")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="orchestrate.py",
        description="Run multi-trial architecture searchers against a Parquet tabular benchmark with a "
                    "simulated clock (NATS-Bench protocol), and store every trajectory as Parquet.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Budgets: '2e4s' or '20000' = 20,000 s of recorded training time, '30m', '5.5h', or "
               "'150ev' = 150 evaluations.\nWithout --budget: NATS-Bench's budget for cifar10 (2e4 s), "
               "cifar100 (4e4 s), ImageNet16-120 (1.2e5 s tss, 6e4 s sss);\nfor other datasets, the time of "
               "150 median full evaluations of the search recipe.\nAs NATS-Bench, a run ends with the first "
               "evaluation past the budget (BOHB: once the value at the budget is final)\nand reports the "
               "incumbent's test accuracy interpolated at the budget (draw-table.py);\ncurves every 100 "
               "simulated seconds go to OUT/curves/.")
    p.add_argument("--searcher", default="bohb", choices=SIMULATED_SEARCHERS + ("all",) + ONESHOT_SEARCHERS,
                   help="multi-trial search algorithm, 'all' for every multi-trial searcher, or a one-shot "
                        "algorithm (see below) (default: bohb)")
    p.add_argument("--space", default="tss", choices=("tss", "sss"),
                   help="NATS topology (tss, 15,625 cells) or size (sss, 32,768 channel configs) space")
    p.add_argument("--dataset", default=None,
                   help="dataset in the benchmark (default: cifar10 if present, else the benchmark's only dataset)")
    p.add_argument("--budget", default=None, help="search budget per run (see below)")
    p.add_argument("--runs", type=int, default=1, help="independent runs per searcher (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first run; run i uses seed+i (default 0)")
    p.add_argument("--workers", type=int, default=1,
                   help="simulated parallel workers per run: 1 = NATS-Bench protocol, >1 = asynchronous search")
    p.add_argument("--benchmark", default=None, metavar="PATH",
                   help="Parquet benchmark store (default: the embedded digits benchmark shipped with the package)")
    p.add_argument("--hp", type=int, default=None,
                   help="recipe (epochs) whose validation accuracy is the searchers' feedback (default 12)")
    p.add_argument("--final-hp", type=int, default=None,
                   help="recipe whose test accuracy is reported (default 200 tss / 90 sss, else the longest complete one)")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="where results are written: the runs table (simulate) or OUT/live/EXPERIMENT (train); default results/")
    p.add_argument("--experiment", default=None,
                   help="experiment name (default: derived from the arguments, the time and a random suffix); "
                        "a name already used under --out is refused")
    p.add_argument("--address", default=None, help="Ray cluster address: spread runs over it as Ray tasks")
    p.add_argument("--parallel", type=int, default=None, metavar="K",
                   help="start a local Ray with K CPUs and spread runs over it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--mode", default="simulate", choices=("simulate", "train"),
                   help="simulate: replay the searcher on a tabular benchmark (default); "
                        "train: train every proposed architecture for real on Ray Tune")
    from orchestrator.live import SCHEDULERS
    from trainables.recipes import RECIPES

    live = p.add_argument_group(
        "live training (--mode train)",
        "Each trial trains one architecture (1 CPU, 1 torch thread) and appends every epoch to the\n"
        "store. The experiment folder OUT/live/EXPERIMENT holds Ray's files, live_settings.json and\n"
        "trials.parquet (one row per trial). --searcher (one name), --space, --seed (of the searcher\n"
        "and of the training), --experiment, --out, --address and --quiet apply too; --dataset\n"
        "defaults to digits. Example:\n"
        "  orchestrate.py --mode train --searcher rea --C 8 --N 1 --trials 20 --scheduler asha")
    live.add_argument("--data-dir", default=None, metavar="DIR",
                      help="where the dataset's files are (digits needs none)")
    live.add_argument("--recipe", default="h0", choices=sorted(RECIPES),
                      help="training recipe: h0 = 12 epochs (search), h1 = 200, h2 = 90 (default h0)")
    live.add_argument("--epochs", type=int, default=None, metavar="E",
                      help="override the recipe's length (cosine schedule over these epochs; stored as "
                           "hp=EPOCHS); for one-shot searchers: search epochs (default 100, as NATS-Bench)")
    live.add_argument("--trials", type=int, default=10, metavar="K", help="architectures to train (default 10)")
    live.add_argument("--scheduler", default="fifo", choices=SCHEDULERS,
                      help="fifo: train each trial to its end (default; the only one for bohb, which "
                           "runs its own HyperBand brackets); asha: ASHA early stopping (grace 1 epoch, "
                           "reduction 3); hyperband: synchronous HyperBand (reduction 3)")
    live.add_argument("--store", default="results/store", metavar="DIR",
                      help="Parquet store the trained epochs are appended to (default results/store)")
    live.add_argument("--C", type=int, default=None,
                      help="channels of the first stage (default 16 as NATS-Bench; digits wants 8; not for "
                           "--space sss, whose channels are the architecture; one-shot: the benchmark's)")
    live.add_argument("--N", type=int, default=None,
                      help="cells per stage (default 5 as NATS-Bench's topology space; the size space sss has "
                           "one cell per stage, its default, and refuses any other; digits wants 1; one-shot: "
                           "the benchmark's)")
    live.add_argument("--lr-schedule-step", default=None, choices=("epoch", "iteration"),
                      help="cosine lr stepped per epoch (the recipes' default, as NATS-Bench) or per iteration "
                           "(how the embedded digits benchmark was built)")
    live.add_argument("--max-concurrent", type=int, default=None, metavar="K",
                      help="at most K trials at once (default: as many as the CPUs allow)")
    live.add_argument("--max-failures", type=int, default=2, metavar="K",
                      help="retries of a crashed trial, each from its last checkpoint (default 2)")
    live.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="G",
                      help="GPUs per trial, fractions allowed; 0 trains on the CPU (default 0)")
    live.add_argument("--resume", action="store_true",
                      help="continue the interrupted experiment named by --experiment (under --out) "
                           "with its saved settings; the other live flags are not read")
    p.add_argument_group(
        "one-shot searchers (--searcher darts-v1|darts-v2|gdas|setn|enas|rsps)",
        "Weight-sharing NAS on the topology space: a supernet trains live on Ray Tune (one trial per\n"
        "seed, 1 CPU each, a checkpoint per epoch) on the benchmark's dataset and skeleton; after\n"
        "every epoch the derived architecture is looked up in --benchmark (test accuracy under the\n"
        "final recipe, rank among all cells). Rows land in OUT/runs like the multi-trial searchers'.\n"
        "Flags read: --benchmark, --dataset, --epochs (default 100), --seed, --runs (seeds in parallel\n"
        "trials), --data-dir, --C/--N (must match the benchmark), --max-failures, --gpus-per-trial,\n"
        "--out, --experiment, --address, --parallel, --quiet; --mode does not matter. Example:\n"
        "  orchestrate.py --searcher gdas --epochs 50 --runs 3")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from spaces import UserError

    try:
        return _run(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from orchestrator.live import check_mode_flags, run_live_cli

    if args.searcher in ONESHOT_SEARCHERS:
        from orchestrator.oneshot import run_oneshot_cli

        return run_oneshot_cli(args, build_parser())
    check_mode_flags(args, build_parser())
    if args.mode == "train":
        return run_live_cli(args)
    from benchmark_data.reader import Benchmark
    from benchmark_data.schema import provenance
    from orchestrator.experiment import (RunSpec, check_new_experiment, choose_dataset, curves_table, default_budget,
                                         resolved_knobs, run_experiment, runs_table, summarize,
                                         unique_experiment_name, write_curves, write_runs)
    from orchestrator.protocol import NATS_STD_DDOF
    from orchestrator.simulator import SimTable, parse_budget
    from spaces import UserError

    # Validate everything before any work, so bad input writes nothing.
    if args.runs < 1:
        raise UserError(f"--runs must be at least 1, got {args.runs}")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.parallel is not None and args.parallel < 1:
        raise UserError(f"--parallel must be at least 1, got {args.parallel}")
    budget = parse_budget(args.budget) if args.budget is not None else None
    bench = Benchmark.open(args.benchmark)
    dataset = choose_dataset(bench, args.space, args.dataset)
    table = SimTable.from_benchmark(bench, args.space, dataset, args.hp, final_hp=args.final_hp)
    why = "given"
    if budget is None:
        budget, why = default_budget(table)
    names = list(SIMULATED_SEARCHERS) if args.searcher == "all" else [args.searcher]
    specs = [RunSpec(n, budget, args.workers) for n in names]
    seeds = list(range(args.seed, args.seed + args.runs))
    experiment = args.experiment or unique_experiment_name(f"{args.searcher}-{args.space}-{dataset}-{budget}")
    check_new_experiment(args.out, experiment)
    knobs = {spec.searcher: resolved_knobs(table, spec) for spec in specs}

    print(f"benchmark: {bench.root}")
    print(f"space {args.space}, dataset {dataset}: feedback {table.feedback_source} at hp={table.feedback_hp}, "
          f"final value {table.final_source} at hp={table.final_hp}")
    for note in table.notes:
        print(f"note: {note}")
    if table.min_fidelity == table.num_epochs and "bohb" in names:
        print(f"note: only epoch {table.num_epochs} of hp={table.feedback_hp} is recorded, so BOHB has one fidelity: "
              "it runs its model over that fidelity (no HyperBand brackets)")
    print(f"budget: {budget} per run ({why}); {args.runs} run(s) x {len(names)} searcher(s), {args.workers} worker(s)")

    started = time.perf_counter()
    runs = run_experiment(table, specs, seeds, address=args.address, parallel=args.parallel, progress=not args.quiet)
    elapsed = time.perf_counter() - started
    df = runs_table(runs, table, experiment, budget)
    skeleton = json.loads(bench.metadata(args.space, table.feedback_dataset, table.feedback_hp).get("skeleton") or "{}")
    meta = provenance("runs", recipe={"feedback": table.feedback_source, "feedback_hp": table.feedback_hp,
                                      "feedback_dataset": table.feedback_dataset,
                                      "final": table.final_source, "final_hp": table.final_hp},
                      skeleton=skeleton,
                      dataset_fingerprint=bench.dataset_fingerprint(args.space, table.feedback_dataset,
                                                                    table.feedback_hp),
                      extra={"experiment": experiment, "benchmark": str(bench.root), "budget": str(budget),
                             "seeds": f"{seeds[0]}..{seeds[-1]}", "workers": str(args.workers),
                             "knobs": json.dumps(knobs, sort_keys=True, default=str),
                             "incumbent": specs[0].incumbent})
    paths = write_runs(args.out, df, meta)
    curve_path = write_curves(args.out, experiment, curves_table(runs, budget), meta)

    summary = summarize(runs, table, budget)
    best_str = table.space.to_str(table.best_arch)
    print(f"\nbest architecture in the benchmark: {best_str}  ({table.final_source} {table.best_final:.2f} %)")
    print(_format_summary(summary, dataset, budget, NATS_STD_DDOF))
    if args.runs == 1 and len(names) == 1:
        found = int(runs["best_arch_index"].iloc[-1])
        print(f"\nfound: {table.space.to_str(found)}  (index {found}, {table.final_source} at hp={table.final_hp}: "
              f"{table.final[found]:.2f} %)")
    print(f"\nwall time {elapsed:.2f} s; runs table: {paths[0].parent if paths else args.out}"
          + (f"; curves: {curve_path}" if curve_path else ""))
    return 0


def _format_summary(summary, dataset: str, budget, ddof: int) -> str:
    import numpy as np

    at = ("at the budget, interpolated as NATS-Bench's draw-table.py" if budget.seconds is not None
          else "after the last evaluation (an evaluation budget)")
    lines = [f"test accuracy of the incumbent {at}; +- is the std over runs (ddof={ddof}, as NATS-Bench)",
             f"{'searcher':<10} {'dataset':<16} {'runs':>5} {'test acc':>17} {'last event':>10} {'regret':>7} "
             f"{'sim time used':>14} {'evals/run':>10} {'ms/run':>9}"]
    for r in summary.itertuples():
        spread = "" if np.isnan(r.test_acc_at_budget_std) else f"+- {r.test_acc_at_budget_std:.2f}"
        used = "n/a" if np.isnan(r.sim_time_used_s_mean) else f"{r.sim_time_used_s_mean:.0f}s"
        lines.append(f"{r.searcher:<10} {dataset:<16} {r.runs:>5} {r.test_acc_at_budget_mean:>8.2f} {spread:<8} "
                     f"{r.last_event_test_acc_mean:>10.2f} {r.regret_mean:>7.2f} {used:>14} "
                     f"{r.evaluations_mean:>10.1f} {r.wall_ms_per_run_median:>9.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
