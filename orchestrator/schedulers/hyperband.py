"""HyperBand as Ray Tune's ``HyperBandScheduler`` decides it (synchronous, ``stop_last_trials``).

Trials join brackets in creation order: a band (HyperBand round) has ``S = round(log_eta(max_t))
+ 1`` brackets, opened with s = 0, 1, ..., S - 1 halvings (``brackets.ray_bracket``; s = 0 first:
every trial to ``max_t``), and a new trial joins the newest bracket unless that bracket holds its
rung size of live trials, in which case the next bracket (or band) opens. Inside a bracket a
trial trains until the rung budget, then PAUSEs until every live trial of the bracket has reached
it; the last one to arrive triggers successive halving: the best ``ceil(n / eta)`` by their latest
value (``brackets.keep_best(..., ties="later")``) are marked to resume, the others stop (a paused
one at once, the reporting one by the STOP it gets back). At the last rung the bracket finishes:
its paused trials stop and the reporting one stops. A trial that ends by itself (its last epoch)
or fails leaves its bracket, which is then re-examined if it has never halved. A free worker
takes ``choose_trial_to_run``: bands in order, within a band the brackets by Ray's completion
percentage (``brackets.ray_total_work``), within a bracket its trials in joining order, the first
that is PENDING or PAUSED and marked to resume.

These are Ray's rules, quirks included, because the simulated run must make Ray's decisions:

* "live" trials are those that joined and have not ended: a bracket's size counts only them, so
  a bracket whose trials end by themselves takes new trials again. With few workers the first
  bracket (s = 0) never fills: with ``W + 1 <= S`` (W workers plus Ray's one pending trial, see
  the simulator) every trial trains to ``max_t``, i.e. HyperBand is FIFO there, exactly as in Ray.
* a bracket's last budget is ``r0 * eta**s`` capped at ``max_t``, which can stay below it (max_t
  12, eta 3: the s = 2 bracket ends at 9 epochs).
* once a bracket has halved, a trial leaving it no longer triggers a halving (Ray's
  ``is_being_processed`` is never reset); only results do. So when the last trial a rung waits
  for fails, the trials paused there wait for good (they end with the run, without a row).
"""

from __future__ import annotations

from typing import Any

from spaces.errors import UserError

from .base import CONTINUE, PAUSE, PAUSED, PENDING, RUNNING, STOP, SimScheduler
from .brackets import Bracket, keep_best, ray_bracket, ray_num_brackets, ray_total_work


class _Bracket:
    """One bracket's live trials and its current rung (Ray's ``_Bracket``)."""

    __slots__ = ("plan", "rung", "budget", "size", "last_rung", "epoch", "value", "reached", "progress",
                 "total_work", "resume", "halved")

    def __init__(self, plan: Bracket, total_work: int) -> None:
        self.plan = plan
        self.epoch: dict[Any, int] = {}      # live trial -> last epoch reported (0: none yet)
        self.value: dict[Any, float] = {}    # live trial -> its value there
        self.progress = 0                    # epochs reported by all trials, ever
        self.total_work = total_work
        self.resume: set = set()             # promoted trials to resume (Ray's trials_to_unpause)
        self.halved = False                  # Ray's is_being_processed
        self.enter(0)

    def enter(self, rung: int) -> None:
        """Move to ``rung``: its budget and size (kept as attributes: read after every epoch)."""
        self.rung = rung
        self.budget, self.size = self.plan.budgets[rung], self.plan.sizes[rung]
        self.last_rung = rung == len(self.plan.budgets) - 1
        self.reached = sum(e >= self.budget for e in self.epoch.values())  # live trials at the budget

    def report(self, t: Any, epoch: int, value: float) -> None:
        """A result of live trial ``t``."""
        before = self.epoch[t]
        self.progress += epoch - before
        self.epoch[t], self.value[t] = epoch, value
        if before < self.budget <= epoch:
            self.reached += 1

    def leave(self, t: Any) -> None:
        """``t`` ends or is stopped: it is no longer live here."""
        epoch = self.epoch.pop(t, None)
        if epoch is not None:
            self.value.pop(t, None)
            if epoch >= self.budget:
                self.reached -= 1

    def filled(self) -> bool:
        return len(self.epoch) == self.size

    def rung_done(self) -> bool:
        """Every live trial has reached the rung's budget."""
        return self.reached == len(self.epoch)

    def finished(self) -> bool:
        return self.last_rung and self.reached == len(self.epoch)

    def completion(self) -> float:
        if self.last_rung and self.reached == len(self.epoch):
            return 1.0
        return min(self.progress / self.total_work, 1.0)


class HyperBand(SimScheduler):
    name = "hyperband"

    def __init__(self, max_t: int, reduction_factor: int = 3) -> None:
        super().__init__(max_t)
        self.reduction_factor = eta = reduction_factor
        self._n_brackets = ray_num_brackets(max_t, eta)
        self._plans = [ray_bracket(max_t, eta, s) for s in range(self._n_brackets)]
        self._work = [None if p is None else ray_total_work(p, max_t, eta) for p in self._plans]
        self._bands: list[list[_Bracket | None]] = [[]]
        self._active = [self._bands[0]]  # bands that may still hold live trials, in order
        self._current: _Bracket | None = None
        self._of: dict[Any, _Bracket] = {}

    @property
    def knobs(self) -> dict:
        return {"max_t": self.max_t, "reduction_factor": self.reduction_factor}

    # ----- joining a bracket ----------------------------------------------------------------
    def on_trial_add(self, tid: Any) -> None:
        if self._current is None or self._current.filled():
            while True:
                band = self._bands[-1]
                if len(band) == self._n_brackets:
                    band = []
                    self._bands.append(band)
                    self._active.append(band)
                s = len(band)
                plan = self._plans[s]
                bracket = None if plan is None else _Bracket(plan, self._work[s])
                band.append(bracket)
                self._current = bracket
                if bracket is not None:
                    break
        self._current.epoch[tid] = 0
        self._of[tid] = self._current

    # ----- results ----------------------------------------------------------------------------
    def on_trial_result(self, tid: Any, epoch: int, value: float) -> str:
        bracket = self._of[tid]
        bracket.report(tid, epoch, value)
        if bracket.resume:
            bracket.resume.discard(tid)
        if epoch < bracket.budget:
            return CONTINUE
        return self._process(bracket, tid)

    def next_result(self, tid: Any, epoch: int) -> int:
        """The bracket's budget: a result before it only counts toward the bracket's progress
        (CONTINUE; results add up), and the budget cannot change while a trial trains toward
        it (a rung is done only when every live trial has reached it)."""
        return self._of[tid].budget

    def _process(self, bracket: _Bracket, current: Any | None) -> str:
        """Ray's ``_process_bracket``: halve or finish a bracket whose rung is done."""
        action = PAUSE
        if not bracket.rung_done():
            return action
        if bracket.finished():
            for t in list(bracket.epoch):
                if self.status[t] == PAUSED:
                    self._stop(bracket, t)
            return STOP
        bracket.halved = True
        bracket.enter(bracket.rung + 1)
        good, bad = keep_best(list(bracket.epoch), bracket.value.__getitem__, bracket.size, ties="later")
        for t in bad:
            action = self._drop(bracket, t, current, action)
        for t in good:
            if bracket.epoch[t] < bracket.budget:
                if self.status[t] == PAUSED:
                    bracket.resume.add(t)
                elif t == current:
                    action = CONTINUE
            elif bracket.finished():
                action = self._drop(bracket, t, current, action)
        return action

    def _drop(self, bracket: _Bracket, t: Any, current: Any | None, action: str) -> str:
        state = self.status[t]
        if state == PAUSED:
            self._stop(bracket, t)
            return action
        if state == RUNNING and t == current:
            bracket.leave(t)
            return STOP
        raise UserError(f"internal error: HyperBand would stop trial {t} while it is {state}; "
                        "Ray's scheduler cannot be in this state either, please report it")

    def _stop(self, bracket: _Bracket, t: Any) -> None:
        # Ray's controller.stop_trial on a paused trial: the scheduler's on_trial_remove runs
        # inside this call; the bracket is halving or finished, so that only removes the trial.
        bracket.leave(t)
        self.stopped.append(t)

    # ----- trials that end -------------------------------------------------------------------
    def on_trial_complete(self, tid: Any, epoch: int, value: float) -> None:
        self.on_trial_remove(tid)

    def on_trial_remove(self, tid: Any) -> None:
        bracket = self._of[tid]
        bracket.leave(tid)
        if not bracket.finished() and not bracket.halved:
            self._process(bracket, None)

    # ----- which trial runs next --------------------------------------------------------------
    def choose_trial_to_run(self) -> Any | None:
        """Ray's choice: bands in order; in a band, its brackets sorted by completion (stable),
        the first PENDING or resumable trial of the first bracket that has one; that is, of the
        brackets with such a trial, the least complete (the first of equals)."""
        status, active, newest = self.status, self._active, self._bands[-1]
        i = 0
        while i < len(active):
            band = active[i]
            # Brackets without live trials cannot offer one; leaving them out of the stable sort
            # keeps the others' order. Only the newest band takes new trials, so an older band
            # without live trials is done for good and is no longer visited.
            live = [b for b in band if b is not None and b.epoch]
            if not live and band is not newest:
                del active[i]
                continue
            offers = []  # (bracket, its first trial to run), in the band's order
            for bracket in live:
                resume = bracket.resume
                for t in bracket.epoch:
                    state = status[t]
                    if state == PENDING or (state == PAUSED and t in resume):
                        offers.append((bracket, t))
                        break
            if len(offers) == 1:
                return offers[0][1]
            if offers:
                self.settle()  # completion counts every epoch reported, skipped ones too
                return min(offers, key=lambda offer: offer[0].completion())[1]
            i += 1
        return None
