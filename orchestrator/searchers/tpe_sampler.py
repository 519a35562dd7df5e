"""Optuna's TPESampler for a study whose every trial asks the same distributions: same numbers, less work.

Our TPE searcher asks every Optuna trial with the whole search space, fixed, so two things Optuna
recomputes on every ask are known in advance:

* the relative search space, which Optuna infers as the intersection of the distributions of all
  completed trials (a pass over the study plus a deep copy per ask): here it is the space itself,
  sorted by name as Optuna sorts it, once any trial has completed, and empty before;
* each trial's parameters in Optuna's internal representation, which Optuna converts anew for
  every trial on every ask (a pass over trials x parameters): a trial's parameters never change
  once set, so each trial is converted once and looked up afterwards;
* Optuna compares a parameter's distribution with the one on record several times per ask, choice
  by choice, and here they are always the very same object (``identical_fast``).

Everything else is TPESampler's own code, and the results are the same to the last bit (the
searcher tests compare whole runs with the plain sampler). The overridden methods are those of
the pinned Optuna 5.0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import TPESampler


class _Categorical(CategoricalDistribution):
    """A CategoricalDistribution equal to itself at once (otherwise compared choice by choice)."""

    def __eq__(self, other: Any) -> bool:
        return other is self or super().__eq__(other)

    __hash__ = CategoricalDistribution.__hash__


def identical_fast(distributions: dict[str, BaseDistribution]) -> dict[str, BaseDistribution]:
    """The same distributions, the categorical ones as ``_Categorical`` (same choices, same
    behaviour; only equality with itself is quicker)."""
    return {name: _Categorical(d.choices) if type(d) is CategoricalDistribution else d
            for name, d in distributions.items()}


class FixedSpaceTPESampler(TPESampler):
    """TPESampler told its search space; ``completed`` must be set once a trial has completed."""

    def __init__(self, search_space: dict[str, BaseDistribution], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fixed_space = {name: d for name, d in sorted(search_space.items()) if not d.single()}
        self.completed = False
        self._internal: dict[tuple, dict[int, tuple]] = {}  # parameter names -> trial number -> values

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, BaseDistribution]:
        if not self._is_multivariate(study) or self._group:
            return super().infer_relative_search_space(study, trial)
        return dict(self._fixed_space) if self.completed else {}

    def _get_internal_repr(self, trials: list, search_space: dict[str, BaseDistribution],
                           study: Any) -> dict[str, np.ndarray]:
        names = tuple(search_space)
        known = self._internal.setdefault(names, {})
        rows = []
        for trial in trials:
            row = known.get(trial.number)
            if row is None:
                params = self._get_params(trial, study)
                if not search_space.keys() <= params.keys():
                    continue  # not (yet) all parameters: as Optuna, left out, and not remembered
                row = known[trial.number] = tuple(d.to_internal_repr(params[n]) for n, d in search_space.items())
            rows.append(row)
        return {name: np.asarray([row[i] for row in rows]) for i, name in enumerate(names)}
