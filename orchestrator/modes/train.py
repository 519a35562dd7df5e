"""``orchestrate.py train``: any multi-trial searcher proposes architectures that Ray Tune trains for real.

The flags and their checks; the run itself (Tune wiring, trials table, summary) is
``orchestrator.live``. A resumed experiment (``--resume``) takes its settings from the experiment's
saved ``live_settings.json``, so the searcher and the recipe are rebuilt exactly as they were.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmark_data.cli import store_to_write
from spaces.errors import UserError

from .. import common
from .simulate import SEARCHERS

HELP = "train every proposed architecture for real on Ray Tune (live search)"
DESCRIPTION = ("Live search: each Tune trial trains one architecture (1 CPU, 1 torch thread, a checkpoint per "
               "epoch) and appends every epoch to the store; the searcher is the same object the simulator runs.")
EPILOG = """\
The experiment folder OUT/live/EXPERIMENT holds Ray's files and live_settings.json; OUT/trials/ holds one row per
trial (docs/SCHEMA.md, table trials).
Examples:
  orchestrate.py train --searcher rea --C 8 --N 1 --trials 20 --scheduler asha
  orchestrate.py train --resume --experiment NAME          # continue an interrupted search"""


@dataclass(frozen=True)
class TrainRun:
    """A checked live search: its saved settings, where it runs, and whether it continues one."""

    settings: object        # orchestrator.live.LiveSettings
    experiment_dir: Path
    out: str
    resume: bool
    address: str | None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from trainables.recipes import RECIPES

    p.add_argument("--searcher", default="bohb", choices=SEARCHERS, help="multi-trial search algorithm (default bohb)")
    p.add_argument("--space", default="tss", choices=("tss", "sss"), help="search space (default tss)")
    p.add_argument("--dataset", default="digits", help="dataset to train on (default digits)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="where the dataset's files are (digits needs none)")
    p.add_argument("--recipe", default="h0", choices=sorted(RECIPES),
                   help="training recipe: h0 = 12 epochs (search), h1 = 200, h2 = 90 (default h0)")
    p.add_argument("--epochs", type=int, default=None, metavar="E",
                   help="override the recipe's length (cosine schedule over these epochs; stored as hp=E)")
    p.add_argument("--trials", type=int, default=10, metavar="K", help="architectures to train (default 10)")
    common.add_scheduler_flag(p)
    common.add_store_flag(p, reads=False, default="results/store",
                   help="Parquet store the trained epochs are appended to (default results/store)")
    p.add_argument("--C", type=int, default=None,
                   help="channels of the first stage (default 16 as NATS-Bench; digits wants 8; not for --space "
                        "sss, whose channels are the architecture)")
    p.add_argument("--N", type=int, default=None,
                   help="cells per stage (default 5 as NATS-Bench's topology space; the size space has one cell "
                        "per stage, its default, and refuses any other; digits wants 1)")
    p.add_argument("--lr-schedule-step", default=None, choices=("epoch", "iteration"),
                   help="cosine lr stepped per epoch (the recipes' default, as NATS-Bench) or per iteration (how "
                        "the embedded digits benchmark was built)")
    p.add_argument("--workers", type=int, default=None, metavar="W",
                   help="at most W trials at once (default: as many as the CPUs allow)")
    p.add_argument("--max-concurrent", dest="workers", type=int, help=argparse.SUPPRESS)  # the old name
    p.add_argument("--max-failures", type=int, default=2, metavar="K",
                   help="retries of a crashed trial, each from its last checkpoint (default 2)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="G",
                   help="GPUs per trial, fractions allowed; 0 trains on the CPU (default 0)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted experiment named by --experiment (under --out) with its saved "
                        "settings; the other flags of the search are not read")
    common.add_seed_flag(p, "seed of the searcher and of the training (default 0)")
    common.add_output_flags(p, experiment_help="experiment name (default: from the arguments, the time and a random "
                                        "suffix); an existing one is refused unless --resume")
    common.add_ray_flags(p, parallel_help=None)


def settings_from_args(args: argparse.Namespace) -> TrainRun:
    """Every check of a new or resumed live search; writes nothing and starts nothing."""
    from orchestrator.live import LIVE_FOLDER, SETTINGS_FILE, LiveSettings, check_store, experiment_dir

    out = common.folder_flag("--out", args.out)
    common.check_writable("--out", out)
    if args.experiment is not None:
        common.experiment_name(args.experiment, "")  # a folder name: no '/', '..', spaces
    if args.resume:
        if not args.experiment:
            raise UserError(f"--resume needs --experiment NAME: the experiment to continue (a folder under "
                            f"{common.absolute(out) / LIVE_FOLDER})")
        exp_dir = experiment_dir(out, args.experiment)
        from ray import tune

        if never_started(exp_dir):
            raise UserError(f"the live experiment at {exp_dir} was stopped before Tune began it, so there is "
                            "nothing to resume: run the same command without --resume to start it afresh")
        if not (exp_dir / SETTINGS_FILE).is_file() or not tune.Tuner.can_restore(exp_dir):
            raise UserError(f"nothing to resume at {exp_dir}: no live experiment was started there; check --out "
                            "and --experiment, or drop --resume")
        settings = LiveSettings.from_file(exp_dir / SETTINGS_FILE)
        check_store(settings)  # rows written into the store meanwhile by another run
        return TrainRun(settings, exp_dir, out, True, args.address)
    settings = _new_settings(args)
    exp_dir = experiment_dir(out, settings.experiment)
    if never_started(exp_dir):  # a start killed before Tune wrote anything: nothing in it to keep
        shutil.rmtree(exp_dir)
    if exp_dir.exists():
        raise UserError(f"experiment folder {exp_dir} exists already; continue it with --resume or choose "
                        "another --experiment")
    common.check_new_experiment(out, settings.experiment, LIVE_FOLDER)
    if settings.store is not None:  # every trial would fail on its first write, each retried
        common.check_writable("--store", settings.store)
    check_store(settings)
    return TrainRun(settings, exp_dir, out, False, args.address)


def _new_settings(args: argparse.Namespace):
    from orchestrator.live import LiveSettings
    from trainables.data import DATASETS
    from trainables.recipes import get_recipe

    if args.dataset not in DATASETS:
        raise UserError(f"unknown dataset {args.dataset!r}; choose one of {', '.join(DATASETS)}")
    common.at_least("--trials", args.trials, 1)
    C = 16 if args.C is None else args.C  # NATS-Bench's skeleton unless told otherwise
    # sss has one cell per stage and nothing else (spaces/nats_size.py); tss: NATS-Bench's 5.
    N = (1 if args.space == "sss" else 5) if args.N is None else args.N
    common.at_least("--C", C, 1)
    common.at_least("--N", N, 1)
    if args.space == "sss":
        from spaces.nats_size import check_cells_per_stage

        check_cells_per_stage(N, "--N")
        if args.C is not None:  # it would be ignored: never silently
            raise UserError(f"--C {args.C}: the size space's channels are the architecture (five channel counts), "
                            "it has no C; drop --C for --space sss")
    common.at_least("--max-failures", args.max_failures, 0)
    common.at_least("--workers", args.workers, 1)
    common.at_least("--epochs", args.epochs, 1)
    if not args.gpus_per_trial >= 0:
        raise UserError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    common.check_scheduler(args.searcher, args.scheduler)
    store = str(store_to_write(args.store))  # a folder; the shipped benchmark only on purpose
    step = args.lr_schedule_step  # None: the recipe's default (per epoch)
    recipe = get_recipe(args.recipe, **({} if args.epochs is None else {"epochs": args.epochs}),
                        **({} if step is None else {"lr_schedule_step": step}))
    experiment = common.experiment_name(args.experiment, f"live-{args.searcher}-{args.space}-{args.dataset}")
    return LiveSettings(
        experiment=experiment, searcher=args.searcher, space=args.space, dataset=args.dataset,
        data_dir=None if args.data_dir is None else str(common.absolute(args.data_dir)),
        recipe=recipe.name, epochs=recipe.epochs, trials=args.trials, scheduler=args.scheduler,
        store=store, C=C, N=N, seed=args.seed, max_concurrent=args.workers, max_failures=args.max_failures,
        gpus_per_trial=float(args.gpus_per_trial), lr_schedule_step=recipe.lr_schedule_step)


def never_started(exp_dir: Path) -> bool:
    """Whether ``exp_dir`` holds only the settings a start writes before Tune's first file (the
    start was killed in between): nothing ran, and it can be started afresh."""
    from orchestrator.live import SETTINGS_FILE

    return exp_dir.is_dir() and {p.name for p in exp_dir.iterdir()} == {SETTINGS_FILE}


def run(run: TrainRun, quiet: bool = False) -> int:
    from orchestrator.live import format_summary, run_live

    s = run.settings
    print(f"{'resuming' if run.resume else 'starting'} live search {s.experiment} in {run.experiment_dir}: "
          f"{s.searcher} on {s.space}/{s.dataset}, {s.trials} trial(s), scheduler {s.scheduler}")
    try:
        outcome = run_live(s, run.experiment_dir, out=run.out, resume=run.resume, address=run.address, quiet=quiet)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before Tune's loop: Tune has saved what ran
        print(f"\ninterrupted; continue with: orchestrate.py train --resume --experiment {s.experiment} "
              f"--out {run.out}", file=sys.stderr)
        return common.INTERRUPTED_STATUS
    print(format_summary(outcome))
    if outcome.interrupted:
        return common.INTERRUPTED_STATUS
    if len(outcome.trials) and (outcome.trials["status"] == "error").all():
        print(f"error: every trial of {s.experiment} failed; see the trials table and Ray's logs in "
              f"{run.experiment_dir}", file=sys.stderr)
        return 1
    return 0
