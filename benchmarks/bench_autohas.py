#!/usr/bin/env python
"""AutoHAS against black-box HPO/NAS on one joint space (thesis Tables 4.2-4.5, small, on digits).

The joint space: the NATS topology cell x learning rate x L2 weight (each the default times the
basis {0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}; defaults 0.025 and 5e-4), on the embedded
benchmark's dataset (digits, C=8, N=1). Every method ends with one network and its hyperparameters,
trained from scratch for ``--epochs`` epochs with the recipe h0's shape (SGD, Nesterov 0.9, batch
256, cosine) at the chosen lr and L2 weight; its test accuracy is the figure compared.

  * default HP: NATS-Bench's ResNet cell at the default lr and L2 weight (no search);
  * random, TPE, BOHB: the project's searchers (``orchestrator.searchers``) running live on Ray Tune
    through ``orchestrator.tune_adapter.TuneSearcher``, ``--trials`` trials each, every trial a real
    training of (cell, lr, L2) for up to ``--epochs`` epochs (BOHB: fidelity 1..epochs), selected by
    validation accuracy at the highest fidelity any trial reached; that incumbent is then trained
    from scratch for ``--epochs`` epochs like every other method's result;
  * AutoHAS (HP): the ResNet cell fixed, lr and L2 searched; GDAS (Arch): the cell searched, the
    hyperparameters fixed at the defaults; AutoHAS (HP+Arch): both — each a one-shot search of
    ``--search-epochs`` epochs (``trainables.oneshot.search.SearchEngine``), then the derived
    network retrained with the derived hyperparameters (the searched lr of every step, the derived
    L2 weight and optimizer: ``orchestrator.autohas.derived_recipe``, as ``orchestrate.py oneshot
    --searcher autohas`` retrains), and the AutoHAS rows once more at the schedule's mean under
    h0's cosine (", cosine": ``--retrain-lr cosine``), from the same searches;
  * Table 4.2: AutoHAS (HP+Arch) under softmax / Gumbel-soft / Gumbel-hard x argmax (Eq. 4.6) /
    expectation (Eq. 4.10).

Cost: wall seconds of the search (black-box: the summed training time of its trials, Tune's
``time_total_s``; one-shot: the search epochs), and that as a multiple of one training run (the
default network's training, measured here). Each derived cell's table test accuracy (hp=12, the
table's own recipe, lr 0.1) is printed beside the trained one.

    python benchmarks/bench_autohas.py [--seeds 3] [--epochs 12] [--search-epochs 10] [--trials 10]
                                       [--no-ablation] [--no-blackbox] [--parallel 1]

Prints `name: value unit` lines after the tables.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spaces import get_space  # noqa: E402
from spaces.joint import DEFAULT_LR, DEFAULT_WD, joint_space  # noqa: E402
from trainables.oneshot.autohas import RELAXATIONS, RESNET_CELL  # noqa: E402

C, N, DATASET = 8, 1, "digits"


def h0(epochs: int, lr: float, wd: float) -> dict:
    """The recipe h0's shape (SGD, Nesterov, cosine) at ``lr`` and L2 weight ``wd``."""
    return {"name": "h0", "epochs": epochs, "lr": lr, "weight_decay": wd}


def train(arch: int, recipe: dict, seed: int) -> dict:
    """One network trained from scratch in this process: (valid, test accuracy, seconds)."""
    from trainables.engine import TrainEngine, cached_dataset
    from trainables.recipes import get_recipe

    recipe = get_recipe(recipe)
    engine = TrainEngine("tss", arch, cached_dataset(DATASET), recipe, seed, C=C, N=N)
    started = time.perf_counter()
    for _ in range(recipe.epochs):
        m = engine.run_epoch()
    return {"valid_acc": m["valid_acc"], "test_acc": m["test_acc"], "train_s": time.perf_counter() - started}


def oneshot(seed: int, search_epochs: int, epochs: int, retrain_lr: tuple = ("schedule",), **knobs) -> dict:
    """An AutoHAS-family search, then the derived network retrained with the derived hyperparameters,
    once per ``retrain_lr`` mode (``orchestrator.autohas.RETRAIN_LRS``): {mode: figures}."""
    from trainables.data.splits import search_dataset
    from trainables.oneshot.search import SearchEngine

    engine = SearchEngine("autohas", search_dataset(DATASET, None), epochs=search_epochs, seed=seed, C=C, N=N,
                          knobs=knobs)
    started = time.perf_counter()
    for _ in range(search_epochs):
        result = engine.run_epoch()
    search_s = time.perf_counter() - started
    from orchestrator.autohas import derived_recipe

    schedule = result["lr_schedule"]
    out = {}
    for mode in retrain_lr:
        recipe = derived_recipe(schedule, result["weight_decay"], result.get("optimizer", "sgd"), epochs, mode)
        # "lr": the schedule's mean, the one figure the tables print beside the black-box methods' lr
        out[mode] = {**train(result["arch_index"], recipe, seed), "cost_s": search_s, "arch": result["arch_index"],
                     "lr": sum(schedule) / len(schedule), "wd": result["weight_decay"]}
    return out


def blackbox(name: str, seed: int, trials: int, epochs: int, parallel: int) -> dict:
    """``trials`` live trainings proposed by the project's searcher ``name`` on the joint space."""
    from ray import tune

    from orchestrator.common import ray_session, run_config, trial_dirname
    from orchestrator.searchers import make_searcher
    from orchestrator.tune_adapter import TuneSearcher
    from trainables.train import TrainArch

    space = joint_space("tss")

    class JointTrial(TrainArch):
        """TrainArch with the searcher's lr and L2 weight in the recipe."""

        def setup(self, config):
            config = dict(config)
            recipe = {"name": "h0", "epochs": epochs, "lr": config.pop("lr"),
                      "weight_decay": config.pop("weight_decay")}
            super().setup({**config, "recipe": recipe})

    searcher = make_searcher(name, space.search_space, seed, min_fidelity=1, max_fidelity=epochs)
    constants = {"space": "tss", "dataset": DATASET, "seed": seed, "C": C, "N": N, "threads": 1, "store": None,
                 "device": "cpu"}
    with tempfile.TemporaryDirectory() as tmp, ray_session(address=None, num_cpus=parallel, quiet=True):
        tuner = tune.Tuner(
            tune.with_resources(JointTrial, {"cpu": 1}), param_space=constants,
            tune_config=tune.TuneConfig(search_alg=TuneSearcher(searcher, metric="valid_acc", mode="max",
                                                                fidelity_key="training_iteration"),
                                        metric="valid_acc", mode="max", num_samples=trials,
                                        max_concurrent_trials=parallel, trial_dirname_creator=trial_dirname),
            run_config=run_config(Path(tmp) / name, max_failures=0, quiet=True))
        results = tuner.fit()
    done = [r for r in results if r.error is None and r.metrics]
    cost = sum(float(r.metrics["time_total_s"]) for r in done)
    # The searcher's incumbent: the best validation accuracy at the highest fidelity reached.
    top = max(int(r.metrics["training_iteration"]) for r in done)
    best = max((r for r in done if int(r.metrics["training_iteration"]) == top),
               key=lambda r: float(r.metrics["valid_acc"]))
    arch, hp = space.split({k: best.config[k] for k in space.search_space.names})
    # The incumbent trained from scratch for the full length, as the one-shot methods' derivations
    # are (BOHB's incumbent may have trained only a low fidelity within the trials).
    final = train(arch, h0(epochs, hp["lr"], hp["weight_decay"]), seed)
    return {"valid_acc": final["valid_acc"], "test_acc": final["test_acc"], "cost_s": cost, "arch": arch,
            "lr": hp["lr"], "wd": hp["weight_decay"], "trials": len(done), "epochs_trained": top}


def summary_line(name: str, runs: list[dict], one_run_s: float, table) -> str:
    acc = [r["test_acc"] for r in runs]
    cost = [r.get("cost_s", 0.0) for r in runs]
    std = statistics.pstdev(acc) if len(acc) > 1 else float("nan")
    tab = [table(r["arch"]) for r in runs]
    return (f"{name:<22} {statistics.mean(acc):>7.2f} +- {std:<5.2f} {statistics.mean(cost):>9.1f} "
            f"{statistics.mean(cost) / one_run_s:>8.1f}x  {statistics.mean(r['lr'] for r in runs):>8.4f} "
            f"{statistics.mean(r['wd'] for r in runs):>9.2e}  {statistics.mean(tab):>8.2f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=12, help="epochs of every training (default 12)")
    p.add_argument("--search-epochs", type=int, default=10, help="epochs of every one-shot search (default 10)")
    p.add_argument("--trials", type=int, default=10, help="trials of every black-box search (default 10)")
    p.add_argument("--parallel", type=int, default=1, help="concurrent Tune trials (default 1)")
    p.add_argument("--no-ablation", action="store_true", help="skip Table 4.2")
    p.add_argument("--no-blackbox", action="store_true", help="skip random, TPE and BOHB (the slow rows)")
    args = p.parse_args(argv)

    import torch

    from orchestrator.oneshot import resolve_benchmark

    torch.set_num_threads(1)
    lookup = resolve_benchmark(None, DATASET, C, N, space="tss").lookup
    table = lambda arch: float(lookup.final[int(arch)])  # noqa: E731
    resnet = get_space("tss").parse(RESNET_CELL)
    seeds = range(args.seeds)
    rows: dict[str, list[dict]] = {}
    started = time.perf_counter()
    rows["default HP"] = [{**train(resnet, h0(args.epochs, DEFAULT_LR, DEFAULT_WD), s), "arch": resnet,
                           "lr": DEFAULT_LR, "wd": DEFAULT_WD} for s in seeds]
    for r in rows["default HP"]:
        r["cost_s"] = 0.0
    one_run_s = statistics.median(r["train_s"] for r in rows["default HP"])
    for name in () if args.no_blackbox else ("random", "tpe", "bohb"):
        rows[name] = [blackbox(name, s, args.trials, args.epochs, args.parallel) for s in seeds]
        print(f"# {name} done after {time.perf_counter() - started:.0f} s; incumbents' fidelity "
              f"{[r['epochs_trained'] for r in rows[name]]} epochs", flush=True)
    for name, search in (("AutoHAS (HP)", "hp"), ("GDAS (Arch)", "arch"), ("AutoHAS (HP+Arch)", "joint")):
        # the AutoHAS rows also retrained at the lr mean under h0's cosine (--retrain-lr cosine)
        modes = ("schedule",) if search == "arch" else ("schedule", "cosine")
        done = [oneshot(s, args.search_epochs, args.epochs, retrain_lr=modes, search=search) for s in seeds]
        rows[name] = [d["schedule"] for d in done]
        if "cosine" in modes:
            rows[f"{name}, cosine"] = [d["cosine"] for d in done]
        print(f"# {name} done after {time.perf_counter() - started:.0f} s", flush=True)
    ablation: dict[str, list[dict]] = {}
    if not args.no_ablation:
        for relax in RELAXATIONS:
            for rule in ("argmax", "expectation"):
                ablation[f"{relax} / {rule}"] = [oneshot(s, args.search_epochs, args.epochs, relax=relax,
                                                         rule=rule)["schedule"] for s in seeds]
        print(f"# ablation done after {time.perf_counter() - started:.0f} s", flush=True)

    header = (f"{'method':<22} {'test acc %':>15} {'cost s':>9} {'x 1 run':>9}  {'lr':>8} {'L2':>9}  "
              f"{'table %':>8}")
    print(f"\nTables 4.3-4.5-like: NATS cell x lr x L2 on {DATASET} (C={C}, N={N}); {args.seeds} seeds; every final "
          f"network trained {args.epochs} epochs; one training run = {one_run_s:.1f} s; black-box: {args.trials} "
          f"trials; one-shot: {args.search_epochs} search epochs")
    print(header)
    for name, runs in rows.items():
        print(summary_line(name, runs, one_run_s, table))
    if ablation:
        print("\nTable 4.2-like: AutoHAS (HP+Arch), relaxation / derivation rule")
        print(header)
        for name, runs in ablation.items():
            print(summary_line(name, runs, one_run_s, table))
    print()
    print(f"one_training_run: {one_run_s:.2f} s")
    for name, runs in {**rows, **{f"ablation {k}": v for k, v in ablation.items()}}.items():
        key = name.lower().replace(" ", "_").replace("(", "").replace(")", "").replace("+", "_").replace("/", "")
        print(f"{key}_test_acc: {statistics.mean(r['test_acc'] for r in runs):.2f} %")
        print(f"{key}_cost: {statistics.mean(r.get('cost_s', 0.0) for r in runs):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
