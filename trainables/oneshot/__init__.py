"""One-shot weight-sharing NAS: one supernet per space, one small strategy per algorithm.

Topology space (``supernet.TopologySupernet``): DARTS-V1/V2, GDAS, SETN, ENAS, RSPS, named by
``ALGORITHMS`` in NATS-Bench's order. Size space (``size_supernet.SizeSupernet``): TAS, FBNet-V2
and TuNAS, ``SIZE_ALGORITHMS`` (NATS-Bench's ``tas``, ``mask_gumbel``, ``mask_rl``).
``SPACE_ALGORITHMS`` maps a space to its algorithms and ``algorithm_space(name)`` an algorithm to
its space; ``JOINT_ALGORITHMS`` the joint hyperparameter-and-architecture searches (AutoHAS on
the topology cell or the MBConv network); ``strategy_class(name)`` imports one on first use (so
that the command line can list them without importing torch). The search loop, checkpoints and
the Ray Tune trainable are in ``search.py``.
"""

from __future__ import annotations

import importlib

from spaces.errors import UserError

# name -> (space, module, class)
_REGISTRY = {
    "darts-v1": ("tss", "darts_v1", "DartsV1"),
    "darts-v2": ("tss", "darts_v2", "DartsV2"),
    "gdas": ("tss", "gdas", "GDAS"),
    "setn": ("tss", "setn", "SETN"),
    "enas": ("tss", "enas", "ENAS"),
    "rsps": ("tss", "rsps", "RSPS"),
    "tas": ("sss", "tas", "TAS"),
    "fbnetv2": ("sss", "fbnetv2", "FBNetV2"),
    "tunas": ("sss", "tunas", "TuNAS"),
}
# Joint hyperparameter-and-architecture search (AutoHAS): kept out of ALGORITHMS, which name the
# architecture-only strategies of each space.
_JOINT = {
    "autohas": ("tss", "autohas", "AutoHAS"),
    "autohas-mbconv": ("mbconv", "autohas", "AutoHASMBConv"),
}
SPACE_ALGORITHMS: dict[str, tuple[str, ...]] = {
    space: tuple(name for name, (s, _, _) in _REGISTRY.items() if s == space) for space in ("tss", "sss")}
ALGORITHMS: tuple[str, ...] = SPACE_ALGORITHMS["tss"]
SIZE_ALGORITHMS: tuple[str, ...] = SPACE_ALGORITHMS["sss"]
JOINT_ALGORITHMS: tuple[str, ...] = tuple(_JOINT)
_REGISTRY.update(_JOINT)


def _check(name: str) -> None:
    if name not in _REGISTRY:
        raise UserError(f"unknown one-shot algorithm {name!r}; choose one of {', '.join(ALGORITHMS)} "
                        f"(topology space), {', '.join(SIZE_ALGORITHMS)} (size space) or {', '.join(JOINT_ALGORITHMS)} "
                        "(joint hyperparameter and architecture search)")


def algorithm_space(name: str) -> str:
    """The space a one-shot algorithm searches: "tss", "sss" (or "mbconv" for autohas-mbconv)."""
    _check(name)
    return _REGISTRY[name][0]


def strategy_class(name: str):
    """The strategy class of a one-shot algorithm; UserError listing the valid names otherwise."""
    _check(name)
    _, module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


__all__ = ["ALGORITHMS", "JOINT_ALGORITHMS", "SIZE_ALGORITHMS", "SPACE_ALGORITHMS", "algorithm_space", "strategy_class"]
