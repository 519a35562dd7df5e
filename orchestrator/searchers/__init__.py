"""Multi-trial searchers behind one ask/tell interface, and the registry that builds them by name.

``make_searcher("bohb", space, seed, min_fidelity=1, max_fidelity=12)`` is how the simulator and
the CLI build a searcher: callers pass the fidelity knobs generically and only multi-fidelity
searchers receive them. Modules are imported on first use so that building a random searcher
does not import Optuna or hpbandster.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from spaces.errors import UserError
from spaces.hparams import SearchSpace

from .base import FIDELITY, FINISHED, Searcher

# name -> (module, class); the registry order is the order of SEARCHERS.
_REGISTRY = {
    "random": ("random", "RandomSearch"),
    "rea": ("rea", "RegularizedEvolution"),
    "reinforce": ("reinforce", "Reinforce"),
    "bohb": ("bohb", "BOHB"),
    "tpe": ("tpe", "TPE"),
}
SEARCHERS: tuple[str, ...] = tuple(_REGISTRY)
FIDELITY_KNOBS = ("min_fidelity", "max_fidelity")


def searcher_class(name: str) -> type[Searcher]:
    """The class registered as ``name``; UserError listing the valid names otherwise."""
    if name not in _REGISTRY:
        raise UserError(f"unknown searcher {name!r}; choose one of {', '.join(SEARCHERS)}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def make_searcher(name: str, space: SearchSpace, seed: int, **knobs: Any) -> Searcher:
    """Build searcher ``name``; fidelity knobs are dropped for single-fidelity searchers."""
    cls = searcher_class(name)
    if not cls.multi_fidelity:
        knobs = {k: v for k, v in knobs.items() if k not in FIDELITY_KNOBS}
    params = inspect.signature(cls.__init__).parameters
    valid = [p for p, spec in params.items() if spec.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(knobs) - set(valid))
    if unknown:
        raise UserError(f"searcher {name!r} has no knob(s) {unknown}; its knobs are {valid}")
    return cls(space, seed, **knobs)


__all__ = ["FIDELITY", "FINISHED", "SEARCHERS", "Searcher", "make_searcher", "searcher_class"]
