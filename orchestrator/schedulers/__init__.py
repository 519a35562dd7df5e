"""Stopping schedulers for simulated searches, by name: the decisions of Ray Tune's schedulers,
replayed on a table epoch by epoch (the simulator's trial loop plays Ray's controller).

``make_sim_scheduler("asha", max_t=12)`` builds one for one run; ``"fifo"`` gives None (every
trial trains to its end: the simulator's plain evaluation loop). The knobs are live mode's
(``orchestrator.live.make_scheduler``): grace period 1 epoch and reduction factor 3 by default,
``max_t`` the recipe's epochs.
"""

from __future__ import annotations

from spaces.errors import UserError

from .asha import ASHA
from .base import SimScheduler
from .hyperband import HyperBand

SCHEDULERS: tuple[str, ...] = ("fifo", "asha", "hyperband")


def _whole(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"the scheduler's {name} must be a whole number >= {minimum}, got {value!r}")
    return value


def make_sim_scheduler(name: str, *, max_t: int, grace_period: int = 1,
                       reduction_factor: int = 3) -> SimScheduler | None:
    """The scheduler ``name`` for one simulated run, or None for "fifo".

    ``max_t``: epochs a trial may train (the table's recipe length); ``grace_period``: ASHA's
    first rung in epochs (HyperBand has none: its first rungs come from max_t and the reduction
    factor, so it takes only the neutral 1); ``reduction_factor``: eta, the rung-to-rung ratio.
    """
    if name not in SCHEDULERS:
        raise UserError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    max_t = _whole("max_t", max_t, 1)
    grace_period = _whole("grace_period", grace_period, 1)
    reduction_factor = _whole("reduction_factor", reduction_factor, 2)
    if name == "fifo":
        return None
    if name == "asha":
        if grace_period > max_t:
            raise UserError(f"ASHA's grace period ({grace_period} epochs) must not exceed max_t ({max_t})")
        return ASHA(max_t, grace_period, reduction_factor)
    if grace_period != 1:
        raise UserError(f"HyperBand has no grace period (its first rung is max_t / eta**s), got "
                        f"grace_period={grace_period}; leave it at 1 or use asha")
    return HyperBand(max_t, reduction_factor)


__all__ = ["ASHA", "SCHEDULERS", "HyperBand", "SimScheduler", "make_sim_scheduler"]
