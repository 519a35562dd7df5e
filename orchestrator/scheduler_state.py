"""Stopping schedulers whose state survives ``Tuner.restore``.

Ray Tune saves the searcher and the callbacks with every experiment checkpoint, but not the trial
scheduler: a restored experiment gets the scheduler as it was pickled when the Tuner was made
(``tuner.pkl``), that is empty. A restored ASHA has forgotten every result its rungs recorded, so
the trials it would have stopped train on; a restored HyperBand starts new brackets. A resumed
search would then end differently from an uninterrupted one.

So the scheduler's state travels as the state of a callback (``SchedulerState``), which Ray saves
with each experiment checkpoint and restores before it re-adds the restored trials; the callback
and the scheduler are pickled together in ``tuner.pkl``, so the restored callback holds the very
scheduler the restored experiment runs. The schedulers themselves (``ResumableASHA``,
``ResumableHyperBand``) then take a re-added trial they already know as the one they had:
ASHA keeps it in its bracket, HyperBand puts the new ``Trial`` object in the old one's place
(its brackets hold ``Trial`` objects, and a restored experiment makes new ones).

The classes are made on first use (``ray.tune`` costs ~1 s to import) and registered here, so
that pickling finds them by reference.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

_NAMES = ("ResumableASHA", "ResumableHyperBand", "SchedulerState")


@functools.cache
def _classes() -> dict[str, type]:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler

    class ResumableASHA(ASHAScheduler):
        """ASHA that keeps a restored trial in the bracket its state says it was in."""

        def on_trial_add(self, tune_controller, trial) -> None:
            if trial.trial_id not in self._trial_info:
                super().on_trial_add(tune_controller, trial)

    class ResumableHyperBand(HyperBandScheduler):
        """HyperBand that puts a restored trial's new ``Trial`` object where its old one was."""

        def on_trial_add(self, tune_controller, trial) -> None:
            old = next((t for t in self._trial_info if t.trial_id == trial.trial_id), None)
            if old is None:
                super().on_trial_add(tune_controller, trial)
                return
            bracket, band = self._trial_info.pop(old)
            self._trial_info[trial] = (bracket, band)
            if old in bracket._live_trials:
                bracket._live_trials[trial] = bracket._live_trials.pop(old)
            bracket._all_trials = [trial if t is old else t for t in bracket._all_trials]

    class SchedulerState(tune.Callback):
        """Carries ``scheduler``'s state in the experiment checkpoint (module docstring)."""

        def __init__(self, scheduler) -> None:
            self.scheduler = scheduler

        def get_state(self) -> dict[str, Any]:
            return {"scheduler": dict(self.scheduler.__dict__)}

        def set_state(self, state: dict[str, Any]) -> None:
            self.scheduler.__dict__.update(state["scheduler"])

    made = {"ResumableASHA": ResumableASHA, "ResumableHyperBand": ResumableHyperBand,
            "SchedulerState": SchedulerState}
    for name, cls in made.items():
        cls.__module__, cls.__qualname__ = __name__, name
        setattr(sys.modules[__name__], name, cls)
    return made


def __getattr__(name: str) -> type:
    if name in _NAMES:
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
