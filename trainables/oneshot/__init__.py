"""One-shot weight-sharing NAS on the topology space: one supernet, one small strategy per algorithm.

``ALGORITHMS`` names them in NATS-Bench's order; ``strategy_class(name)`` imports one on first use
(so that the command line can list them without importing torch). The search loop, checkpoints
and the Ray Tune trainable are in ``search.py``; the supernet in ``supernet.py``.
"""

from __future__ import annotations

import importlib

from spaces.errors import UserError

# name -> (module, class)
_REGISTRY = {
    "darts-v1": ("darts_v1", "DartsV1"),
    "darts-v2": ("darts_v2", "DartsV2"),
    "gdas": ("gdas", "GDAS"),
    "setn": ("setn", "SETN"),
    "enas": ("enas", "ENAS"),
    "rsps": ("rsps", "RSPS"),
}
ALGORITHMS: tuple[str, ...] = tuple(_REGISTRY)


def strategy_class(name: str):
    """The strategy class of a one-shot algorithm; UserError listing the valid names otherwise."""
    if name not in _REGISTRY:
        raise UserError(f"unknown one-shot algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


__all__ = ["ALGORITHMS", "strategy_class"]
