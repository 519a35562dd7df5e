"""What a simulated stopping scheduler is: Ray Tune's ``TrialScheduler`` hooks, on light trial ids.

The simulator's trial loop (``orchestrator.simulator``) plays the part of Ray's TuneController:
it owns the trials' statuses (``status``, as Ray's ``Trial.status``, which schedulers read but
do not set), trains each running trial epoch by epoch and calls, as Ray does,

* ``on_trial_add(tid)`` when a trial is created (status PENDING);
* ``on_trial_result(tid, epoch, value)`` after every epoch but the trial's last -> CONTINUE,
  PAUSE or STOP (the last epoch of a trial is Ray's ``done=True`` result, which Ray never shows
  to ``on_trial_result``);
* ``on_trial_complete(tid, epoch, value)`` when a running trial ends: at its last epoch, or
  right after a STOP decision (Ray's ``stop_trial`` on a RUNNING trial);
* ``on_trial_remove(tid)`` when a PENDING or PAUSED trial is stopped, and ``on_trial_error(tid)``
  when a trial fails (the table has no value for its next epoch);
* ``choose_trial_to_run()`` whenever a worker is free: a PENDING trial or a PAUSED one to resume.

A scheduler may stop trials other than the one reporting (HyperBand stops paused trials when a
rung completes): it appends them to ``stopped``, and the loop ends them right after the call, in
that order, before acting on the returned decision, as Ray's controller does (``stop_trial``
runs inside the scheduler's call there).

A scheduler object serves one run: it remembers every trial it saw.
"""

from __future__ import annotations

from typing import Any, ClassVar

from spaces.errors import UserError

# Ray's TrialScheduler decisions and Trial statuses, with Ray's spelling.
CONTINUE, PAUSE, STOP = "CONTINUE", "PAUSE", "STOP"
PENDING, RUNNING, PAUSED, TERMINATED = "PENDING", "RUNNING", "PAUSED", "TERMINATED"


class SimScheduler:
    """Base: FIFO choice of the next trial (Ray's FIFOScheduler) and no early stopping."""

    name: ClassVar[str] = "fifo"

    def __init__(self, max_t: int) -> None:
        self.max_t = max_t
        self.status: dict[Any, str] = {}   # written by the trial loop only
        self.stopped: list = []            # trials this scheduler stopped during the last call
        self._pending: dict[Any, None] = {}  # PENDING trials, in creation order (the FIFO choice)

    @property
    def knobs(self) -> dict:
        """The settings that decide this scheduler's behaviour (for provenance)."""
        return {"max_t": self.max_t}

    def claim(self) -> None:
        """Called by the loop before a run: a scheduler that already saw trials is refused."""
        if self.status:
            raise UserError(f"this {self.name} scheduler already served a run; build a new one per run "
                            "(orchestrator.schedulers.make_sim_scheduler)")

    # ----- Ray's hooks ---------------------------------------------------------------------
    def on_trial_add(self, tid: Any) -> None:
        self._pending[tid] = None

    def on_trial_result(self, tid: Any, epoch: int, value: float) -> str:
        return CONTINUE

    def on_trial_complete(self, tid: Any, epoch: int, value: float) -> None:
        """A running trial ended (its last epoch, or a STOP decision)."""

    def on_trial_remove(self, tid: Any) -> None:
        self._pending.pop(tid, None)

    def on_trial_error(self, tid: Any) -> None:
        self.on_trial_remove(tid)

    def choose_trial_to_run(self) -> Any | None:
        """Ray's FIFOScheduler: the first PENDING trial in creation order. (Ray's falls back to
        the first PAUSED trial; a scheduler that pauses overrides this choice.)"""
        return next(iter(self._pending), None)

    def next_result(self, tid: Any, epoch: int) -> int:
        """Not a Ray hook: the next epoch after ``epoch`` whose result this scheduler needs to
        see (Ray reports every epoch: ``epoch + 1``). A scheduler that answers later promises,
        for every result of ``tid`` before that epoch: CONTINUE; the same state after a result
        at epoch e as after every result up to e; and, meanwhile, the same answers from its
        hooks with or without those results, except where it first calls ``self.settle()``.
        The trial loop then skips those epochs and delivers their results in one call when
        ``settle`` is called, before the trial's on_trial_error or on_trial_complete, and at
        the run's end (``sim_trials``)."""
        return epoch + 1

    def settle(self) -> None:
        """Not a Ray hook: called by a scheduler before a choice that depends on results it
        let the loop skip (``next_result``); a loop that skips installs its own on the object
        for the run, which delivers the skipped results handled by then."""

    def on_trial_start(self, tid: Any) -> None:
        """Not a Ray hook: the loop started or resumed ``tid`` (its status is now RUNNING)."""
        self._pending.pop(tid, None)
