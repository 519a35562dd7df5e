"""``orchestrate.py oneshot``: weight-sharing NAS scored on a benchmark — DARTS, GDAS, SETN, ENAS, RSPS on the
topology space, TAS, FBNet-V2 and TuNAS on the size space (``--space sss``).

The flags and their checks; the run itself is ``orchestrator.oneshot``. The supernet trains live on
Ray Tune on the benchmark's own dataset and skeleton; the architecture derived after every epoch is
looked up in the store, so its rows land in ``OUT/runs`` like the multi-trial searchers'.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from benchmark_data.cli import store_to_read, store_to_write  # the store flag's readings, shared by every CLI
from spaces.errors import UserError
from trainables.oneshot import ALGORITHMS, SIZE_ALGORITHMS, SPACE_ALGORITHMS, algorithm_space  # registry: no torch

from .. import autohas
from ..common import (
    INTERRUPTED_STATUS,
    absolute,
    add_output_flags,
    add_ray_flags,
    add_resume_flag,
    add_seed_flag,
    add_store_flag,
    add_surrogate_flags,
    at_least,
    check_new_experiment,
    check_writable,
    experiment_name,
    find_resumable,
    folder_flag,
    resume_command,
    write_identity,
)
from ..oneshot import DEFAULT_EPOCHS

HELP = "one-shot (weight-sharing) NAS on a supernet, scored against a tabular benchmark"
DESCRIPTION = ("Weight-sharing NAS: a supernet trains live on Ray Tune (one trial per seed, 1 CPU each, a checkpoint "
               "per epoch) on the store's dataset and skeleton; after every epoch the derived architecture is looked "
               "up in the store (test accuracy under the final recipe, rank among all architectures; a surrogate "
               "model's prediction is labelled as one). Topology space: "
               f"{', '.join(ALGORITHMS)}. Size space (--space sss, a channel supernet): {', '.join(SIZE_ALGORITHMS)}, "
               "with optional FLOPs/parameter targets (TAS' cost loss) and filter warm-up.")
EPILOG = """\
A search on cifar10 trains on cifar10-valid (as NATS-Bench); cifar100 and ImageNet16-120 need NATS-Bench's split
files beside the data. A target is absolute (millions) or a share of the largest network (50%). Examples:
  orchestrate.py oneshot --searcher gdas --epochs 50 --runs 3
  orchestrate.py oneshot --searcher tas --space sss --runs 3 --flops-target 50%
  orchestrate.py oneshot --searcher autohas --epochs 10 --runs 3   # joint lr x L2 x cell, then retrained"""


@dataclass(frozen=True)
class OneShotRun:
    """A checked one-shot experiment: the trials' settings and where its results go."""

    settings: object        # orchestrator.oneshot.OneShotSettings
    scoring: object         # orchestrator.oneshot.Scoring: the store's view that scores the searches
    out: str
    address: str | None
    parallel: int | None
    retrain_epochs: int = 0  # autohas: epochs to retrain the derived network with the derived hyperparameters
    retrain_lr: str = "schedule"  # autohas: the retraining's lr (orchestrator.autohas.RETRAIN_LRS)
    resume: bool = False     # continue an interrupted experiment from its trials' last checkpoints
    command_line: tuple[str, ...] | None = None  # as typed, for the resume command printed on Ctrl-C


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--searcher", required=True, choices=ALGORITHMS + SIZE_ALGORITHMS + autohas.AUTOHAS_SEARCHERS,
                   help=f"one-shot algorithm: {', '.join(ALGORITHMS)} (topology space), {', '.join(SIZE_ALGORITHMS)} "
                        "(size space), autohas (topology cell x learning rate x L2 weight)")
    p.add_argument("--space", default=None, choices=("tss", "sss"),
                   help="the space searched; each algorithm searches one (default: the searcher's: tss for the "
                        "topology algorithms, sss for the size ones)")
    add_store_flag(p, reads=True, help="Parquet benchmark store the derived architectures are scored on")
    add_surrogate_flags(p)
    p.add_argument("--dataset", default=None,
                   help="dataset in the store (default: cifar10 if present, else the store's only dataset)")
    p.add_argument("--epochs", type=int, default=None, metavar="E",
                   help=f"search epochs (default {DEFAULT_EPOCHS}, as NATS-Bench)")
    p.add_argument("--runs", type=int, default=1, help="seeds, run as parallel Tune trials (default 1)")
    add_seed_flag(p, "seed of the first run; run i uses seed+i (default 0)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="where the dataset's files are (digits needs none)")
    p.add_argument("--C", type=int, default=None,
                   help="channels of the first stage (default and only: the store's; the size space has none)")
    p.add_argument("--N", type=int, default=None, help="cells per stage (default and only: the store's; sss: 1)")
    size = p.add_argument_group("size space (tas, fbnetv2, tunas)")
    size.add_argument("--flops-target", default=None, metavar="T",
                      help="FLOPs the searched network should have, in millions (e.g. 8.5) or as a share of the "
                           "largest network (e.g. 50%%): TAS' cost loss, lambda 2, tolerance 5 %% (default: none, "
                           "as NATS-Bench)")
    size.add_argument("--params-target", default=None, metavar="T",
                      help="parameters the searched network should have, in millions or as a share (e.g. 50%%); "
                           "as --flops-target (default: none)")
    size.add_argument("--warmup-ratio", type=float, default=None, metavar="R",
                      help="filter warm-up over the first share R of the epochs (NATS-Bench's --warmup_ratio): the "
                           "architecture rests while every width's filters train (default: none)")
    autohas.add_flags(p)
    p.add_argument("--train-missing", action="store_true",
                   help="after the search, train every derived architecture the store's table lacks (a gap or a "
                        "surrogate prediction) with the table's recipe, append it to --store (a folder, not the "
                        "word embedded) and score the runs from the grown table")
    p.add_argument("--max-failures", type=int, default=2, metavar="K",
                   help="retries of a crashed trial, each from its last checkpoint (default 2)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="G",
                   help="GPUs per trial, fractions allowed; 0 trains on the CPU (default 0)")
    add_output_flags(p, experiment_help="experiment name (default: from the arguments, the time and a random "
                                        "suffix); a name already used under --out is refused")
    add_ray_flags(p, parallel_help="start a local Ray with K CPUs (default: all of them)")
    add_resume_flag(p, "every trial continues from its last checkpoint (one per search epoch)")


def settings_from_args(args: argparse.Namespace) -> OneShotRun:
    from orchestrator.oneshot import ONESHOT_FOLDER, OneShotSettings, resolve_benchmark

    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    at_least("--epochs", epochs, 1)
    at_least("--runs", args.runs, 1)
    at_least("--max-failures", args.max_failures, 0)
    at_least("--parallel", args.parallel, 1)
    if not args.gpus_per_trial >= 0:
        raise UserError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    space = algorithm_space(args.searcher)
    if args.space is not None and args.space != space:
        raise UserError(f"--searcher {args.searcher} searches the {_SPACE_WORDS[space]} space (--space {space}); "
                        f"on --space {args.space} use one of {', '.join(SPACE_ALGORITHMS[args.space])}")
    knobs = {**size_knobs(args, space), **autohas.knobs(args)}
    out = folder_flag("--out", args.out)
    if args.experiment is not None:
        experiment_name(args.experiment, "")
    store = store_to_read(args.store)
    if args.train_missing:
        store_to_write("embedded" if store is None else store)  # the shipped benchmark only on purpose
    scoring = resolve_benchmark(store, args.dataset, args.C, args.N, space=space, surrogate=args.surrogate,
                                allow_gaps=args.allow_gaps)
    data_dir = None if args.data_dir is None else str(absolute(args.data_dir))
    if space == "sss":
        check_cost_targets(knobs, scoring.train_dataset, data_dir)
    check_writable("--out", out)
    settings = OneShotSettings(
        experiment="", algorithms=(args.searcher,), seeds=tuple(range(args.seed, args.seed + args.runs)),
        epochs=epochs, dataset=scoring.dataset, train_dataset=scoring.train_dataset, C=scoring.C, N=scoring.N,
        data_dir=data_dir, max_failures=args.max_failures, gpus_per_trial=float(args.gpus_per_trial), knobs=knobs,
        space=space, train_missing=args.train_missing)
    identity = resume_identity(settings, scoring)
    if args.resume:
        experiment = find_resumable(out, ONESHOT_FOLDER, args.experiment, identity)
    else:
        experiment = experiment_name(args.experiment, f"{args.searcher}-{space}-{scoring.dataset}")
        check_new_experiment(out, experiment, ONESHOT_FOLDER)
    settings = replace(settings, experiment=experiment)
    retrain = args.retrain_epochs if args.searcher in autohas.AUTOHAS_SEARCHERS else 0
    return OneShotRun(settings, scoring, out, args.address, args.parallel, retrain,
                      retrain_lr=args.retrain_lr or "schedule", resume=args.resume,
                      command_line=getattr(args, "command_line", None))


def resume_identity(settings, scoring) -> dict:
    """What a resumed one-shot experiment must share with the one it continues: every setting but
    its name, and the store that scores it."""
    return {**{k: v for k, v in asdict(settings).items() if k != "experiment"}, "store": str(scoring.bench.root)}


_SPACE_WORDS = {"tss": "topology", "sss": "size"}
_SIZE_FLAGS = {"--flops-target": "flops_target", "--params-target": "params_target", "--warmup-ratio": "warmup_ratio"}


def size_knobs(args: argparse.Namespace, space: str) -> dict:
    """The size strategies' knobs the flags set (none for a topology search, which has no such knobs)."""
    given = {flag: getattr(args, knob) for flag, knob in _SIZE_FLAGS.items() if getattr(args, knob) is not None}
    if given and space != "sss":
        raise UserError(f"{', '.join(given)}: for the size strategies ({', '.join(SIZE_ALGORITHMS)}, --space sss); "
                        f"--searcher {args.searcher} searches the topology space")
    if args.warmup_ratio is not None and not 0 < args.warmup_ratio < 1:
        raise UserError(f"--warmup-ratio must be a share of the search epochs between 0 and 1, got {args.warmup_ratio}")
    for flag in ("--flops-target", "--params-target"):  # the syntax now; what the space can meet later
        if flag in given:
            from trainables.oneshot.cost_loss import parse_target

            parse_target(given[flag], flag)
    return {_SIZE_FLAGS[flag]: value for flag, value in given.items()}


def check_cost_targets(knobs: dict, train_dataset: str, data_dir: str | None) -> None:
    """UserError for a cost target that no network of the size space can meet, before anything
    runs (the strategies resolve the targets again, the same way, in every trial)."""
    targets = {k: knobs[k] for k in ("flops_target", "params_target") if k in knobs}
    if not targets:
        return
    from trainables.data.splits import search_dataset
    from trainables.oneshot.cost_loss import resolve_target
    from trainables.oneshot.size_cost import size_costs

    data = search_dataset(train_dataset, data_dir)
    costs = size_costs(data.num_classes, data.in_channels, data.image_size)
    for knob, value in targets.items():
        metric = knob.replace("_target", "_m")
        resolve_target(metric, value, costs.table(metric).every, flag="--" + knob.replace("_", "-"))


def run(run: OneShotRun, quiet: bool = False) -> int:
    from orchestrator.oneshot import ONESHOT_FOLDER, run_and_report

    if not run.resume:
        write_identity(run.out, ONESHOT_FOLDER, run.settings.experiment, resume_identity(run.settings, run.scoring))
    code = run_and_report(run.settings, run.scoring, out=run.out, address=run.address, parallel=run.parallel,
                          quiet=quiet, resume=run.resume)
    if code == INTERRUPTED_STATUS:
        print(f"finish the experiment with\n  {resume_command(run.command_line, 'oneshot', run.settings.experiment)}",
              file=sys.stderr)
        return code
    if run.settings.algorithms[0] in autohas.AUTOHAS_SEARCHERS:
        autohas.report(run.settings, Path(run.out) / ONESHOT_FOLDER / run.settings.experiment,
                       retrain_epochs=run.retrain_epochs, retrain_lr=run.retrain_lr, address=run.address,
                       parallel=run.parallel, quiet=quiet)
    return code
