"""REINFORCE with a factorised softmax policy, as NATS-Bench's reference (Williams 1992).

One vector of logits per categorical decision; a config is one independent draw per decision.
After each result the policy takes one Adam step on ``-(reward - baseline) * log p(config)``,
where the baseline is a bias-corrected exponential moving average of the rewards that already
includes the current one (the reference updates the baseline before computing the advantage).

The policy, the optimiser and the baseline are separate small classes so that other policy-
gradient controllers (ENAS's sampler) can reuse them. Everything is numpy: a 6 x 5 policy does
not need torch, and numpy keeps ask+tell in the microseconds.

Asynchronous use: a result updates the current policy with the gradient of the log-probability
of the config that was evaluated, even if the policy has moved since it was proposed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spaces.baseline import MovingAverageBaseline
from spaces.errors import UserError
from spaces.hparams import Categorical, SearchSpace

from .base import Searcher, check_float


class Adam:
    """Adam (Kingma & Ba) on a list of numpy arrays, updated in place (torch's defaults)."""

    def __init__(self, params: list[np.ndarray], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.step_count = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        b1, b2 = self.betas
        self.step_count += 1
        c1, c2 = 1 - b1 ** self.step_count, 1 - b2 ** self.step_count
        root_c2 = math.sqrt(c2)  # the same number as np.sqrt(c2), without a ufunc call
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            # p -= (lr / c1) * m / (sqrt(v) / sqrt(c2) + eps), operation for operation, in place
            denominator = np.sqrt(v)
            denominator /= root_c2
            denominator += self.eps
            step = (self.lr / c1) * m
            step /= denominator
            p -= step

    def state_dict(self) -> dict:
        return {"step": self.step_count, "m": [a.tolist() for a in self.m],
                "v": [a.tolist() for a in self.v]}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = state["step"]
        for dst, src in zip(self.m + self.v, state["m"] + state["v"]):
            dst[...] = src


class SoftmaxPolicy:
    """Independent categorical distributions, one logit row per decision.

    The rows live in one table padded to the widest decision (padding logits are -inf, so their
    probability is 0): every update is a handful of whole-table numpy operations instead of a
    Python loop over decisions, which keeps an ask+tell in the tens of microseconds.
    """

    def __init__(self, sizes: list[int], rng: np.random.Generator, init_std: float = 1e-3) -> None:
        self.sizes = [int(n) for n in sizes]
        self.table = np.full((len(sizes), max(self.sizes)), -np.inf)
        for row, n in zip(self.table, self.sizes):
            row[:n] = init_std * rng.standard_normal(n)
        self._rows = np.arange(len(self.sizes))
        self._last = np.asarray(self.sizes) - 1
        self._cached_probs: np.ndarray | None = None  # softmax of the table as it is now

    def updated(self) -> None:
        """Say that ``table`` was changed in place (an optimiser step): the softmax is recomputed."""
        self._cached_probs = None

    def _probs(self) -> np.ndarray:
        # An ask and the tell that follows it see the same table: computed once for both.
        if self._cached_probs is None:
            e = np.exp(self.table - self.table.max(axis=1, keepdims=True))
            self._cached_probs = e / e.sum(axis=1, keepdims=True)
        return self._cached_probs

    def probs(self) -> list[np.ndarray]:
        return [row[:n].copy() for row, n in zip(self._probs(), self.sizes)]

    def sample(self, rng: np.random.Generator) -> list[int]:
        u = rng.random(len(self.sizes))
        # Inverse CDF per row: the number of cumulative probabilities <= u (searchsorted "right").
        picks = (np.cumsum(self._probs(), axis=1) <= u[:, None]).sum(axis=1)
        return np.minimum(picks, self._last).tolist()

    def log_prob_grads(self, actions: list[int]) -> np.ndarray:
        """d log p(actions) / d logits, per decision row: onehot(action) - softmax(logits)."""
        grads = -self._probs()  # a new array: the cached softmax stays as it is
        grads[self._rows, actions] += 1.0
        return grads

    def state_dict(self) -> dict:
        return {"logits": [row[:n].tolist() for row, n in zip(self.table, self.sizes)]}

    def load_state_dict(self, state: dict) -> None:
        for row, n, src in zip(self.table, self.sizes, state["logits"]):
            row[:n] = src
        self.updated()


class Reinforce(Searcher):
    name = "reinforce"

    def __init__(self, space: SearchSpace, seed: int, *, learning_rate: float = 0.01,
                 baseline_momentum: float = 0.9, max_trials: int | None = None) -> None:
        learning_rate = check_float("learning_rate", learning_rate, 0.0, 10.0, low_open=True)
        baseline_momentum = check_float("baseline_momentum", baseline_momentum, 0.0, 1.0)
        super().__init__(space, seed, max_trials=max_trials,
                         knobs={"learning_rate": learning_rate,
                                "baseline_momentum": baseline_momentum})
        others = [p.name for p in space if not isinstance(p, Categorical)]
        if others:
            raise UserError(
                f"reinforce handles Categorical parameters only; {others} are not. "
                "Use random, rea, bohb or tpe for numeric hyperparameters"
            )
        self._decisions: list[Categorical] = list(space)
        self.policy = SoftmaxPolicy([len(p.choices) for p in self._decisions], self.rng)
        self.optimizer = Adam([self.policy.table], lr=learning_rate)
        self.baseline = MovingAverageBaseline(baseline_momentum)
        self._actions: dict[Any, list[int]] = {}  # pending trial id -> sampled choice indices

    def _propose(self, trial_id: Any) -> dict:
        actions = self.policy.sample(self.rng)
        # Remembered so that tell need not look each choice up again (a cache: after a restore
        # the actions are recovered from the config instead).
        self._actions[trial_id] = actions
        return {p.name: p.choices[a] for p, a in zip(self._decisions, actions)}

    def _observe(self, record: dict) -> None:
        reward = record["value"]
        if reward is None:  # a failed evaluation says nothing about the policy's choices
            self._actions.pop(record["trial_id"], None)
            return
        actions = self._actions.pop(record["trial_id"], None)
        if actions is None:
            actions = [p.index(record["config"][p.name]) for p in self._decisions]
        self.baseline.update(reward)
        advantage = reward - self.baseline.value()
        # Gradient descent on -advantage * log p: step along -(-advantage * dlogp).
        self.optimizer.step([-advantage * self.policy.log_prob_grads(actions)])
        self.policy.updated()

    def _extra_state(self) -> dict:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "baseline": self.baseline.state_dict()}

    def _load_extra_state(self, extra: dict) -> None:
        self.policy.load_state_dict(extra["policy"])
        self.optimizer.load_state_dict(extra["optimizer"])
        self.baseline.load_state_dict(extra["baseline"])
