"""One-shot searches on Ray Tune, scored against a tabular benchmark: ``orchestrate.py oneshot --searcher gdas``.

Both spaces: the topology algorithms (DARTS, GDAS, SETN, ENAS, RSPS) on ``tss`` and the size
algorithms (TAS, FBNet-V2, TuNAS: ``--searcher tas --space sss``) on ``sss``, through the same
trainable, scoring and ``runs`` rows.

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
error, since the looked-up accuracies would then belong to other networks (the size space has no C
and one cell per stage). Where the table's value of a derived architecture is a surrogate model's
prediction the output says so (the ``surrogate`` / ``best_surrogate`` columns, the per-epoch lines,
the summary); ``train_missing`` trains every derived architecture the table lacks with the table's
recipe after the search, appends it to the store and scores the rows again from the grown table.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spaces.errors import UserError

from .common import (
    finish_bar,
    fmt_duration,
    fmt_spread,
    fmt_value,
    format_table,
    progress_bar,
    ray_session,
    run_config,
    trial_dirname,
    tune_progress,
)

ONESHOT_FOLDER = "oneshot"  # Ray's files go to <out>/oneshot/<experiment>
DEFAULT_EPOCHS = 100  # NATS-Bench: configs/nas-benchmark/algos/weight-sharing.config


@dataclass(frozen=True)
class OneShotSettings:
    experiment: str
    algorithms: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int
    dataset: str        # the benchmark's dataset the derived architectures are scored on
    train_dataset: str  # the dataset the supernet trains on
    C: int | None       # None for the size space (its channels are the architecture)
    N: int
    data_dir: str | None = None
    max_failures: int = 2
    gpus_per_trial: float = 0.0
    knobs: dict = field(default_factory=dict)
    space: str = "tss"
    train_missing: bool = False  # train the derived architectures the table lacks (module docstring)

    def trial_config(self) -> dict[str, Any]:
        from ray import tune

        return {"algorithm": tune.grid_search(list(self.algorithms)), "seed": tune.grid_search(list(self.seeds)),
                "epochs": self.epochs, "dataset": self.train_dataset, "data_dir": self.data_dir,
                "C": self.C, "N": self.N, "threads": 1, "knobs": self.knobs,
                # Ray no longer hides GPUs from trials that reserved none: choose the device here.
                "device": "cuda" if self.gpus_per_trial > 0 else "cpu"}


def store_skeleton(bench, space: str, dataset: str, hp: int) -> tuple[int | None, int] | None:
    """(C, N) recorded in the benchmark's files for this partition (C None on the size space, whose
    files record N only), or None when not recorded."""
    raw = bench.metadata(space, dataset, hp).get("skeleton")
    try:
        sk = json.loads(raw) if raw else {}
        if space == "sss":
            return (None, int(sk["N"])) if "N" in sk else None
        return (int(sk["C"]), int(sk["N"])) if "C" in sk and "N" in sk else None
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True)
class Scoring:
    """How a store scores one-shot searches: its dataset, the skeleton its networks were trained
    with, the dataset the supernet trains on, and the lookup of derived architectures."""

    bench: Any
    dataset: str
    train_dataset: str
    C: int | None
    N: int
    lookup: Any  # trainables.oneshot.lookup.ArchLookup
    notes: tuple[str, ...] = ()  # the task view's notes (surrogate values, gaps), printed with the results
    space: str = "tss"
    feedback_dataset: str | None = None  # where the feedback comes from (None: dataset)
    surrogate: bool = True               # whether the store's surrogate predictions are read
    allow_gaps: bool = False

    def tables(self) -> list[tuple[str, int]]:
        """The (dataset, hp) tables that score a search: the final value's and the feedback's."""
        return [(self.dataset, self.lookup.final_hp), (self.feedback_dataset or self.dataset, self.lookup.search_hp)]


@dataclass
class OneShotResults:
    rows: Any                 # pandas.DataFrame of ``runs`` rows (with one-shot diagnostics)
    errors: list[str]         # the first line of every failed trial's error
    interrupted: bool = False  # stopped (Ctrl-C) before every trial ran its epochs: continue with --resume


def resolve_benchmark(path: str | Path | None, dataset: str | None, C: int | None = None,
                      N: int | None = None, *, space: str = "tss", surrogate: bool = True,
                      allow_gaps: bool = False) -> Scoring:
    """How the store at ``path`` (None: embedded) scores one-shot searches of ``space`` on ``dataset``.

    The skeleton comes from the store's files; a different --C/--N is an error (see module doc).
    ``surrogate`` / ``allow_gaps``: the task view's (--no-surrogate / --allow-gaps).
    """
    from benchmark_data.reader import Benchmark
    from benchmark_data.task import feedback_dataset
    from trainables.data import DATASETS

    if space == "sss":
        from spaces.nats_size import check_cells_per_stage

        if C is not None:  # it would be ignored: never silently
            raise UserError(f"--C {C}: the size space's channels are the architecture (five channel counts), it "
                            "has no C; drop --C for --space sss")
        check_cells_per_stage(1 if N is None else N, "--N")
    bench = Benchmark.open(path, surrogate=surrogate)
    table = bench.task(space, dataset, allow_gaps=allow_gaps)
    search_ds = table.feedback_dataset
    recorded = store_skeleton(bench, space, search_ds, table.feedback_hp)
    if space == "sss":
        C, N = None, 1
    elif recorded is not None:
        if (C or recorded[0], N or recorded[1]) != recorded:
            raise UserError(f"the store's {table.dataset} networks were trained with C={recorded[0]}, "
                            f"N={recorded[1]}; --C {C} --N {N} would score the derived architectures "
                            "with other networks' accuracies (drop --C/--N to use the store's)")
        C, N = recorded
    elif C is None or N is None:
        raise UserError(f"the store's files do not record the skeleton of {table.dataset}; give --C and --N")
    # The supernet trains on a split with a validation half apart from the test set the
    # benchmark scores: cifar10 -> cifar10-valid whether or not the store holds that twin.
    train_ds = feedback_dataset(table.dataset)
    if train_ds not in DATASETS:
        raise UserError(f"the store's dataset {train_ds!r} is not one the supernet can train on "
                        f"({', '.join(DATASETS)})")
    from trainables.oneshot.lookup import ArchLookup  # no torch

    return Scoring(bench, table.dataset, train_ds, C, N, ArchLookup.from_task(table), tuple(table.notes),
                   space=space, feedback_dataset=search_ds, surrogate=surrogate, allow_gaps=allow_gaps)


def rescored(scoring: Scoring) -> Scoring:
    """``scoring`` read again from its store (after ``--train-missing`` appended rows to it)."""
    return resolve_benchmark(scoring.bench.root, scoring.dataset, scoring.C, scoring.N, space=scoring.space,
                             surrogate=scoring.surrogate, allow_gaps=scoring.allow_gaps)


def run_oneshot(settings: OneShotSettings, lookup, exp_dir: Path, *, address: str | None = None,
                parallel: int | None = None, quiet: bool = False, resume: bool = False) -> OneShotResults:
    """Run every (algorithm, seed) as a Tune trial; returns the rows of the ``runs`` table.
    ``resume``: continue the experiment in ``exp_dir`` (``Tuner.restore``: every unfinished or
    failed trial from its last checkpoint, the finished ones kept).

    Unless ``quiet``, one line per trial and search epoch: the derived architecture and its figures
    (``epoch_line``)."""
    from ray import tune

    from trainables.data.splits import search_dataset
    from trainables.oneshot.search import oneshot_trainable

    # Missing data (or NATS-Bench's split file, trainables/data/splits.py) fails here, not in trials.
    search_dataset(settings.train_dataset, settings.data_dir)
    total = len(settings.algorithms) * len(settings.seeds) * settings.epochs
    bar = progress_bar(total, desc="search epochs", unit="epoch", quiet=quiet)

    def report(trial, result) -> None:
        if not quiet:
            bar.write(epoch_line(trial.config["algorithm"], trial.config["seed"], result, settings.epochs))

    progress = tune_progress(bar, report)

    resources = {"cpu": 1, **({"gpu": settings.gpus_per_trial} if settings.gpus_per_trial else {})}
    trainable = tune.with_resources(tune.with_parameters(oneshot_trainable(), lookup=lookup), resources)
    with ray_session(address=address, num_cpus=parallel, quiet=True):  # the bar says it all
        exp_dir.parent.mkdir(parents=True, exist_ok=True)
        if resume:  # the trials' epochs and the run config (callbacks included) as they were saved
            tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True,
                                       resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable, param_space=settings.trial_config(),
                tune_config=tune.TuneConfig(trial_dirname_creator=trial_dirname),
                run_config=run_config(exp_dir, max_failures=settings.max_failures, quiet=True,
                                      callbacks=[progress], stop={"training_iteration": settings.epochs}))
        results = tuner.fit()  # Ctrl-C: Tune saves the experiment's state and returns here
    finish_bar(bar)
    errors = [str(r.error) for r in results if r.error is not None]
    ended = [r for r in results
             if r.error is None and (r.metrics or {}).get("training_iteration", 0) >= settings.epochs]
    interrupted = len(ended) + len(errors) < len(settings.algorithms) * len(settings.seeds)
    rows = runs_rows(results, settings, lookup)
    if rows.empty and not interrupted:
        raise UserError("no one-shot search finished an epoch" + (f": {errors[0]}" if errors else ""))
    return OneShotResults(rows, errors, interrupted)


def epoch_line(algorithm: str, seed: int, result: dict, epochs: int) -> str:
    """One search epoch as the per-epoch report prints it (size searches add costs and confidence)."""
    acc = result.get("test_acc", float("nan"))
    line = (f"{algorithm} seed {seed} epoch {result['epoch']}/{epochs}: {result['arch']}  test acc "
            f"{fmt_value(acc, unit=' %')}{' (surrogate)' if result.get('test_acc_surrogate') else ''}")
    if "flops_m" in result:
        line += f"  {result['flops_m']:.2f} MFLOPs  {result['params_m']:.3f} M params"
    if "weight_decay" in result:  # AutoHAS: the derived hyperparameters (Eq. 4.10)
        line += f"  lr {result['lr']:.4g}  L2 {result['weight_decay']:.3g}  {result.get('optimizer', 'sgd')}"
    confidence = result.get("arch_confidence", float("nan"))
    return line + ("" if confidence != confidence else f"  confidence {confidence:.3f}")


# One-shot diagnostics beside the runs columns (write_runs keeps the schema's columns only; these
# stay in the rows the summary reads and in each trial's Ray results).
DIAGNOSTICS = ("search_loss", "supernet_valid_acc", "arch_entropy", "arch_confidence", "flops_m", "params_m",
               "epoch_time_s", "peak_rss_mib")


def runs_rows(results, settings: OneShotSettings, lookup):
    """One ``runs`` row per (algorithm, seed, search epoch); see docs/SCHEMA.md."""
    import numpy as np
    import pandas as pd

    from spaces import get_space

    space = get_space(settings.space)
    frames = []
    for r in results:
        hist = r.metrics_dataframe
        if hist is None or hist.empty:
            continue
        # A trial retried from a checkpoint reports its later epochs again: keep the last report.
        hist = hist.drop_duplicates("training_iteration", keep="last").sort_values("training_iteration")
        arch = hist["arch_index"].to_numpy()
        frames.append(pd.DataFrame({
            "experiment": settings.experiment, "searcher": r.config["algorithm"], "space": settings.space,
            "dataset": settings.dataset, "budget_s": np.nan, "budget_evals": pd.NA,
            "run_seed": int(r.config["seed"]), "event": hist["epoch"].to_numpy() - 1,
            # No simulated clock here: the search's own wall-clock time is the run's time.
            "clock": "wall", "sim_time_s": np.nan, "arch_index": arch,
            "arch": [space.to_str(int(a)) for a in arch], "best_arch": [space.to_str(int(a)) for a in arch],
            "fidelity": pd.NA, "best_arch_index": arch, "final_recipe_hp": lookup.final_hp, "searcher_time_s": np.nan,
            "wall_time_s": hist["search_time_s"].to_numpy(),
            **{c: hist[c].to_numpy() if c in hist else np.nan for c in DIAGNOSTICS},
        }))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["searcher", "run_seed", "event"], kind="stable").reset_index(drop=True)
    return score_rows(out, lookup)


def score_rows(rows, lookup):
    """``rows`` with the benchmark's figures of each derived architecture from ``lookup``: feedback
    (the search recipe's validation accuracy), best_test_acc, best_rank, and whether the feedback /
    the test accuracy is a surrogate prediction (``surrogate`` / ``best_surrogate``)."""
    import numpy as np

    arch = rows["best_arch_index"].to_numpy(dtype=np.int64)
    none = np.zeros(len(lookup.final), bool)
    rows = rows.copy()
    rows["feedback"] = lookup.search_valid[arch]
    rows["best_test_acc"] = lookup.final[arch]
    rows["best_rank"] = np.asarray(lookup.rank)[arch]
    rows["surrogate"] = (none if lookup.surrogate_feedback is None else lookup.surrogate_feedback)[arch]
    rows["best_surrogate"] = (none if lookup.surrogate_final is None else lookup.surrogate_final)[arch]
    return rows


def summarize(rows):
    """Per algorithm, at the last epoch: test accuracy mean/std, rank, op entropy, the derived
    networks' costs and confidence (size searches), how many final values are surrogate
    predictions, search time, epoch time, memory."""
    import pandas as pd

    from .protocol import NATS_STD_DDOF

    last = rows.groupby(["searcher", "run_seed"], sort=False).tail(1)
    out = []
    for name, g in last.groupby("searcher", sort=False):
        every = rows[rows["searcher"] == name]
        out.append({"searcher": name, "runs": len(g), "test_acc_mean": g["best_test_acc"].mean(),
                    "test_acc_std": g["best_test_acc"].std(ddof=NATS_STD_DDOF) if len(g) > 1 else float("nan"),
                    "rank_median": g["best_rank"].median(), "rank_min": g["best_rank"].min(),
                    "rank_max": g["best_rank"].max(), "entropy_mean": g["arch_entropy"].mean(),
                    "confidence_mean": g["arch_confidence"].mean(), "flops_m_mean": g["flops_m"].mean(),
                    "params_m_mean": g["params_m"].mean(), "surrogate_finals": int(g["best_surrogate"].sum()),
                    "search_time_s_mean": g["wall_time_s"].mean(),
                    "epoch_time_s_median": every["epoch_time_s"].median(),
                    "peak_rss_mib_max": every["peak_rss_mib"].max()})
    return pd.DataFrame(out)


def format_summary(summary, settings: OneShotSettings, lookup) -> str:
    from spaces import get_space

    runs = int(summary["runs"].max()) if len(summary) else 0
    size = settings.space == "sss"
    columns = [("searcher", "<"), ("runs", ">"), ("final test acc %", ">"), ("std", "<"), ("rank (median)", ">"),
               *([("MFLOPs", ">"), ("M params", ">"), ("confidence", ">")] if size else []),
               ("search time", ">"), ("s/epoch", ">"), ("peak RSS", ">")]
    rows = [[r.searcher, str(r.runs), fmt_value(r.test_acc_mean),
             fmt_spread(r.test_acc_std, r.runs).removeprefix("+- "), fmt_value(r.rank_median, 0),
             *([fmt_value(r.flops_m_mean), fmt_value(r.params_m_mean, 3), fmt_value(r.confidence_mean, 3)]
               if size else []),
             fmt_duration(r.search_time_s_mean), fmt_value(r.epoch_time_s_median),
             f"{r.peak_rss_mib_max:.0f} MiB"] for r in summary.itertuples()]
    spread = f"std over {runs} runs (ddof=0)" if runs > 1 else "one run: no spread"
    what = "configurations" if size else "cells"
    text = (format_table(columns, rows)
            + f"\n(test accuracy of the derived architecture under hp={lookup.final_hp} on {settings.dataset}; "
              f"{spread}; rank among all {get_space(settings.space).size:,} {what}, 1 = best"
              + ("; costs and confidence of the derived networks, averaged over the runs" if size else "") + ")")
    predicted = int(summary["surrogate_finals"].sum()) if len(summary) else 0
    if predicted:
        total = int(summary["runs"].sum())
        text += (f"\nsurrogate: {predicted} of the {total} final test accuracies are predictions of "
                 f"{lookup.surrogate_model or 'a surrogate model'}, not trained values (--train-missing trains them)")
    return text


def retrain_missing(rows, settings: OneShotSettings, scoring: Scoring, *, quiet: bool = False):
    """``--train-missing``: train the derived architectures the scoring tables lack (trainables.oneshot.
    train_missing), then return the rows scored again from the grown store and its new Scoring."""
    from trainables.oneshot.train_missing import train_missing

    missing = sorted({int(a) for a in rows["best_arch_index"] if scoring.lookup.untrained(int(a))})
    if not quiet:
        print(f"train-missing: {len(missing)} derived architecture(s) without trained rows in the table; "
              f"training them into {scoring.bench.root}", flush=True)
    figures = train_missing(scoring.bench.root, settings.space, scoring.tables(), missing, data_dir=settings.data_dir)
    print(f"train-missing: trained {figures['trained']} architecture(s) in {fmt_duration(figures['train_s'])} "
          f"into {scoring.bench.root}")
    grown = rescored(scoring)
    return score_rows(rows, grown.lookup), grown


def run_and_report(settings: OneShotSettings, scoring: Scoring, *, out: str, address: str | None = None,
                   parallel: int | None = None, quiet: bool = False, resume: bool = False) -> int:
    """Search, write the runs table, print the summary and every run's derived architecture.
    Interrupted (Ctrl-C), it writes no table, prints the summary so far marked as such and returns
    ``INTERRUPTED_STATUS``; ``resume`` continues such an experiment from its checkpoints."""
    from benchmark_data.schema import CLOCK_COLUMNS, provenance

    from .common import IDENTITY_FILE, INTERRUPTED_STATUS
    from .experiment import discard_tables, write_runs

    exp_dir = Path(out) / ONESHOT_FOLDER / settings.experiment
    skeleton = (f"N={settings.N}" if settings.space == "sss" else f"C={settings.C}, N={settings.N}")
    print(f"store: {scoring.bench.root}")
    print(f"one-shot {', '.join(settings.algorithms)} on {settings.space}/{settings.dataset} (supernet trained on "
          f"{settings.train_dataset}, {skeleton}): {settings.epochs} epochs x "
          f"{len(settings.seeds)} seed(s); derived architectures scored by test accuracy at "
          f"hp={scoring.lookup.final_hp}")
    for note in scoring.notes:
        print(f"note: {note}")
    started = time.perf_counter()
    try:
        result = run_oneshot(settings, scoring.lookup, exp_dir, address=address, parallel=parallel, quiet=quiet,
                             resume=resume)
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside Tune's loop
        result = OneShotResults(None, [], interrupted=True)
    rows = result.rows
    if result.interrupted:
        if rows is not None and not rows.empty:
            print("\nsummary so far (INTERRUPTED: not every search ran its epochs; no runs table written):")
            print(format_summary(summarize(rows), settings, scoring.lookup))
        print(f"\ninterrupted: the trials' checkpoints (one per search epoch) are in {exp_dir}", file=sys.stderr)
        return INTERRUPTED_STATUS
    if settings.train_missing:
        rows, scoring = retrain_missing(rows, settings, scoring, quiet=quiet)
    meta = provenance("runs", recipe={"search": "oneshot", "epochs": settings.epochs,
                                      "final_hp": scoring.lookup.final_hp, "search_hp": scoring.lookup.search_hp},
                      skeleton={"N": settings.N} if settings.C is None else {"C": settings.C, "N": settings.N},
                      time_column=CLOCK_COLUMNS["wall"],  # no simulated clock here
                      extra={"experiment": settings.experiment, "benchmark": str(scoring.bench.root),
                             "settings": json.dumps(asdict(settings), sort_keys=True)})
    if resume:
        discard_tables(out, settings.experiment, ("runs",))
    paths = write_runs(out, rows, meta)
    (exp_dir / IDENTITY_FILE).unlink(missing_ok=True)  # complete: nothing left to resume
    print()
    print(format_summary(summarize(rows), settings, scoring.lookup))
    print("\nderived architectures (last epoch):")
    for r in rows.groupby(["searcher", "run_seed"], sort=False).tail(1).itertuples():
        costs = f", {r.flops_m:.2f} MFLOPs, {r.params_m:.3f} M params" if settings.space == "sss" else ""
        print(f"  {r.searcher} seed {r.run_seed}: {r.best_arch}  (index {r.best_arch_index}, test acc "
              f"{fmt_value(r.best_test_acc, unit=' %')}{' (surrogate)' if r.best_surrogate else ''}, rank "
              f"{fmt_value(r.best_rank, 0)}{costs})")
    for err in result.errors:
        print(f"warning: a trial failed: {err.splitlines()[0] if err else err}")
    print(f"\nwall time {time.perf_counter() - started:.1f} s; runs table: "
          f"{paths[0].parent if paths else out}; Ray files: {exp_dir}")
    return 1 if result.errors else 0
