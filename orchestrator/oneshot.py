"""One-shot searches on Ray Tune, scored against a tabular benchmark: ``orchestrate.py --searcher gdas``.

Each (algorithm, seed) is one Tune trial of ``trainables.oneshot.search.OneShotSearch`` (one CPU,
one torch thread; one ``step()`` per search epoch, a checkpoint per epoch, retried from it on a
crash). The supernet trains for real on the benchmark's own dataset and skeleton; only the
architecture derived after each epoch is looked up in the benchmark — its test accuracy under the
final recipe, its validation accuracy under the search recipe and its rank — so one-shot and
multi-trial searchers land in the same ``runs`` table and are compared the same way (NATS-Bench's
Figure 5.7a). A search on ``cifar10`` trains on ``cifar10-valid`` (25K train / 25K valid images),
as NATS-Bench's one-shot searches do; searches on CIFAR-100 and ImageNet16-120 need NATS-Bench's
split file next to the data (``trainables.data.splits``), so that the search never fits or ranks
on the test half the benchmark scores. The default search length is NATS-Bench's 100 epochs.

The skeleton (C, N) defaults to the one recorded in the benchmark's files; a different one is an
error, since the looked-up accuracies would then belong to other networks.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spaces.errors import UserError

ONESHOT_FOLDER = "oneshot"  # Ray's files go to <out>/oneshot/<experiment>
DEFAULT_EPOCHS = 100  # NATS-Bench: configs/nas-benchmark/algos/weight-sharing.config
# orchestrate.py flags a one-shot search does not read (a value other than the default = given).
UNUSED_FLAGS = ("budget", "workers", "hp", "final_hp", "recipe", "trials", "scheduler", "store",
                "lr_schedule_step", "max_concurrent", "resume")


@dataclass(frozen=True)
class OneShotSettings:
    experiment: str
    algorithms: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int
    dataset: str        # the benchmark's dataset the derived architectures are scored on
    train_dataset: str  # the dataset the supernet trains on
    C: int
    N: int
    data_dir: str | None = None
    max_failures: int = 2
    gpus_per_trial: float = 0.0
    knobs: dict = field(default_factory=dict)

    def trial_config(self) -> dict[str, Any]:
        from ray import tune

        return {"algorithm": tune.grid_search(list(self.algorithms)), "seed": tune.grid_search(list(self.seeds)),
                "epochs": self.epochs, "dataset": self.train_dataset, "data_dir": self.data_dir,
                "C": self.C, "N": self.N, "threads": 1, "knobs": self.knobs,
                # Ray no longer hides GPUs from trials that reserved none: choose the device here.
                "device": "cuda" if self.gpus_per_trial > 0 else "cpu"}


def store_skeleton(bench, space: str, dataset: str, hp: int) -> tuple[int, int] | None:
    """(C, N) recorded in the benchmark's files for this partition, or None when not recorded."""
    raw = bench.metadata(space, dataset, hp).get("skeleton")
    try:
        sk = json.loads(raw) if raw else {}
        return (int(sk["C"]), int(sk["N"])) if "C" in sk and "N" in sk else None
    except (ValueError, TypeError):
        return None


def make_lookup(table):
    """The derived architectures' benchmark figures, from the simulator's view of the store."""
    import numpy as np

    from trainables.oneshot.search import ArchLookup

    with np.errstate(all="ignore"):
        search_valid = np.nanmean(table.feedback[:, :, -1], axis=1)
    return ArchLookup(final=table.final.astype(np.float64), search_valid=search_valid,
                      final_hp=table.final_hp, search_hp=table.feedback_hp, dataset=table.dataset)


def settings_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """Check the flags of a one-shot search; returns (settings, lookup, benchmark). Writes nothing."""
    given = [n for n in UNUSED_FLAGS if getattr(args, n) != parser.get_default(n)]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise UserError(f"{flags}: not used by one-shot searchers ({args.searcher}); drop them")
    if args.space != "tss":
        raise UserError(f"one-shot searchers search the topology space (tss); --space {args.space} is not supported")
    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    for flag, value, low in (("--epochs", epochs, 1), ("--runs", args.runs, 1), ("--max-failures", args.max_failures, 0)):
        if value < low:
            raise UserError(f"{flag} must be at least {low}, got {value}")
    if args.parallel is not None and args.parallel < 1:
        raise UserError(f"--parallel must be at least 1, got {args.parallel}")
    if not args.gpus_per_trial >= 0:
        raise UserError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    bench, dataset, lookup, (C, N), train_dataset = resolve_benchmark(args.benchmark, args.dataset, args.C, args.N)
    from benchmark_data.schema import check_partition_value

    experiment = args.experiment or time.strftime(f"{args.searcher}-tss-{dataset}-%Y%m%d-%H%M%S")
    check_partition_value("experiment", experiment)
    settings = OneShotSettings(
        experiment=experiment, algorithms=(args.searcher,),
        seeds=tuple(range(args.seed, args.seed + args.runs)), epochs=epochs, dataset=dataset,
        train_dataset=train_dataset, C=C, N=N,
        data_dir=None if args.data_dir is None else str(Path(args.data_dir).expanduser().resolve()),
        max_failures=args.max_failures, gpus_per_trial=float(args.gpus_per_trial))
    return settings, lookup, bench


def resolve_benchmark(path: str | Path | None, dataset: str | None, C: int | None = None, N: int | None = None):
    """(benchmark, dataset, ArchLookup, (C, N), dataset to train on) for one-shot searches on a store.

    The skeleton comes from the store's files; a different --C/--N is an error (see module doc).
    """
    from benchmark_data.reader import Benchmark
    from orchestrator.experiment import choose_dataset
    from orchestrator.simulator import SimTable
    from trainables.data import DATASETS

    bench = Benchmark.open(path)
    dataset = choose_dataset(bench, "tss", dataset)
    table = SimTable.from_benchmark(bench, "tss", dataset)
    search_ds = bench.feedback_dataset("tss", dataset, table.feedback_hp)
    recorded = store_skeleton(bench, "tss", search_ds, table.feedback_hp)
    if recorded is not None:
        if (C or recorded[0], N or recorded[1]) != recorded:
            raise UserError(f"the benchmark's {dataset} networks were trained with C={recorded[0]}, "
                            f"N={recorded[1]}; --C {C} --N {N} would score the derived architectures "
                            "with other networks' accuracies (drop --C/--N to use the benchmark's)")
        C, N = recorded
    elif C is None or N is None:
        raise UserError(f"the benchmark's files do not record the skeleton of {dataset}; give --C and --N")
    train_dataset = "cifar10-valid" if dataset == "cifar10" else dataset
    if train_dataset not in DATASETS:
        raise UserError(f"the benchmark's dataset {dataset!r} is not one the supernet can train on "
                        f"({', '.join(DATASETS)})")
    return bench, dataset, make_lookup(table), (C, N), train_dataset


def run_oneshot(settings: OneShotSettings, lookup, exp_dir: Path, *, address: str | None = None,
                parallel: int | None = None, progress: bool = True):
    """Run every (algorithm, seed) as a Tune trial; returns the rows of the ``runs`` table."""
    from ray import tune
    from tqdm.auto import tqdm

    from trainables.oneshot.search import oneshot_trainable
    from trainables.ray_utils import start_ray
    from trainables.data.splits import search_dataset

    # Missing data (or NATS-Bench's split file, trainables/data/splits.py) fails here, not in trials.
    search_dataset(settings.train_dataset, settings.data_dir)
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's newer console output prints a configuration box even at verbose=0; our bar says it all.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    total = len(settings.algorithms) * len(settings.seeds) * settings.epochs
    bar = tqdm(total=total, desc="search epochs", unit="epoch", disable=not progress, dynamic_ncols=True)

    class Progress(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            bar.update()
            bar.set_postfix_str(f"{trial.config['algorithm']} seed {trial.config['seed']}: "
                                f"{result.get('test_acc', float('nan')):.2f} %")

    resources = {"cpu": 1, **({"gpu": settings.gpus_per_trial} if settings.gpus_per_trial else {})}
    trainable = tune.with_resources(tune.with_parameters(oneshot_trainable(), lookup=lookup), resources)
    with start_ray(address=address, num_cpus=parallel, worker_logs=progress):
        exp_dir.parent.mkdir(parents=True, exist_ok=True)
        tuner = tune.Tuner(
            trainable, param_space=settings.trial_config(),
            tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: f"trial_{t.trial_id}"),
            run_config=tune.RunConfig(
                name=exp_dir.name, storage_path=str(exp_dir.parent), verbose=0, callbacks=[Progress()],
                stop={"training_iteration": settings.epochs},
                failure_config=tune.FailureConfig(max_failures=settings.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_frequency=1,
                                                        checkpoint_at_end=True)))
        results = tuner.fit()
    bar.close()
    errors = [str(r.error) for r in results if r.error is not None]
    rows = runs_rows(results, settings, lookup)
    if rows.empty:
        raise UserError("no one-shot search finished an epoch" + (f": {errors[0]}" if errors else ""))
    rows.attrs["errors"] = errors
    return rows


def runs_rows(results, settings: OneShotSettings, lookup):
    """One ``runs`` row per (algorithm, seed, search epoch); see docs/SCHEMA.md."""
    import numpy as np
    import pandas as pd

    frames = []
    for r in results:
        hist = r.metrics_dataframe
        if hist is None or hist.empty:
            continue
        # A trial retried from a checkpoint reports its later epochs again: keep the last report.
        hist = hist.drop_duplicates("training_iteration", keep="last").sort_values("training_iteration")
        frames.append(pd.DataFrame({
            "experiment": settings.experiment, "searcher": r.config["algorithm"], "space": "tss",
            "dataset": settings.dataset, "budget_s": np.nan, "budget_evals": pd.NA,
            "run_seed": int(r.config["seed"]), "event": hist["epoch"].to_numpy() - 1,
            "sim_time_s": hist["search_time_s"].to_numpy(), "arch_index": hist["arch_index"].to_numpy(),
            "fidelity": pd.NA, "feedback": hist["valid_acc_search_hp"].to_numpy(),
            "best_arch_index": hist["arch_index"].to_numpy(), "best_test_acc": hist["test_acc"].to_numpy(),
            "final_recipe_hp": lookup.final_hp, "searcher_time_s": np.nan,
            "wall_time_s": hist["search_time_s"].to_numpy(), "best_rank": hist["rank"].to_numpy(),
            "search_loss": hist["search_loss"].to_numpy(), "supernet_valid_acc": hist["supernet_valid_acc"].to_numpy(),
            "arch_entropy": hist["arch_entropy"].to_numpy(),
            "epoch_time_s": hist["epoch_time_s"].to_numpy(), "peak_rss_mib": hist["peak_rss_mib"].to_numpy(),
        }))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["searcher", "run_seed", "event"], kind="stable").reset_index(drop=True)


def summarize(rows):
    """Per algorithm, at the last epoch: test accuracy mean/std, rank, op entropy, search time, epoch
    time, memory."""
    import pandas as pd

    last = rows.groupby(["searcher", "run_seed"], sort=False).tail(1)
    out = []
    for name, g in last.groupby("searcher", sort=False):
        every = rows[rows["searcher"] == name]
        out.append({"searcher": name, "runs": len(g), "test_acc_mean": g["best_test_acc"].mean(),
                    "test_acc_std": g["best_test_acc"].std(ddof=1) if len(g) > 1 else 0.0,
                    "rank_median": g["best_rank"].median(), "rank_min": g["best_rank"].min(),
                    "rank_max": g["best_rank"].max(), "entropy_mean": g["arch_entropy"].mean(),
                    "search_time_s_mean": g["wall_time_s"].mean(),
                    "epoch_time_s_median": every["epoch_time_s"].median(),
                    "peak_rss_mib_max": every["peak_rss_mib"].max()})
    return pd.DataFrame(out)


def format_summary(summary, settings: OneShotSettings, lookup) -> str:
    lines = [f"{'searcher':<9} {'runs':>4} {'final test acc':>16} {'rank (median)':>14} "
             f"{'search time':>12} {'s/epoch':>8} {'peak RSS':>9}"]
    for r in summary.itertuples():
        lines.append(f"{r.searcher:<9} {r.runs:>4} {r.test_acc_mean:>7.2f} +- {r.test_acc_std:<5.2f} "
                     f"{r.rank_median:>14.0f} {r.search_time_s_mean:>11.1f}s {r.epoch_time_s_median:>8.2f} "
                     f"{r.peak_rss_mib_max:>6.0f} MiB")
    lines.append(f"(test accuracy of the derived architecture under hp={lookup.final_hp} on {settings.dataset}; "
                 f"rank among all 15,625 cells, 1 = best)")
    return "\n".join(lines)


def run_oneshot_cli(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``orchestrate.py --searcher gdas|darts-v1|...``: validate, search, write, summarise."""
    from benchmark_data.schema import provenance
    from orchestrator.experiment import write_runs

    settings, lookup, bench = settings_from_args(args, parser)
    exp_dir = Path(args.out).expanduser().resolve() / ONESHOT_FOLDER / settings.experiment
    if exp_dir.exists():
        raise UserError(f"experiment folder {exp_dir} exists already; choose another --experiment")
    print(f"benchmark: {bench.root}")
    print(f"one-shot {args.searcher} on tss/{settings.dataset} (supernet trained on {settings.train_dataset}, "
          f"C={settings.C}, N={settings.N}): {settings.epochs} epochs x {len(settings.seeds)} seed(s); "
          f"derived architectures scored by test accuracy at hp={lookup.final_hp}")
    started = time.perf_counter()
    rows = run_oneshot(settings, lookup, exp_dir, address=args.address, parallel=args.parallel,
                       progress=not args.quiet)
    meta = provenance("runs", recipe={"search": "oneshot", "epochs": settings.epochs,
                                      "final_hp": lookup.final_hp, "search_hp": lookup.search_hp},
                      skeleton={"C": settings.C, "N": settings.N},
                      extra={"experiment": settings.experiment, "benchmark": str(bench.root),
                             "settings": json.dumps(asdict(settings), sort_keys=True)})
    paths = write_runs(args.out, rows, meta)
    print()
    print(format_summary(summarize(rows), settings, lookup))
    if len(settings.seeds) == 1:
        last = rows.iloc[-1]
        print(f"\nfound: {_arch_str(int(last['best_arch_index']))}  "
              f"(index {int(last['best_arch_index'])}, test acc {last['best_test_acc']:.2f} %, rank {last['best_rank']:.0f})")
    for err in rows.attrs.get("errors", []):
        print(f"warning: a trial failed: {err.splitlines()[0] if err else err}")
    print(f"\nwall time {time.perf_counter() - started:.1f} s; runs table: "
          f"{paths[0].parent if paths else args.out}; Ray files: {exp_dir}")
    return 1 if rows.attrs.get("errors") else 0


def _arch_str(index: int) -> str:
    from spaces import get_space

    return get_space("tss").to_str(index)
