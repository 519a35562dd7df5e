#!/usr/bin/env python
"""How well the surrogate predicts, measured where the truth is known.

Three measurements, each for every candidate model (benchmark_data.surrogate.CANDIDATES), with the
median fit and predict times:

1. tss, embedded digits table (hp=12, every cell trained): fit on a random 10 % of the
   isomorphism classes (every member of them), predict one representative of each of the other
   90 %; Kendall tau / Spearman rho / RMSE of predicted vs recorded final validation and test
   accuracy.
2. The same split on the real NATS-Bench CIFAR-10 200-epoch test accuracies
   (../shared/data/nats_tss_cifar10_test_acc_200ep.csv, imported into a scratch store through
   the project's importer); skipped when the file is absent.
3. The k-fold cross-validation the `surrogate` command reports, on the embedded size-space table
   (the partial sss hp=12 table the command completes).

    python benchmarks/bench_surrogate.py [--store embedded] [--fraction 0.1] [--seed 0] [--folds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_data.cli import store_to_read  # noqa: E402
from benchmark_data.importers import import_nats_table  # noqa: E402
from benchmark_data.reader import Benchmark  # noqa: E402
from benchmark_data.surrogate import CANDIDATES, cross_validate, training_set  # noqa: E402
from benchmark_data.surrogate.cli import format_scores  # noqa: E402
from benchmark_data.surrogate.scores import ModelScore, fit_predict, score_targets  # noqa: E402

SHARED_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nats_tss_cifar10_test_acc_200ep.csv"


def held_out_classes(ts, models, fraction: float, seed: int) -> tuple[list[ModelScore], int, int]:
    """Fit on every member of a random ``fraction`` of the isomorphism classes, score on one
    representative of each other class. Returns (scores, training rows, scored classes)."""
    iso = ts.space.iso_class_ids()[ts.archs]
    classes = np.unique(iso)
    rng = np.random.default_rng(seed)
    picked = rng.choice(classes, max(2, round(fraction * classes.size)), replace=False)
    train = np.flatnonzero(np.isin(iso, picked))
    _, first = np.unique(iso, return_index=True)  # one representative per class
    test = np.sort(first[~np.isin(iso[first], picked)])
    out = []
    for model in models:
        fits, predicts = [], []
        for _ in range(3):  # the times are medians of three fits on a shared machine
            predicted, fit_s, predict_s = fit_predict(model, seed, ts.subset(train), ts.X[test])
            fits.append(fit_s)
            predicts.append(predict_s)
        out.append(ModelScore(model, score_targets(ts, predicted, ts.Y[test]), float(np.median(fits)),
                              float(np.median(predicts))))
    return out, train.size, test.size


def report(title: str, scores: list[ModelScore], note: str) -> None:
    best = max(scores, key=lambda s: s.rank_score).model
    print(f"\n{title}\n{note}")
    print(format_scores(scores, best))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default="embedded", help="store with the tss and sss digits tables")
    p.add_argument("--fraction", type=float, default=0.1, help="share of isomorphism classes fitted on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--models", default=",".join(CANDIDATES), help="comma-separated candidates")
    args = p.parse_args(argv)
    models = args.models.split(",")
    bench = Benchmark.open(store_to_read(args.store), surrogate=False)

    ts = training_set(bench, "tss", "digits", 12)
    scores, n_train, n_test = held_out_classes(ts, models, args.fraction, args.seed)
    report("1. tss/digits hp=12 (embedded): fit on 10 % of the isomorphism classes, predict the rest", scores,
           f"   fitted on {n_train:,} cells of {round(args.fraction * 100)} % of the classes, scored on "
           f"{n_test:,} class representatives; * = highest mean Kendall tau; fit/predict s: median of 3")

    if SHARED_CSV.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            import_nats_table(SHARED_CSV, tmp, space="tss", dataset="cifar10", hp=200, metric="test_acc")
            ts = training_set(Benchmark.open(tmp, surrogate=False), "tss", "cifar10", 200)
            scores, n_train, n_test = held_out_classes(ts, models, args.fraction, args.seed)
        report("2. tss/cifar10 hp=200 (real NATS-Bench test accuracy, ../shared/data): the same split", scores,
               f"   fitted on {n_train:,} cells, scored on {n_test:,} class representatives")
    else:
        print(f"\n2. skipped: {SHARED_CSV} is absent")

    ts = training_set(bench, "sss", "digits", 12)
    scores = cross_validate(ts, models, folds=args.folds, seed=args.seed)
    report(f"3. sss/digits hp=12 (embedded, partial): {args.folds}-fold cross-validation, as the surrogate "
           "command reports it", scores,
           f"   {ts.archs.size:,} trained configurations of {ts.space.size:,}; fit/predict s: median per fold")
    valid = bench.curve("sss", "digits", 12, "valid_acc").values[ts.archs, 0, -1]
    test = bench.curve("sss", "digits", 12, "test_acc").values[ts.archs, 0, -1]
    from scipy.stats import kendalltau
    print(f"   for scale: Kendall tau between the recorded final validation and test accuracy of the same "
          f"trainings is {kendalltau(valid, test).statistic:.3f} (the noise of one 12-epoch training on digits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
