"""Regularized (aging) evolution, Real et al. 2019, with NATS-Bench's settings.

The population is the ``population_size`` most recent successful evaluations; a child is a
single-decision mutation of the best of ``sample_size`` members drawn with replacement; the
oldest member dies when a child joins.

Mutation (``mutation="nats"``, the default) as NATS-Bench's ``exps/NATS-algos/regularized_ea.py``
(``mutate_topology_func`` / ``mutate_size_func``): on the topology space a *node* is drawn
uniformly, then one of its incoming edges, and that edge gets a different op — so edge 1<-0
changes with p=1/3, each node-2 edge with 1/6, each node-3 edge with 1/9; on the size space a
layer is drawn uniformly and gets a channel count drawn among *all* candidates, so the child may
equal its parent (p=1/8). ``mutation="uniform"`` picks one decision uniformly and always changes
it (``SearchSpace.mutate``). Ageing rather than killing the
worst keeps the search from clinging to one lucky early result.

Asynchronous use: until the population is full every ask is a random draw, so with several
workers a few more random configs than ``population_size`` may be evaluated. A failed child
never joins the population.
"""

from __future__ import annotations

import re
from collections import deque
from functools import lru_cache
from typing import Any

import numpy as np

from spaces.errors import UserError
from spaces.hparams import SearchSpace

from .base import Searcher, check_int

MUTATIONS = ("nats", "uniform")
_EDGE = re.compile(r"^edge_(\d+)_(\d+)$")


@lru_cache(maxsize=16)
def _mutation_plan(space: SearchSpace) -> tuple[str, Any]:
    """How ``nats_mutate`` mutates ``space``, worked out once per space (not once per child):
    ("cell", [incoming edge names per node, nodes ascending]), ("size", names) or ("other", None)."""
    edges = [(_EDGE.match(n), n) for n in space.names]
    if all(m for m, _ in edges):
        nodes = sorted({int(m.group(1)) for m, _ in edges})
        return "cell", [[n for m, n in edges if int(m.group(1)) == node] for node in nodes]
    if all(n.startswith("channels_") for n in space.names):
        return "size", list(space.names)
    return "other", None


def nats_mutate(space: SearchSpace, config: dict, rng: np.random.Generator) -> dict:
    """NATS-Bench's REA mutation (see the module docstring); other spaces: ``space.mutate``."""
    kind, plan = _mutation_plan(space)
    child = dict(config)
    if kind == "cell":  # a cell: node first, then one of its incoming edges
        incoming = plan[int(rng.integers(len(plan)))]
        name = incoming[int(rng.integers(len(incoming)))]
        child[name] = space[name].mutate(config[name], rng)
        return child
    if kind == "size":  # the size space: any candidate
        name = plan[int(rng.integers(len(plan)))]
        choices = space[name].choices
        child[name] = choices[int(rng.integers(len(choices)))]
        return child
    return space.mutate(config, rng)


class RegularizedEvolution(Searcher):
    name = "rea"

    def __init__(self, space: SearchSpace, seed: int, *, population_size: int = 10,
                 sample_size: int = 3, mutation: str = "nats", max_trials: int | None = None) -> None:
        population_size = check_int("population_size", population_size, 1)
        sample_size = check_int("sample_size", sample_size, 1)
        if mutation not in MUTATIONS:
            raise UserError(f"knob mutation must be one of {MUTATIONS}, got {mutation!r}")
        super().__init__(space, seed, max_trials=max_trials,
                         knobs={"population_size": population_size, "sample_size": sample_size,
                                "mutation": mutation})
        self._mutate = nats_mutate if mutation == "nats" else (lambda sp, cfg, rng: sp.mutate(cfg, rng))
        self.population_size = population_size
        self.sample_size = sample_size
        self._population: deque[tuple[dict, float]] = deque(maxlen=population_size)

    def _propose(self, trial_id: Any) -> dict:
        if len(self._population) < self.population_size:
            return self.space.sample(self.rng)
        picks = self.rng.integers(len(self._population), size=self.sample_size)
        # Ties go to the earliest pick, so the choice depends on the rng only.
        parent = max((self._population[int(i)] for i in picks), key=lambda member: member[1])
        return self._mutate(self.space, parent[0], self.rng)

    def _observe(self, record: dict) -> None:
        if record["value"] is not None:
            self._population.append((record["config"], record["value"]))  # maxlen ages out

    def _extra_state(self) -> dict:
        return {"population": [[c, v] for c, v in self._population]}

    def _load_extra_state(self, extra: dict) -> None:
        self._population = deque(((c, v) for c, v in extra["population"]),
                                 maxlen=self.population_size)
