"""Regularized (aging) evolution, Real et al. 2019, with NATS-Bench's settings.

The population is the ``population_size`` most recent successful evaluations; a child is the
single-decision mutation (``SearchSpace.mutate``) of the best of ``sample_size`` members drawn
with replacement; the oldest member dies when a child joins. Ageing rather than killing the
worst keeps the search from clinging to one lucky early result.

Asynchronous use: until the population is full every ask is a random draw, so with several
workers a few more random configs than ``population_size`` may be evaluated. A failed child
never joins the population.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from spaces.hparams import SearchSpace

from .base import Searcher, check_int


class RegularizedEvolution(Searcher):
    name = "rea"

    def __init__(self, space: SearchSpace, seed: int, *, population_size: int = 10,
                 sample_size: int = 3, max_trials: int | None = None) -> None:
        population_size = check_int("population_size", population_size, 1)
        sample_size = check_int("sample_size", sample_size, 1)
        super().__init__(space, seed, max_trials=max_trials,
                         knobs={"population_size": population_size, "sample_size": sample_size})
        self.population_size = population_size
        self.sample_size = sample_size
        self._population: deque[tuple[dict, float]] = deque(maxlen=population_size)

    def _propose(self, trial_id: Any) -> dict:
        if len(self._population) < self.population_size:
            return self.space.sample(self.rng)
        picks = self.rng.integers(len(self._population), size=self.sample_size)
        # Ties go to the earliest pick, so the choice depends on the rng only.
        parent = max((self._population[int(i)] for i in picks), key=lambda member: member[1])
        return self.space.mutate(parent[0], self.rng)

    def _observe(self, record: dict) -> None:
        if record["value"] is not None:
            self._population.append((record["config"], record["value"]))  # maxlen ages out

    def _extra_state(self) -> dict:
        return {"population": [[c, v] for c, v in self._population]}

    def _load_extra_state(self, extra: dict) -> None:
        self._population = deque(((c, v) for c, v in extra["population"]),
                                 maxlen=self.population_size)
