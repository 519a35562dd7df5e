"""Fit the chosen surrogate on a table's trained architectures and write its predictions for
every architecture the table lacks into the store's ``surrogate`` table.

A completion replaces the partition's earlier surrogate files: the new fragment is written
first (atomically, as every fragment), then the older ones are removed, so an interruption
leaves either the old predictions or the new ones in use (the reader lets the last written row
of a key win, and never uses a surrogate row for an architecture that has trained rows).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from spaces.errors import UserError

from .. import schema as S
from .models import CANDIDATES, describe, fit_model
from .scores import FOLDS, ModelScore, best, cross_validate
from .training import MIN_ARCHS, TrainingSet, feature_names, features, training_set

_ACCURACIES = ("train_acc", "valid_acc", "test_acc")  # percent: predictions are clipped to 0..100
# "residual": each predicted architecture gets the cross-validation residual curves of a trained
# architecture with a like prediction added (``SurrogateFit.draw``); "none": the bare prediction
# (the model's estimate of the mean over trainings).
NOISE = ("residual", "none")
NEIGHBOURS = 50  # trained architectures, nearest by predicted objective, that a residual is drawn from


@dataclass
class SurrogateFit:
    """A fitted surrogate of one table, with the cross-validation it was chosen by."""
    ts: TrainingSet
    model: str
    seed: int
    folds: int
    scores: list[ModelScore]   # every candidate's CV scores (the chosen one among them)
    estimator: Any = field(repr=False)
    noise: str = "residual"    # what the written rows add to the prediction (NOISE)

    @property
    def chosen(self) -> ModelScore:
        return next(s for s in self.scores if s.model == self.model)

    def predict(self, arch_index: np.ndarray) -> np.ndarray:
        """float32 [n, columns] predictions of the mean curves, clipped to what the metrics can be."""
        out = self.estimator.predict(features(self.ts.space, arch_index)).reshape(len(arch_index), -1)
        return self._clip(out.astype(np.float32))

    def draw(self, arch_index: np.ndarray) -> np.ndarray:
        """float32 [n, columns]: what the written rows hold, ``predict`` plus the noise.

        A prediction is a mean; a trained row is one training, which lands around its mean with
        the spread the cross-validation residuals measure. Without noise a search meets the
        trained architectures' lucky draws at the top of the ranking and predicted ones never
        (regression to the mean), so a completed table would steer searches to what happened to
        be trained. With ``noise="residual"`` each architecture gets the whole residual row (every
        metric and epoch, so their correlations are kept) of one of the ``NEIGHBOURS`` trained
        architectures whose out-of-fold prediction of the objective was closest to its own: the
        spread depends on the level (a network near 99 % scatters less than one near 80 %), so a
        residual is only borrowed from a like architecture. Drawn with the fit's seed: the same
        fit writes the same rows.
        """
        out = self.predict(arch_index)
        if self.noise == "none":
            return out
        residuals = self.chosen.residuals
        key = self.ts.column(self.ts.objective)
        oof = self.ts.Y[:, key] - residuals[:, key]  # what the CV predicted for each trained arch
        order = np.argsort(oof, kind="stable")
        k = min(NEIGHBOURS, order.size)
        start = np.clip(np.searchsorted(oof[order], out[:, key]) - k // 2, 0, order.size - k)
        pick = order[start + np.random.default_rng(self.seed).integers(k, size=len(arch_index))]
        return self._clip(out + residuals[pick])

    def _clip(self, out: np.ndarray) -> np.ndarray:
        for c, col in enumerate(self.ts.columns):
            np.clip(out[:, c], 0.0, 100.0 if col.metric in _ACCURACIES else None, out=out[:, c])
        return out

    def metadata(self) -> dict[str, str]:
        """Provenance of the written rows: the epochs rows' recipe, and what made the numbers."""
        source = self.ts.source_meta
        return S.provenance(
            "surrogate", recipe=json.loads(source.get("recipe", "{}")),
            skeleton=json.loads(source.get("skeleton", "{}")),
            dataset_fingerprint=source.get("dataset_fingerprint", ""),
            objective_column=source.get("objective_column"), time_column=source.get("time_column"),
            fidelity_column=source.get("fidelity_column"),
            extra={"surrogate_model": describe(self.model),
                   "surrogate_features": json.dumps(feature_names(self.ts.space)),
                   "surrogate_targets": json.dumps(sorted(self.ts.metrics)),
                   "surrogate_training_fingerprint": self.ts.fingerprint,
                   "surrogate_training_archs": str(self.ts.archs.size),
                   "surrogate_cv": json.dumps({"folds": self.folds, "chosen": self.model,
                                               "candidates": [s.to_json() for s in self.scores]}),
                   "surrogate_seed": str(self.seed), "surrogate_noise": self.noise, "writer": "surrogate"})

    def rows(self, arch_index: np.ndarray) -> pa.Table:
        """``surrogate`` rows (one per architecture and epoch) for ``arch_index``."""
        arch_index = np.asarray(arch_index, np.int32)
        predicted = self.draw(arch_index)
        n, epochs = arch_index.size, self.ts.n_epochs
        data: dict[str, Any] = {
            "space": pa.array([self.ts.space.name] * (n * epochs)),
            "dataset": pa.array([self.ts.dataset] * (n * epochs)),
            "hp": np.full(n * epochs, self.ts.hp, np.int16),
            "arch_index": np.repeat(arch_index, epochs),
            "seed": np.full(n * epochs, S.SURROGATE_SEED, np.int32),
            "epoch": np.tile(np.arange(1, epochs + 1, dtype=np.int16), n),
        }
        for metric in S.EPOCH_METRICS:
            values = np.full((n, epochs), np.nan, np.float32)  # a column never recorded stays null
            for c, col in enumerate(self.ts.columns):
                if col.metric == metric:
                    values[:, col.epoch - 1] = predicted[:, c]
            data[metric] = pa.array(values.reshape(-1), mask=np.isnan(values.reshape(-1)))
        data["status"] = pa.array([S.SURROGATE_STATUS] * (n * epochs))
        return pa.table(data)


def fit(ts: TrainingSet, model: str = "auto", *, seed: int = 0, folds: int = FOLDS, noise: str = "residual",
        progress: Callable[[str], None] | None = None) -> SurrogateFit:
    """Cross-validate ``model`` (``auto``: every candidate, keeping the best by Kendall tau),
    then fit it on the whole training set."""
    if model != "auto" and model not in CANDIDATES:
        raise UserError(f"unknown surrogate model {model!r}; choose auto or one of {', '.join(CANDIDATES)}")
    if noise not in NOISE:
        raise UserError(f"unknown surrogate noise {noise!r}; choose one of {', '.join(NOISE)}")
    scores = cross_validate(ts, CANDIDATES if model == "auto" else (model,), folds=folds, seed=seed,
                            progress=progress)
    chosen = best(scores).model if model == "auto" else model
    if progress:
        progress(f"{chosen}: fit on all {ts.archs.size} architectures")
    estimator = fit_model(chosen, seed, ts.X, ts.Y)
    return SurrogateFit(ts, chosen, seed, folds, scores, estimator, noise)


@dataclass(frozen=True)
class Completion:
    fit: SurrogateFit
    written: int            # architectures predicted
    paths: list[Path]       # the new fragment(s)
    replaced: list[Path]    # earlier surrogate fragments removed


def complete(root: str | Path, space: str, dataset: str, hp: int, *, model: str = "auto", seed: int = 0,
             folds: int = FOLDS, min_archs: int = MIN_ARCHS, noise: str = "residual",
             progress: Callable[[str], None] | None = None) -> Completion:
    """Fit a surrogate on the trained rows of (space, dataset, hp) in the store ``root`` and
    write predictions for every architecture without them (see the module docstring)."""
    from ..reader import Benchmark
    from ..writer import write_fragment

    bench = Benchmark.open(root, surrogate=False)
    ts = training_set(bench, space, dataset, hp, min_archs=min_archs)
    missing = np.flatnonzero(~bench.curve(space, dataset, hp, "valid_acc").present).astype(np.int32)
    if not missing.size:
        raise UserError(f"{space}/{dataset} hp={hp} has trained rows for every one of the "
                        f"{ts.space.size:,} architectures: there is nothing to complete")
    result = fit(ts, model, seed=seed, folds=folds, noise=noise, progress=progress)
    folder = S.partition_path(bench.root, "surrogate", {"space": space, "dataset": dataset, "hp": hp})
    earlier = S.list_fragments(folder)
    if progress:
        progress(f"{result.model}: predict {missing.size:,} architectures")
    paths = write_fragment(bench.root, "surrogate", result.rows(missing), metadata=result.metadata())
    for path in earlier:
        path.unlink(missing_ok=True)
    return Completion(result, int(missing.size), paths, earlier)
