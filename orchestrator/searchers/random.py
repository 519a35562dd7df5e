"""Random search: the baseline every other searcher must beat (NATS-Bench's "RANDOM")."""

from __future__ import annotations

from typing import Any

from spaces.hparams import SearchSpace

from .base import Searcher


class RandomSearch(Searcher):
    """Uniform, independent draws from the space (with replacement, as NATS-Bench does)."""

    name = "random"

    def __init__(self, space: SearchSpace, seed: int, *, max_trials: int | None = None) -> None:
        super().__init__(space, seed, max_trials=max_trials)

    def _propose(self, trial_id: Any) -> dict:
        return self.space.sample(self.rng)
