"""What a surrogate learns from: features of an architecture and the curves it was trained to.

Features come from the space's own encoding (``CategoricalSpace.all_choice_indices``), one
block per decision: a decision whose choices are numbers (the size space's channel counts) is
one ordinal column of those numbers, since 24 channels lies between 16 and 32; any other
decision (the topology space's operations) is one-hot, since ``nor_conv_1x1`` is not between
``skip_connect`` and ``nor_conv_3x3``.

Targets are the per-epoch curves of every ``epochs`` metric the table records (the time columns
included), as the mean over the seeds an architecture was trained with: one row per trained
architecture, one column per (metric, epoch) that has a value anywhere. An architecture with a
gap in any of those columns (a diverged training, a metric not published for it) is left out of
the training set rather than imputed.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from spaces import CategoricalSpace, get_space
from spaces.errors import UserError

from .. import schema as S

MIN_ARCHS = 50  # below this a k-fold estimate of ranking quality says little, and so does a fit


def features(space: CategoricalSpace, arch_index: np.ndarray) -> np.ndarray:
    """[len(arch_index), n_features] float32 feature matrix (see the module docstring)."""
    digits = space.all_choice_indices()[np.asarray(arch_index)]
    blocks = []
    for d, choices in enumerate(_choices(space)):
        if _numeric(choices):
            blocks.append(np.asarray(choices, np.float32)[digits[:, d]][:, None])
        else:
            blocks.append(np.eye(len(choices), dtype=np.float32)[digits[:, d]])
    return np.concatenate(blocks, axis=1)


def feature_names(space: CategoricalSpace) -> list[str]:
    names = []
    for decision, choices in zip(space.decisions, _choices(space)):
        names += [decision] if _numeric(choices) else [f"{decision}={c}" for c in choices]
    return names


def _choices(space: CategoricalSpace) -> list[tuple[Any, ...]]:
    return [tuple(p.choices) for p in space.hparams]


def _numeric(choices: tuple[Any, ...]) -> bool:
    return all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices)


@dataclass(frozen=True)
class Column:
    """One target column: ``metric`` after ``epoch`` epochs (1-based)."""
    metric: str
    epoch: int


@dataclass(frozen=True)
class TrainingSet:
    """The trained architectures of one (space, dataset, hp) as a regression problem."""
    space: CategoricalSpace
    dataset: str
    hp: int
    n_epochs: int
    archs: np.ndarray          # int32 [n] trained architectures used for fitting
    X: np.ndarray              # float32 [n, features]
    Y: np.ndarray              # float32 [n, columns], seed means
    columns: tuple[Column, ...]
    left_out: int              # trained architectures with a gap in some target column
    source_meta: dict[str, str]  # provenance of the epochs rows (recipe, skeleton, fingerprint)

    @property
    def objective(self) -> str:
        """The metric a search sees (the files' objective column), else the first recorded final
        target (an imported table of test accuracies alone)."""
        wanted = self.source_meta.get("objective_column") or S.ROLE_COLUMNS["epochs"]["objective_column"]
        return wanted if wanted in self.metrics else next(m for m in ("valid_acc", "test_acc", *self.metrics)
                                                          if m in self.metrics)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.metric for c in self.columns))

    def column(self, metric: str, epoch: int | None = None) -> int:
        """Position of (metric, epoch) among the targets (epoch None: the metric's last one)."""
        hits = [i for i, c in enumerate(self.columns) if c.metric == metric and (epoch is None or c.epoch == epoch)]
        if not hits:
            raise UserError(f"the {self.space.name}/{self.dataset} hp={self.hp} table records no {metric}"
                            + (f" at epoch {epoch}" if epoch is not None else ""))
        return hits[-1]

    @property
    def fingerprint(self) -> str:
        """Hash of exactly what a model is fitted on: architectures, targets and their names."""
        h = hashlib.sha256()
        h.update(json.dumps([self.space.name, self.dataset, self.hp,
                             [[c.metric, c.epoch] for c in self.columns]]).encode())
        h.update(np.ascontiguousarray(self.archs, np.int32).tobytes())
        h.update(np.ascontiguousarray(self.Y, np.float32).tobytes())
        return h.hexdigest()[:16]

    def subset(self, rows: np.ndarray) -> TrainingSet:
        """The same problem restricted to some of its architectures (a fold, a sample)."""
        return TrainingSet(self.space, self.dataset, self.hp, self.n_epochs, self.archs[rows], self.X[rows],
                           self.Y[rows], self.columns, self.left_out, self.source_meta)


def training_set(bench, space: str, dataset: str, hp: int, *, min_archs: int = MIN_ARCHS) -> TrainingSet:
    """The trained rows of ``bench`` (open it with ``surrogate=False``) for (space, dataset, hp).

    UserError when fewer than ``min_archs`` architectures have complete curves.
    """
    sp = get_space(space)
    n_epochs = bench.num_epochs(space, dataset, hp)
    curves, present = {}, None
    with warnings.catch_warnings():  # an arch without a seed's value stays NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        for metric in S.EPOCH_METRICS:
            curve = bench.curve(space, dataset, hp, metric)
            present = curve.present
            curves[metric] = np.nanmean(curve.values, axis=1)  # [archs, epochs]
    trained = np.flatnonzero(present)
    columns, blocks = [], []
    for metric, values in curves.items():
        for e in range(n_epochs):
            col = values[trained, e]
            if not np.isnan(col).all():
                columns.append(Column(metric, e + 1))
                blocks.append(col)
    where = f"{space}/{dataset} hp={hp}"
    if not columns:
        raise UserError(f"{where} has no metric values to fit a surrogate on")
    Y = np.stack(blocks, axis=1).astype(np.float32)
    complete = ~np.isnan(Y).any(axis=1)
    archs = trained[complete].astype(np.int32)
    if archs.size < min_archs:
        raise UserError(f"{where} has {archs.size} trained architecture(s) with complete curves "
                        f"({trained.size} trained in all); a surrogate needs at least {min_archs} to be "
                        "fitted and cross-validated. Train more first: `python -m benchmark_data build "
                        f"--store {bench.root} --space {space} --dataset {dataset} ...`")
    meta = bench.metadata(space, dataset, hp)
    source = {k: meta[k] for k in ("recipe", "skeleton", "dataset_fingerprint", "objective_column",
                                   "fidelity_column", "time_column") if meta.get(k)}
    return TrainingSet(sp, dataset, hp, n_epochs, archs, features(sp, archs), Y[complete], tuple(columns),
                       int(trained.size - archs.size), source)
