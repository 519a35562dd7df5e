#!/usr/bin/env python
"""TAS, FBNet-V2 and TuNAS on the size table (NATS-Bench Figure 5.7b/c, small).

Every (variant, seed) is one Ray Tune trial of the real one-shot trainable, as
`orchestrate.py oneshot --searcher ALGO --space sss` runs it: the three strategies without and with
NATS-Bench's filter warm-up (`--warmup-ratio`), and TAS with a FLOPs target of 50 % of the largest
network. After each search epoch the derived configuration is scored by the store's size table
(test accuracy under its longest recipe; where the table's value is a surrogate model's
prediction, the output counts it). The configurations derived at the last epoch are then trained
for real with the table's recipe into a copy of the store (`--train-missing`'s code), so the final
accuracies compared are trained ones.

Prints, per variant: the derived configuration's accuracy at selected epochs (mean +- std over
seeds), and at the last epoch its table accuracy, its trained accuracy, MFLOPs, parameters,
confidence, search seconds per epoch; saves the curves as a PNG (panel b: no warm-up, panel c:
warm-up) and the rows as a `runs` table.

    python benchmarks/bench_size_oneshot.py [--epochs 100] [--seeds 3] [--warmup-ratio 0.25] [--parallel 2]
                                            [--store STORE] [--out DIR] [--png PATH] [--no-train-final]

Prints `name: value unit` lines after the tables.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.oneshot import (  # noqa: E402
    DEFAULT_EPOCHS,
    OneShotSettings,
    resolve_benchmark,
    run_oneshot,
    score_rows,
    summarize,
)
from trainables.oneshot import SIZE_ALGORITHMS  # noqa: E402


def variants(warmup: float) -> list[tuple[str, tuple[str, ...], dict]]:
    """(label suffix, algorithms, knobs) of each group of trials."""
    return [("", SIZE_ALGORITHMS, {}), ("+warmup", SIZE_ALGORITHMS, {"warmup_ratio": warmup}),
            ("+50%flops", ("tas",), {"flops_target": "50%"})]


def curve_table(rows, epochs: list[int]) -> str:
    names = list(rows["searcher"].unique())
    lines = [f"{'epoch':>6} " + " ".join(f"{n:>17}" for n in names)]
    for e in epochs:
        at = rows[rows["event"] == e - 1].groupby("searcher", sort=False)["best_test_acc"]
        mean, std = at.mean(), at.std(ddof=0).fillna(0.0)
        lines.append(f"{e:>6} " + " ".join(f"{mean[n]:>10.2f} +- {std[n]:<4.2f}" for n in names))
    return "\n".join(lines)


def plot(rows, lookup, path: Path, title: str, trained: dict[str, float] | None = None) -> None:
    """The derived configuration's table accuracy per epoch, mean +- std over seeds; ``trained``:
    each variant's mean trained accuracy of its final configurations, marked at the last epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colors = {"tas": "C0", "fbnetv2": "C1", "tunas": "C2"}
    for name, g in rows.groupby("searcher", sort=False):
        algorithm = name.split("+")[0]
        ax = axes[1] if name.endswith("+warmup") else axes[0]
        by_epoch = g.groupby("event")["best_test_acc"]
        mean, std = by_epoch.mean(), by_epoch.std(ddof=0).fillna(0.0)
        epochs = mean.index.to_numpy() + 1
        style = "--" if "flops" in name else "-"
        ax.plot(epochs, mean.to_numpy(), style, color=colors[algorithm], label=name)
        ax.fill_between(epochs, (mean - std).to_numpy(), (mean + std).to_numpy(), color=colors[algorithm], alpha=0.12)
        if trained and trained.get(name) == trained.get(name):  # not NaN
            ax.plot([epochs[-1]], [trained[name]], "o" if "flops" not in name else "s", color=colors[algorithm],
                    mfc="none", ms=7)
    best = float(max(v for v in lookup.final if v == v))
    for ax, panel in zip(axes, ("(b) without warm-up", "(c) with filter warm-up")):
        ax.axhline(best, color="k", ls=":", lw=1, label=f"best in table ({best:.2f})")
        ax.set_xlabel("search epoch")
        ax.set_title(panel + ("; o: the final configurations trained" if trained else ""), fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel(f"test accuracy of the derived configuration, hp={lookup.final_hp} (%)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=None, help="store (default: the embedded benchmark)")
    p.add_argument("--dataset", default=None)
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"search epochs per run (default {DEFAULT_EPOCHS}, NATS-Bench's)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    p.add_argument("--warmup-ratio", type=float, default=0.25,
                   help="share of the epochs the warm-up variants warm up (default 0.25, as search-size.py's example)")
    p.add_argument("--parallel", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--allow-gaps", action="store_true", help="score on a partial table (gaps count as n/a)")
    p.add_argument("--no-train-final", dest="train_final", action="store_false",
                   help="skip training the last epoch's derived configurations into a copy of the store")
    p.add_argument("--out", default="results/bench_size_oneshot", help="folder for the PNG, the runs table and "
                                                                         "the store copy")
    p.add_argument("--png", default=None, help="where the PNG goes (default OUT/size_oneshot_curves.png)")
    args = p.parse_args()

    store = None if args.store in (None, "embedded") else args.store
    scoring = resolve_benchmark(store, args.dataset, space="sss", allow_gaps=args.allow_gaps)
    lookup, out = scoring.lookup, Path(args.out).resolve()
    for note in scoring.notes:
        print(f"note: {note}")
    experiment = time.strftime("bench-size-oneshot-%Y%m%d-%H%M%S")
    frames, started = [], time.perf_counter()
    import pandas as pd

    for suffix, algorithms, knobs in variants(args.warmup_ratio):
        settings = OneShotSettings(experiment=experiment, algorithms=algorithms, seeds=tuple(range(args.seeds)),
                                   epochs=args.epochs, dataset=scoring.dataset, train_dataset=scoring.train_dataset,
                                   C=None, N=1, knobs=knobs, space="sss")
        rows = run_oneshot(settings, lookup, out / "oneshot" / f"{experiment}{suffix}", parallel=args.parallel,
                           quiet=True).rows
        frames.append(rows.assign(searcher=rows["searcher"] + suffix))
    rows = pd.concat(frames, ignore_index=True)
    wall = time.perf_counter() - started

    print(f"\nbenchmark {scoring.bench.root}: sss/{scoring.dataset}, N=1; score = test acc at hp={lookup.final_hp}"
          + (f" ({lookup.surrogate_model} predictions where not trained)" if lookup.surrogate_model else ""))
    marks = sorted({1, 2, 5, *range(10, args.epochs + 1, 10), args.epochs})
    print(curve_table(rows, [e for e in marks if e <= args.epochs]))

    last = rows.groupby(["searcher", "run_seed"], sort=False).tail(1)
    trained_acc = None
    if args.train_final:  # the final derived configurations, trained for real into a copy of the store
        from orchestrator.oneshot import rescored
        from trainables.oneshot.train_missing import train_missing

        copy = out / "store"
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(scoring.bench.root, copy, ignore=shutil.ignore_patterns("README.md", "runs", "trials"))
        copied = resolve_benchmark(copy, scoring.dataset, space="sss", allow_gaps=args.allow_gaps)
        figures = train_missing(copy, "sss", copied.tables(), last["best_arch_index"].astype(int))
        print(f"\ntrained {figures['trained']} final configuration(s) in {figures['train_s']:.0f} s into {copy}")
        trained_acc = score_rows(last, rescored(copied).lookup)["best_test_acc"].to_numpy()
    last = last.assign(trained_test_acc=trained_acc if trained_acc is not None else float("nan"))
    summary = summarize(rows).set_index("searcher")
    trained = last.groupby("searcher", sort=False)["trained_test_acc"]
    print(f"\n{'variant':<17} {'table acc (last)':>17} {'predicted':>9} {'trained acc':>15} {'MFLOPs':>7} "
          f"{'M params':>8} {'confidence':>10} {'s/epoch':>8}")
    for name, r in summary.iterrows():
        print(f"{name:<17} {r.test_acc_mean:>8.2f} +- {r.test_acc_std:<5.2f} "
              f"{int(r.surrogate_finals):>5}/{int(r.runs):<3} "
              f"{trained.mean()[name]:>7.2f} +- {trained.std(ddof=0)[name]:<4.2f} {r.flops_m_mean:>7.2f} "
              f"{r.params_m_mean:>8.3f} {r.confidence_mean:>10.3f} {r.epoch_time_s_median:>8.2f}")
    print()
    for name, r in summary.iterrows():
        print(f"{name}_final_table_acc: {r.test_acc_mean:.2f} %")
        print(f"{name}_final_trained_acc: {trained.mean()[name]:.2f} %")
        print(f"{name}_final_mflops: {r.flops_m_mean:.2f} MFLOPs")
        print(f"{name}_epoch_time_median: {r.epoch_time_s_median:.3f} s")
    print(f"largest_network_mflops: {largest_flops(scoring):.2f} MFLOPs")
    print(f"best_in_table: {max(v for v in lookup.final if v == v):.2f} %")
    print(f"bench_wall_time: {wall:.0f} s")

    from benchmark_data.schema import provenance
    from orchestrator.experiment import write_runs

    out.mkdir(parents=True, exist_ok=True)
    png = Path(args.png) if args.png else out / "size_oneshot_curves.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, lookup, png, f"size search by weight sharing on sss/{scoring.dataset} ({args.seeds} seeds, "
                            f"{args.epochs} epochs, mean +- std; warm-up {args.warmup_ratio:g})",
         trained=trained.mean().to_dict() if args.train_final else None)
    write_runs(out, rows, provenance("runs", recipe={"search": "oneshot", "epochs": args.epochs},
                                     skeleton={"N": 1}, extra={"experiment": experiment,
                                                               "benchmark": str(scoring.bench.root)}))
    print(f"plot: {png}")


def largest_flops(scoring) -> float:
    from trainables.data.splits import search_dataset
    from trainables.oneshot.size_cost import size_costs

    data = search_dataset(scoring.train_dataset)
    return float(size_costs(data.num_classes, data.in_channels, data.image_size).flops_m.every.max())


if __name__ == "__main__":
    main()
