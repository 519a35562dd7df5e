"""``orchestrate.py oneshot --searcher autohas``: AutoHAS's joint search, then the derived network retrained.

The search itself is the one-shot run (``orchestrator.oneshot.run_and_report``: one Tune trial per
seed, per-epoch lines, checkpoints, the ``runs`` rows scored on the table, the architecture half
being a NATS cell as in JAHS-Bench-201). Afterwards, from each trial's last result (Tune's
``result.json``):
  * ``autohas_schedules.png`` in the experiment folder: the searched learning rate per training step
    and the derived L2 weight after every epoch, one line per seed (the thesis' Figure 4.3);
  * unless ``retrain_epochs`` is 0, the derived architecture retrained with the derived
    hyperparameters as its own Tune trial of ``trainables.train.TrainArch`` (one per seed): the
    recipe ``h0`` with the derived optimizer, the derived L2 weight and the searched learning rate
    of every step as ``lr_steps`` (resampled onto the retraining's steps by ``Recipe.lr_at``, so a
    retraining longer than the search stretches the schedule), or with ``retrain_lr="cosine"``
    h0's cosine from the schedule's mean; ``autohas_retrain.json`` records the figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spaces.errors import UserError, short

from .common import fmt_value, format_table, ray_session, run_config, trial_dirname

AUTOHAS_SEARCHERS = ("autohas",)
KNOB_FLAGS = {"--autohas-search": "search", "--relax": "relax", "--rule": "rule", "--optimizers": "optimizers"}
PNG, RETRAIN_JSON = "autohas_schedules.png", "autohas_retrain.json"
# The retraining's lr: the searched per-step schedule (the thesis), or h0's cosine from its mean.
RETRAIN_LRS = ("schedule", "cosine")


# trainables.oneshot.autohas's names, spelled here so that --help does not import torch (a test
# checks that they agree).
SEARCHES = ("joint", "hp", "arch")
RELAXATIONS = ("softmax", "gumbel-soft", "gumbel-hard")


def add_flags(p) -> None:
    g = p.add_argument_group("AutoHAS (--searcher autohas: NATS cell x learning rate x L2 weight)")
    g.add_argument("--autohas-search", default=None, choices=SEARCHES,
                   help="what to search: joint (AutoHAS), hp (AutoHAS (HP), the ResNet cell fixed) or arch "
                        "(GDAS-style, default hyperparameters); default joint")
    g.add_argument("--relax", default=None, choices=RELAXATIONS,
                   help="relaxation of the encodings (Table 4.2); default gumbel-hard")
    g.add_argument("--rule", default=None, choices=("expectation", "argmax"),
                   help="derivation of continuous values: expectation over the basis (Eq. 4.10, default) or "
                        "the most likely basis value (Eq. 4.6)")
    g.add_argument("--optimizers", default=None, metavar="A,B[,C]",
                   help="also search the optimizer among these (two or three of sgd, adam, rmsprop; derived by "
                        "argmax, used by the retraining); default: SGD only, not searched")
    g.add_argument("--retrain-epochs", type=int, default=12, metavar="E",
                   help="epochs to retrain the derived architecture with the derived hyperparameters, one Tune "
                        "trial per seed (default 12, the table's search recipe; 0: no retraining)")
    g.add_argument("--retrain-lr", default=None, choices=RETRAIN_LRS,
                   help="the retraining's learning rate: schedule (the searched lr of every step, default) or "
                        "cosine (h0's cosine from the schedule's mean: our departure, see the README)")


def knobs(args) -> dict[str, Any]:
    """The AutoHAS knobs the flags set; UserError where they are given to another searcher."""
    given = {flag: getattr(args, knob_attr(flag)) for flag in KNOB_FLAGS if getattr(args, knob_attr(flag)) is not None}
    if args.searcher not in AUTOHAS_SEARCHERS:
        retraining = [f for f, used in (("--retrain-epochs", args.retrain_epochs != 12),
                                        ("--retrain-lr", args.retrain_lr is not None)) if used]
        if given or retraining:
            raise UserError(f"{', '.join([*given, *retraining])}: for --searcher autohas only")
        return {}
    if args.retrain_epochs < 0:
        raise UserError(f"--retrain-epochs must be at least 0, got {args.retrain_epochs}")
    if "--optimizers" in given:
        from spaces.joint import autohas_hparams

        names = [o.strip() for o in given["--optimizers"].split(",")]
        try:
            autohas_hparams(optimizers=names)  # the strategy's own check, before any trial starts
        except UserError as exc:
            raise UserError(f"--optimizers: {exc}") from None
        given["--optimizers"] = names
    return {KNOB_FLAGS[flag]: value for flag, value in given.items()}


def knob_attr(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def derived_runs(exp_dir: Path) -> list[dict[str, Any]]:
    """Per trial (seed order): seed, per-epoch L2 weight and lr, the final lr schedule, the
    derived architecture, from Tune's ``result.json`` (the last report of each epoch)."""
    out = []
    for path in sorted(Path(exp_dir).glob("*/result.json")):
        by_epoch: dict[int, dict] = {}
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                by_epoch[int(r["epoch"])] = r
        if not by_epoch:
            continue
        epochs = [by_epoch[e] for e in sorted(by_epoch)]
        last = epochs[-1]
        if "lr_schedule" not in last:
            continue  # a search that did not finish
        out.append({"seed": int(last["config"]["seed"]), "arch_index": int(last["arch_index"]),
                    "arch": last["arch"], "lr_schedule": [float(v) for v in last["lr_schedule"]],
                    "weight_decay": float(last["weight_decay"]), "optimizer": last.get("optimizer", "sgd"),
                    "epoch_lr": [float(r["lr"]) for r in epochs],
                    "epoch_weight_decay": [float(r["weight_decay"]) for r in epochs],
                    "table_test_acc": float(last.get("test_acc", float("nan")))})
    return sorted(out, key=lambda r: r["seed"])


def plot_schedules(runs: list[dict[str, Any]], path: Path) -> Path:
    """Figure 4.3-like: the searched lr per step and the L2 weight per epoch, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lr, ax_wd) = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in runs:
        ax_lr.plot(range(1, len(r["lr_schedule"]) + 1), r["lr_schedule"], label=f"seed {r['seed']}")
        ax_wd.plot(range(1, len(r["epoch_weight_decay"]) + 1), r["epoch_weight_decay"], marker="o",
                   label=f"seed {r['seed']}")
    ax_lr.set(xlabel="training step", ylabel="learning rate (Eq. 4.10)", title="searched learning rate")
    ax_wd.set(xlabel="search epoch", ylabel="L2 weight (Eq. 4.10)", title="derived L2 weight")
    for ax in (ax_lr, ax_wd):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def derived_recipe(lr_schedule: list[float], weight_decay: float, optimizer: str, epochs: int,
                   lr: str = "schedule") -> dict[str, Any]:
    """The recipe (as a Tune config carries it) that trains with the derived hyperparameters: h0
    with the derived L2 weight and optimizer and, by ``lr``, the searched lr of every step
    ("schedule": ``lr`` is then the schedule's peak, which only describes it, as
    ``Recipe.lr_steps`` replaces the cosine) or h0's cosine from the schedule's mean ("cosine")."""
    if lr not in RETRAIN_LRS:
        raise UserError(f"the retraining's lr must be one of {', '.join(RETRAIN_LRS)}, got {short(lr)!r}")
    recipe = {"name": "h0", "epochs": epochs, "weight_decay": weight_decay, "optimizer": optimizer}
    if lr == "cosine":
        return {**recipe, "lr": sum(lr_schedule) / len(lr_schedule)}
    return {**recipe, "lr": max(lr_schedule), "lr_steps": list(lr_schedule)}


def retrain_config(run: dict[str, Any], settings, epochs: int, lr: str = "schedule") -> dict[str, Any]:
    """The TrainArch config that trains ``run``'s derived architecture with its derived hyperparameters."""
    recipe = derived_recipe(run["lr_schedule"], run["weight_decay"], run["optimizer"], epochs, lr)
    return {"space": "tss", "arch": run["arch_index"], "dataset": settings.train_dataset,
            "data_dir": settings.data_dir, "seed": run["seed"], "C": settings.C, "N": settings.N, "threads": 1,
            "recipe": recipe,
            "store": None, "device": "cuda" if settings.gpus_per_trial > 0 else "cpu"}


def retrain(runs: list[dict[str, Any]], settings, exp_dir: Path, epochs: int, *, lr: str, address: str | None,
            parallel: int | None) -> list[dict[str, Any]]:
    """Each derived (architecture, hyperparameters) trained by its own TrainArch Tune trial."""
    from ray import tune

    from trainables.train import TrainArch

    resources = {"cpu": 1, **({"gpu": settings.gpus_per_trial} if settings.gpus_per_trial else {})}
    trainable = tune.with_resources(TrainArch, resources)
    figures = []
    with ray_session(address=address, num_cpus=parallel, quiet=True):
        for r in runs:
            config = retrain_config(r, settings, epochs, lr)
            tuner = tune.Tuner(trainable, param_space=config,
                               tune_config=tune.TuneConfig(trial_dirname_creator=trial_dirname),
                               run_config=run_config(exp_dir / f"retrain_seed{r['seed']}",
                                                     max_failures=settings.max_failures, quiet=True,
                                                     stop={"training_iteration": epochs}))
            result = tuner.fit()[0]
            if result.error is not None:
                raise UserError(f"retraining the derived architecture of seed {r['seed']} failed: {result.error}")
            m = result.metrics
            figures.append({"seed": r["seed"], "arch": r["arch"], "arch_index": r["arch_index"],
                            "lr_peak": max(r["lr_schedule"]), "lr_mean": sum(r["lr_schedule"]) / len(r["lr_schedule"]),
                            "optimizer": r["optimizer"], "weight_decay": r["weight_decay"], "epochs": epochs,
                            "retrain_lr": lr,
                            "valid_acc": float(m["valid_acc"]), "test_acc": float(m["test_acc"]),
                            "table_test_acc": r["table_test_acc"]})
    return figures


def report(run_settings, exp_dir: Path, *, retrain_epochs: int, retrain_lr: str = "schedule",
           address: str | None, parallel: int | None, quiet: bool) -> None:
    """The schedules' PNG and the retraining after an AutoHAS search (module docstring)."""
    runs = derived_runs(exp_dir)
    if not runs:
        print("autohas: no search finished; nothing to plot or retrain")
        return
    png = plot_schedules(runs, exp_dir / PNG)
    print(f"\nAutoHAS derived hyperparameters (Eq. 4.10); schedules plotted in {png}")
    for r in runs:
        s = r["lr_schedule"]
        print(f"  seed {r['seed']}: lr per step {min(s):.4g}..{max(s):.4g} (mean {sum(s) / len(s):.4g}), "
              f"L2 {r['weight_decay']:.3g}, {r['optimizer']}, {r['arch']}")
    if retrain_epochs == 0:
        return
    figures = retrain(runs, run_settings, exp_dir, retrain_epochs, lr=retrain_lr, address=address,
                      parallel=parallel)
    (exp_dir / RETRAIN_JSON).write_text(json.dumps(figures, indent=1))
    columns = [("seed", ">"), ("optimizer", "<"), ("lr mean", ">"), ("lr peak", ">"), ("L2", ">"),
               ("valid acc %", ">"), ("test acc %", ">"), ("table test acc %", ">")]
    rows = [[str(f["seed"]), f["optimizer"], f"{f['lr_mean']:.4g}", f"{f['lr_peak']:.4g}",
             f"{f['weight_decay']:.3g}", fmt_value(f["valid_acc"]),
             fmt_value(f["test_acc"]), fmt_value(f["table_test_acc"])] for f in figures]
    lr_text = "per-step lr" if retrain_lr == "schedule" else "lr mean under h0's cosine"
    print(f"\nderived architectures retrained with the derived optimizer, L2 weight and {lr_text} "
          f"({retrain_epochs} epochs, "
          f"TrainArch trials in {exp_dir}; the table's column: the same cell under the table's recipe):")
    print(format_table(columns, rows))
