#!/usr/bin/env python
"""The six one-shot algorithms x seeds on the embedded benchmark (NATS-Bench Figure 5.7a, small).

Every (algorithm, seed) is one Ray Tune trial of the real one-shot trainable, as
`orchestrate.py oneshot --searcher ALGO` runs it; the architecture derived after each search epoch is
scored by the benchmark (test accuracy under its longest complete recipe, rank among all 15,625
cells). Prints, per algorithm: the derived architecture's accuracy after selected epochs
(mean +- std over seeds), its final rank, search wall time, seconds per epoch, peak memory, and
the final entropy of the op distribution (log 5 = 1.609 is uniform), and GDAS's time per epoch
against DARTS-V1's measured in the same run; saves the curves as a PNG and
the rows as a `runs` table.

    python benchmarks/bench_oneshot.py [--epochs 100] [--seeds 3] [--parallel 2] [--arch-lr 3e-4] [--out DIR]

Prints `name: value unit` lines after the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.oneshot import DEFAULT_EPOCHS, OneShotSettings, resolve_benchmark, run_oneshot, summarize  # noqa: E402
from trainables.oneshot import ALGORITHMS  # noqa: E402


def curve_table(rows, epochs: list[int]) -> str:
    """Derived architecture's benchmark test accuracy (mean +- std over seeds) at some epochs."""
    head = f"{'epoch':>6} " + " ".join(f"{a:>14}" for a in rows["searcher"].unique())
    lines = [head]
    for e in epochs:
        at = rows[rows["event"] == e - 1].groupby("searcher", sort=False)["best_test_acc"]
        mean, std = at.mean(), at.std(ddof=1).fillna(0.0)
        lines.append(f"{e:>6} " + " ".join(f"{mean[a]:>7.2f} +- {std[a]:<4.2f}" for a in mean.index))
    return "\n".join(lines)


def plot(rows, lookup, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, g in rows.groupby("searcher", sort=False):
        by_epoch = g.groupby("event")["best_test_acc"]
        mean, std = by_epoch.mean(), by_epoch.std(ddof=1).fillna(0.0)
        epochs = mean.index.to_numpy() + 1
        ax.plot(epochs, mean.to_numpy(), label=name)
        ax.fill_between(epochs, (mean - std).to_numpy(), (mean + std).to_numpy(), alpha=0.15)
    best = float(max(v for v in lookup.final if v == v))
    ax.axhline(best, color="k", ls=":", lw=1, label=f"best in benchmark ({best:.2f})")
    ax.set_xlabel("search epoch")
    ax.set_ylabel(f"test accuracy of the derived cell, hp={lookup.final_hp} (%)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=None, help="store (default: the embedded benchmark)")
    p.add_argument("--dataset", default=None)
    p.add_argument("--algorithms", default=",".join(ALGORITHMS), help="comma-separated (default: all six)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"search epochs per run (default {DEFAULT_EPOCHS}, NATS-Bench's)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per algorithm (default 3)")
    p.add_argument("--parallel", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--arch-lr", type=float, default=None,
                   help="architecture learning rate of the alpha-learning strategies (default: DARTS' 3e-4)")
    p.add_argument("--out", default="results/bench_oneshot", help="folder for the PNG and the runs table")
    args = p.parse_args()

    algorithms = tuple(a.strip() for a in args.algorithms.split(",") if a.strip())
    scoring = resolve_benchmark(None if args.store in (None, "embedded") else args.store, args.dataset)
    bench, dataset, lookup, C, N = scoring.bench, scoring.dataset, scoring.lookup, scoring.C, scoring.N
    experiment = time.strftime("bench-oneshot-%Y%m%d-%H%M%S")
    settings = OneShotSettings(experiment=experiment, algorithms=algorithms, seeds=tuple(range(args.seeds)),
                               epochs=args.epochs, dataset=dataset, train_dataset=scoring.train_dataset, C=C, N=N,
                               knobs={} if args.arch_lr is None else {"arch_lr": args.arch_lr})
    out = Path(args.out).resolve()
    started = time.perf_counter()
    rows = run_oneshot(settings, lookup, out / "oneshot" / experiment, parallel=args.parallel).rows
    wall = time.perf_counter() - started

    print(f"\nbenchmark {bench.root}: tss/{dataset}, C={C} N={N}; score = test acc at hp={lookup.final_hp}")
    marks = sorted({1, 2, 5, *range(10, args.epochs + 1, 10), args.epochs})
    print(curve_table(rows, [e for e in marks if e <= args.epochs]))
    summary = summarize(rows)
    print(f"\n{'algorithm':<9} {'final test acc':>16} {'rank median':>12} {'rank range':>14} "
          f"{'search s':>9} {'s/epoch':>8} {'peak RSS':>9} {'entropy':>8}")
    for r in summary.itertuples():
        print(f"{r.searcher:<9} {r.test_acc_mean:>7.2f} +- {r.test_acc_std:<5.2f} {r.rank_median:>12.0f} "
              f"{r.rank_min:>6.0f}-{r.rank_max:<7.0f} {r.search_time_s_mean:>9.1f} {r.epoch_time_s_median:>8.2f} "
              f"{r.peak_rss_mib_max:>5.0f} MiB {r.entropy_mean:>8.3f}")
    print()
    for r in summary.itertuples():
        print(f"{r.searcher}_final_test_acc: {r.test_acc_mean:.2f} %")
        print(f"{r.searcher}_epoch_time_median: {r.epoch_time_s_median:.3f} s")
    per_epoch = summary.set_index("searcher")["epoch_time_s_median"]
    if {"gdas", "darts-v1"} <= set(per_epoch.index):
        print(f"darts_v1_over_gdas_epoch_time: {per_epoch['darts-v1'] / per_epoch['gdas']:.2f} x")
    if {"gdas", "darts-v2"} <= set(per_epoch.index):
        print(f"darts_v2_over_gdas_epoch_time: {per_epoch['darts-v2'] / per_epoch['gdas']:.2f} x")
    print(f"best_in_benchmark: {max(v for v in lookup.final if v == v):.2f} %")
    print(f"bench_wall_time: {wall:.0f} s")

    from benchmark_data.schema import provenance
    from orchestrator.experiment import write_runs

    out.mkdir(parents=True, exist_ok=True)
    png = out / "oneshot_curves.png"
    lr = "" if args.arch_lr is None else f", arch lr {args.arch_lr:g}"
    plot(rows, lookup, png, f"one-shot NAS on tss/{dataset} ({args.seeds} seeds, mean +- std{lr})")
    write_runs(out, rows, provenance("runs", recipe={"search": "oneshot", "epochs": args.epochs},
                                     skeleton={"C": C, "N": N},
                          extra={"experiment": experiment, "benchmark": str(bench.root)}))
    print(f"plot: {png}")


if __name__ == "__main__":
    main()
