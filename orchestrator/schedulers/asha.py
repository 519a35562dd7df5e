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
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from .base import CONTINUE, STOP, SimScheduler
from .brackets import asha_milestones


class _Rung:
    __slots__ = ("milestone", "q", "seen", "sorted")

    def __init__(self, milestone: int, q: float) -> None:
        self.milestone = milestone
        self.q = q                       # Ray's percentile, in percent
        self.seen: set = set()           # trials recorded here (Ray's ``recorded`` keys)
        self.sorted: list[float] = []    # their non-NaN values, ascending

    def cut(self, tid: Any, value: float) -> bool:
        """Record ``tid``'s ``value`` here; True when it is strictly below the cutoff of the
        values recorded before it (``np.nanpercentile``; never for an empty or all-NaN rung or
        a NaN value): ASHA's STOP."""
        values = self.sorted
        self.seen.add(tid)
        if value != value:  # NaN is recorded by Ray but ignored by nanpercentile
            return False
        below = bool(values) and value < percentile(values, self.q)
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
            return STOP if rung.cut(tid, value) else CONTINUE
        return CONTINUE


def percentile(ascending: list[float], q: float) -> float:
    """``np.nanpercentile(ascending, q)`` (method "linear") for a sorted list without NaNs,
    computed with numpy's own floating-point steps (virtual index ``(n - 1) * q / 100``, and its
    two-sided linear interpolation), so the result is the same to the last bit."""
    n = len(ascending)
    virtual = (n - 1) * (q / 100)
    if virtual >= n - 1:
        return ascending[-1]
    lo = math.floor(virtual)
    a, b = ascending[lo], ascending[lo + 1]
    t = virtual - lo
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t
