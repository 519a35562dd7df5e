"""ASHA as Ray Tune's ``AsyncHyperBandScheduler`` decides it (one bracket, ``stop_last_trials``).

Rungs at ``grace * rf**k`` epochs below ``max_t`` (``brackets.asha_milestones``). When a trial
reports epoch ``e``, the highest rung ``m <= e`` it has not reached before decides: its cutoff is
``np.nanpercentile`` of the values already recorded there at ``(1 - 1/rf) * 100`` (linear
interpolation); the trial stops if its value is strictly below the cutoff, and continues if it
is equal or above, if the rung has no values yet, or if every recorded value is NaN (a NaN
value itself is never below anything, and is recorded). Either way its value is recorded there.
A result at ``max_t`` or later stops the trial without being recorded; ``on_trial_complete``
records a trial's last result at its rung if that rung has not seen it (Ray does the same; only
a rung at ``max_t`` itself can be concerned, and a trial reaching it always stops).

Speed, not a different rule: each rung keeps its non-NaN values sorted (insertion by bisection),
and the percentile is read off with numpy's own arithmetic (``percentile``; a test checks it
against ``np.nanpercentile`` bit for bit, ties included), instead of one numpy call per result.
The cutoff interpolates between two neighbouring recorded values ``a <= b`` and never leaves
``[a, b]`` (a test checks that too), so a value below ``a`` or at least ``b`` is decided without
interpolating (``Rung.cut``, the one decision both hook calls and ``orchestrator.sim_asha`` use).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from .base import CONTINUE, STOP, SimScheduler
from .brackets import asha_milestones


class _Rung:
    __slots__ = ("milestone", "quantile", "seen", "sorted")

    def __init__(self, milestone: int, q: float) -> None:
        self.milestone = milestone
        self.quantile = q / 100          # Ray's percentile q as numpy uses it (q / 100)
        self.seen: set = set()           # trials recorded here through the hooks (Ray's ``recorded``)
        self.sorted: list[float] = []    # the non-NaN values recorded, ascending

    def cut(self, value: float) -> bool:
        """Record ``value`` here; True when it is strictly below the cutoff of the values
        recorded before it (``np.nanpercentile``; never for an empty or all-NaN rung or a NaN
        value, which is not kept: nanpercentile ignores it): ASHA's STOP."""
        if value != value:
            return False
        values = self.sorted
        n = len(values)
        below = False
        if n:
            virtual = (n - 1) * self.quantile  # percentile()'s steps
            lo = int(virtual)
            if lo >= n - 1:
                below = value < values[-1]
            else:
                a, b = values[lo], values[lo + 1]
                below = value < a or (value < b and value < interpolate(a, b, virtual - lo))
        bisect.insort(values, value)
        return below


class ASHA(SimScheduler):
    name = "asha"

    def __init__(self, max_t: int, grace_period: int = 1, reduction_factor: int = 3) -> None:
        super().__init__(max_t)
        self.grace_period = grace_period
        self.reduction_factor = reduction_factor
        q = (1 - 1 / reduction_factor) * 100  # Ray's percentile, in percent
        self._rungs = [_Rung(m, q) for m in asha_milestones(max_t, grace_period, reduction_factor)]

    @property
    def knobs(self) -> dict:
        return {"max_t": self.max_t, "grace_period": self.grace_period,
                "reduction_factor": self.reduction_factor}

    @property
    def milestones(self) -> list[int]:
        """The rungs in epochs, ascending."""
        return [r.milestone for r in reversed(self._rungs)]

    def rungs_by_epoch(self, n_epochs: int) -> list[_Rung | None]:
        """For epochs 0..n_epochs, the rung at that epoch or None (``Rung.cut`` decides there):
        for a loop that shows ASHA only the results it decides on (``orchestrator.sim_asha``)."""
        at: list[_Rung | None] = [None] * (n_epochs + 1)
        for rung in self._rungs:
            if rung.milestone <= n_epochs:
                at[rung.milestone] = rung
        return at

    def on_trial_result(self, tid: Any, epoch: int, value: float) -> str:
        if epoch >= self.max_t:
            return STOP
        return self._on_result(tid, epoch, value)

    def on_trial_complete(self, tid: Any, epoch: int, value: float) -> None:
        self._on_result(tid, epoch, value)

    def _on_result(self, tid: Any, epoch: int, value: float) -> str:
        for rung in self._rungs:  # highest milestone first
            if epoch < rung.milestone or tid in rung.seen:
                continue
            rung.seen.add(tid)
            return STOP if rung.cut(value) else CONTINUE
        return CONTINUE


def percentile(ascending: list[float], q: float) -> float:
    """``np.nanpercentile(ascending, q)`` (method "linear") for a sorted list without NaNs,
    computed with numpy's own floating-point steps (virtual index ``(n - 1) * (q / 100)``, and
    its two-sided linear interpolation), so the result is the same to the last bit."""
    n = len(ascending)
    virtual = (n - 1) * (q / 100)
    if virtual >= n - 1:
        return ascending[-1]
    lo = math.floor(virtual)
    return interpolate(ascending[lo], ascending[lo + 1], virtual - lo)


def interpolate(a: float, b: float, t: float) -> float:
    """numpy's linear interpolation between ``a <= b`` at ``t`` in [0, 1) (its ``_lerp``: from
    the nearer end, so that the result stays within [a, b])."""
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t
