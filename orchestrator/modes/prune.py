"""``orchestrate.py prune``: network pruning by TAS (thesis Algorithm 2) and its baselines on a CIFAR ResNet.

The flags and their checks; the pipeline itself is ``orchestrator.prune``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from spaces.errors import UserError

from .. import common

HELP = "prune a CIFAR ResNet by TAS (or a baseline) under a FLOPs target, then retrain it (w/ Init, w/ KD)"
DESCRIPTION = ("Network pruning (thesis Algorithm 2): step 1 trains the unpruned ResNet; step 2 searches the width "
               "of every conv and the depth of every stage under a FLOPs target (TAS), or takes the pre-defined "
               "(one ratio everywhere) or a random network meeting it; step 3 trains the found network from "
               "scratch, from the unpruned weights (init) or with knowledge distillation (kd). Every step is a Ray "
               "Tune experiment, one trial per seed (1 CPU each, a checkpoint per epoch).")
# The offline default (measured, README "Pruning"): Fashion-MNIST from the Debian package, a subset
# at 16x16, so the whole pipeline runs on a few CPU cores in minutes.
OFFLINE_DATASET = "fashion-mnist"
OFFLINE_SUBSET = {"train": 2000, "valid": 500, "test": 1000, "size": 16}
EPILOG = f"""\
Without --subset, fashion-mnist runs on the offline subset {OFFLINE_SUBSET['train']}/{OFFLINE_SUBSET['valid']}/\
{OFFLINE_SUBSET['test']} images (train/valid/test) at {OFFLINE_SUBSET['size']}x{OFFLINE_SUBSET['size']}, every other \
dataset whole. Methods and transfers take comma lists; step 1 is shared by all of them.
Examples:
  orchestrate.py prune --model resnet20 --flops-target 0.5 --method tas --transfer kd
  orchestrate.py prune --model resnet56 --dataset cifar10 --search-epochs 600 --train-epochs 300 --gpus-per-trial 1
  orchestrate.py prune --resume --experiment NAME          # continue an interrupted pipeline"""

METHODS = ("tas", "predefined", "random")


@dataclass(frozen=True)
class PruneRun:
    settings: object      # orchestrator.prune.PruneSettings
    folder: Path
    resume: bool
    address: str | None
    parallel: int | None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="resnet20", help="resnet20, resnet32, resnet56 or resnet110 (default resnet20)")
    p.add_argument("--flops-target", type=float, default=0.5, metavar="R",
                   help="FLOPs of the pruned network as a share of the unpruned one, in (0, 1] (default 0.5); TAS' "
                        "cost loss, lambda 2, tolerance 5 %%")
    p.add_argument("--method", default="tas", metavar="M[,M]",
                   help=f"how the pruned network is found: {', '.join(METHODS)}, or a comma list (default tas)")
    p.add_argument("--transfer", default="kd", metavar="T[,T]",
                   help="how it is trained: none (from scratch), init (the unpruned weights' leading channels and "
                        "blocks), kd (knowledge distillation, lambda 0.9, T 4), or a comma list (default kd)")
    p.add_argument("--search-mode", default="tas", choices=("tas", "width", "depth"),
                   help="TAS searches width and depth (tas, default), width only (TAS (W)) or depth only (TAS (D))")
    p.add_argument("--width-ratios", default=None, metavar="R,R,...",
                   help="width candidates as shares of each conv's channels (default 0.3,0.4,...,1.0)")
    p.add_argument("--dataset", default=OFFLINE_DATASET, help=f"dataset (default {OFFLINE_DATASET}, offline)")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="where the dataset's files are")
    p.add_argument("--subset", default=None, metavar="TRAIN,VALID,TEST",
                   help="images kept per split, or 'full' (default: the offline subset for fashion-mnist, else full)")
    p.add_argument("--resolution", type=int, default=None, metavar="PX",
                   help="resize the images to PX x PX (default: 16 with the offline subset, else as stored)")
    p.add_argument("--train-epochs", type=int, default=10, metavar="E",
                   help="epochs of steps 1 and 3 (default 10; the thesis: 300 on CIFAR)")
    p.add_argument("--search-epochs", type=int, default=10, metavar="E",
                   help="epochs of the TAS search (default 10; the thesis: 600 on CIFAR)")
    p.add_argument("--runs", type=int, default=1, help="seeds, run as parallel Tune trials (default 1)")
    common.add_seed_flag(p, "seed of the first run; run i uses seed+i (default 0)")
    common.add_trial_flags(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted pipeline named by --experiment (under --out) with its saved "
                        "settings; the other flags are not read")
    common.add_output_flags(p, experiment_help="experiment name (default: from the arguments, the time and a random "
                                               "suffix); an existing one is refused unless --resume")
    common.add_ray_flags(p, parallel_help="start a local Ray with K CPUs (default: all of them)")


def _list(flag: str, text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    bad = [t for t in items if t not in allowed]
    if not items or bad:
        raise UserError(f"{flag} {text!r}: choose from {', '.join(allowed)} (a comma list)")
    return items


def _ratios(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    from trainables.prune.supernet import check_ratios

    try:
        ratios = [float(t) for t in text.split(",")]
    except ValueError:
        raise UserError(f"--width-ratios {text!r}: give shares separated by commas, e.g. 0.5,0.75,1") from None
    return check_ratios(ratios, "--width-ratios")


def _subset(args: argparse.Namespace) -> dict | None:
    if args.subset is None:
        subset = dict(OFFLINE_SUBSET) if args.dataset == OFFLINE_DATASET else {}
    elif args.subset == "full":
        subset = {}
    else:
        try:
            n = [int(t) for t in args.subset.split(",")]
        except ValueError:
            n = []
        if len(n) != 3 or min(n) < 1:
            raise UserError(f"--subset {args.subset!r}: three positive image counts TRAIN,VALID,TEST, or 'full'")
        subset = dict(zip(("train", "valid", "test"), n))
    if args.resolution is not None:
        common.at_least("--resolution", args.resolution, 8)
        subset["size"] = args.resolution
    return subset or None


def settings_from_args(args: argparse.Namespace) -> PruneRun:
    from orchestrator.prune import SETTINGS_FILE, PruneSettings, experiment_dir

    out = common.folder_flag("--out", args.out)
    common.check_writable("--out", out)
    if args.experiment is not None:
        common.experiment_name(args.experiment, "")
    if args.resume:
        if not args.experiment:
            raise UserError("--resume needs --experiment NAME: the pipeline to continue")
        folder = experiment_dir(out, args.experiment)
        if not (folder / SETTINGS_FILE).is_file():
            raise UserError(f"nothing to resume at {folder}: no pruning pipeline was started there; check --out and "
                            "--experiment, or drop --resume")
        return PruneRun(PruneSettings.from_file(folder / SETTINGS_FILE), folder, True, args.address, args.parallel)
    from spaces.cifar_resnet import check_model
    from trainables.data import DATASETS

    check_model(args.model)
    if args.dataset not in DATASETS:
        raise UserError(f"unknown dataset {args.dataset!r}; choose one of {', '.join(DATASETS)}")
    if not 0 < args.flops_target <= 1:
        raise UserError(f"--flops-target {args.flops_target:g} is {'above' if args.flops_target > 1 else 'not in'} "
                        "the unpruned network's FLOPs: give a share in (0, 1], e.g. 0.5 for half of them")
    methods = _list("--method", args.method, METHODS)
    transfers = _list("--transfer", args.transfer, ("none", "init", "kd"))
    ratios = _ratios(args.width_ratios)
    for flag in ("--train-epochs", "--search-epochs", "--runs"):
        common.at_least(flag, getattr(args, flag[2:].replace("-", "_")), 1)
    common.at_least("--max-failures", args.max_failures, 0)
    common.at_least("--parallel", args.parallel, 1)
    if not args.gpus_per_trial >= 0:
        raise UserError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    experiment = common.experiment_name(args.experiment, f"prune-{args.model}-{args.dataset}")
    folder = experiment_dir(out, experiment)
    if folder.exists():
        raise UserError(f"experiment folder {folder} exists already; continue it with --resume or choose another "
                        "--experiment")
    settings = PruneSettings(
        experiment=experiment, model=args.model, dataset=args.dataset,
        data_dir=None if args.data_dir is None else str(common.absolute(args.data_dir)), subset=_subset(args),
        flops_target=float(args.flops_target), methods=methods, transfers=transfers, search_mode=args.search_mode,
        seeds=tuple(range(args.seed, args.seed + args.runs)), train_epochs=args.train_epochs,
        search_epochs=args.search_epochs, max_failures=args.max_failures, gpus_per_trial=float(args.gpus_per_trial),
        ratios=ratios)
    _check_target(settings)
    return PruneRun(settings, folder, False, args.address, args.parallel)


def _check_target(settings) -> None:
    """UserError for a target the pruned networks cannot reach (the data's shape sets the FLOPs)."""
    from trainables.prune.engine import step_dataset
    from trainables.prune.search import PruneSpace

    data = step_dataset(settings.base())
    PruneSpace(settings.model, num_classes=data.num_classes, in_channels=data.in_channels,
               input_size=data.image_size, **settings.space_knobs()).target(settings.target_text())


def run(run: PruneRun, quiet: bool = False) -> int:
    from orchestrator.prune import RESULTS_FILE, SETTINGS_FILE, Interrupted, format_summary, run_pipeline

    s = run.settings
    run.folder.mkdir(parents=True, exist_ok=True)
    if not run.resume:
        s.to_file(run.folder / SETTINGS_FILE)
    print(f"{'resuming' if run.resume else 'starting'} pruning {s.experiment} in {run.folder}: {s.model} on "
          f"{s.dataset} to {100 * s.flops_target:g} % of its FLOPs; methods {', '.join(s.methods)}; transfers "
          f"{', '.join(s.transfers)}; {len(s.seeds)} seed(s)")
    try:
        df = run_pipeline(s, run.folder, address=run.address, parallel=run.parallel, quiet=quiet)
    except (Interrupted, KeyboardInterrupt) as stopped:
        step = f" during step {stopped}" if isinstance(stopped, Interrupted) else ""
        print(f"\ninterrupted{step}: every finished epoch is checkpointed in {run.folder}; continue with\n"
              f"  orchestrate.py prune --resume --experiment {s.experiment} --out {run.folder.parents[1]}",
              file=sys.stderr)
        return common.INTERRUPTED_STATUS
    print(format_summary(df))
    print(f"rows: {run.folder / RESULTS_FILE}")
    return 0
