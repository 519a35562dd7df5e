"""``orchestrate.py oneshot``: weight-sharing NAS (DARTS, GDAS, SETN, ENAS, RSPS) scored on a benchmark.

The flags and their checks; the run itself is ``orchestrator.oneshot``. The supernet trains live on
Ray Tune on the benchmark's own dataset and skeleton; the architecture derived after every epoch is
looked up in the store, so its rows land in ``OUT/runs`` like the multi-trial searchers'.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from benchmark_data.cli import store_to_read  # the store flag's one reading, shared by every CLI
from spaces.errors import UserError
from trainables.oneshot import ALGORITHMS  # a registry only: no torch import

from ..common import (
    absolute,
    add_output_flags,
    add_ray_flags,
    add_seed_flag,
    add_store_flag,
    add_surrogate_flags,
    at_least,
    check_new_experiment,
    experiment_name,
    folder_flag,
)
from ..oneshot import DEFAULT_EPOCHS

HELP = "one-shot (weight-sharing) NAS on a supernet, scored against a tabular benchmark"
DESCRIPTION = ("Weight-sharing NAS on the topology space: a supernet trains live on Ray Tune (one trial per seed, "
               "1 CPU each, a checkpoint per epoch) on the store's dataset and skeleton; after every epoch the "
               "derived architecture is looked up in the store (test accuracy under the final recipe, rank among "
               "all cells).")
EPILOG = """\
A search on cifar10 trains on cifar10-valid (as NATS-Bench); cifar100 and ImageNet16-120 need NATS-Bench's split
files beside the data. Example:
  orchestrate.py oneshot --searcher gdas --epochs 50 --runs 3"""


@dataclass(frozen=True)
class OneShotRun:
    """A checked one-shot experiment: the trials' settings and where its results go."""

    settings: object        # orchestrator.oneshot.OneShotSettings
    scoring: object         # orchestrator.oneshot.Scoring: the store's view that scores the searches
    out: str
    address: str | None
    parallel: int | None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--searcher", required=True, choices=ALGORITHMS, help="one-shot algorithm")
    p.add_argument("--space", default="tss", choices=("tss",),
                   help="the topology space, the only one the supernet covers (default tss)")
    add_store_flag(p, reads=True, help="Parquet benchmark store the derived architectures are scored on")
    add_surrogate_flags(p)
    p.add_argument("--dataset", default=None,
                   help="dataset in the store (default: cifar10 if present, else the store's only dataset)")
    p.add_argument("--epochs", type=int, default=None, metavar="E",
                   help=f"search epochs (default {DEFAULT_EPOCHS}, as NATS-Bench)")
    p.add_argument("--runs", type=int, default=1, help="seeds, run as parallel Tune trials (default 1)")
    add_seed_flag(p, "seed of the first run; run i uses seed+i (default 0)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="where the dataset's files are (digits needs none)")
    p.add_argument("--C", type=int, default=None, help="channels of the first stage (default and only: the store's)")
    p.add_argument("--N", type=int, default=None, help="cells per stage (default and only: the store's)")
    p.add_argument("--max-failures", type=int, default=2, metavar="K",
                   help="retries of a crashed trial, each from its last checkpoint (default 2)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="G",
                   help="GPUs per trial, fractions allowed; 0 trains on the CPU (default 0)")
    add_output_flags(p, experiment_help="experiment name (default: from the arguments, the time and a random "
                                        "suffix); a name already used under --out is refused")
    add_ray_flags(p, parallel_help="start a local Ray with K CPUs (default: all of them)")


def settings_from_args(args: argparse.Namespace) -> OneShotRun:
    from orchestrator.oneshot import ONESHOT_FOLDER, OneShotSettings, resolve_benchmark

    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    at_least("--epochs", epochs, 1)
    at_least("--runs", args.runs, 1)
    at_least("--max-failures", args.max_failures, 0)
    at_least("--parallel", args.parallel, 1)
    if not args.gpus_per_trial >= 0:
        raise UserError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    out = folder_flag("--out", args.out)
    if args.experiment is not None:
        experiment_name(args.experiment, "")
    store = store_to_read(args.store)
    scoring = resolve_benchmark(store, args.dataset, args.C, args.N, surrogate=args.surrogate,
                                allow_gaps=args.allow_gaps)
    experiment = experiment_name(args.experiment, f"{args.searcher}-tss-{scoring.dataset}")
    check_new_experiment(out, experiment, ONESHOT_FOLDER)
    settings = OneShotSettings(
        experiment=experiment, algorithms=(args.searcher,), seeds=tuple(range(args.seed, args.seed + args.runs)),
        epochs=epochs, dataset=scoring.dataset, train_dataset=scoring.train_dataset, C=scoring.C, N=scoring.N,
        data_dir=None if args.data_dir is None else str(absolute(args.data_dir)),
        max_failures=args.max_failures, gpus_per_trial=float(args.gpus_per_trial))
    return OneShotRun(settings, scoring, out, args.address, args.parallel)


def run(run: OneShotRun, quiet: bool = False) -> int:
    from orchestrator.oneshot import run_and_report

    return run_and_report(run.settings, run.scoring, out=run.out, address=run.address, parallel=run.parallel,
                          quiet=quiet)
