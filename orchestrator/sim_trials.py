"""The simulator's trial loop: trials trained epoch by epoch under a stopping scheduler.

``orchestrator.simulator.run_search(..., scheduler=...)`` runs this loop instead of its plain
evaluation loop. It plays the part of Ray Tune's TuneController over W simulated workers, so that
a scheduler from ``orchestrator.schedulers`` makes the decisions Ray's would:

* A trial is one architecture proposed by the searcher, with one training seed drawn as for an
  evaluation; it trains one epoch at a time. Epoch ``e`` costs the increment of NATS-Bench's time
  cost, ``cost[e] - cost[e - 1]`` (``Task.cost``), so a trial trained to ``e`` has been charged
  exactly what one evaluation to ``e`` costs in the plain loop. An epoch without feedback in the
  table fails the trial there, uncharged (as a plain evaluation without data).
* After each epoch but the last the scheduler answers CONTINUE, PAUSE (the worker is freed; the
  trial waits, as in Ray's synchronous HyperBand, until the scheduler marks it to resume) or STOP.
  The last epoch (the recipe's end) completes the trial without a decision, as Ray's ``done``.
* Ray keeps one created-but-unstarted trial ahead of the free workers (a custom searcher gets
  ``max_pending_trials = 1``), and the scheduler assigns that trial to a bracket when it is
  created. So does this loop: the searcher is asked whenever no trial is pending, and a free
  worker runs ``scheduler.choose_trial_to_run()`` (the pending trial, or a paused one to resume).
  At the start W + 1 trials are asked for, as in Ray. Idealised against Ray: starting a trial
  takes no time and each free worker takes the scheduler's choice at once (Ray's actors start
  asynchronously).
* The searcher is told once per trial, when it ends: its value at the last epoch trained, with
  fidelity = epochs trained (as live mode's ``TuneSearcher`` with ``fidelity_key``); a failed
  trial is told as an error. One deliberate difference from live mode: a trial that HyperBand
  stops while it is paused is told its last value here, while Ray completes such a trial without
  a result (so live mode's adapter tells it as an error).

Rows: one per ended trial (stopped, completed or failed), at the simulated time it ended, with
fidelity = epochs trained and feedback = its value there; trials still running or paused when
the run ends are dropped, as the plain loop drops evaluations in flight. The run ends as the
plain one: at the first row at or past a time budget (no trial is created after the budget, but
started ones go on until one ends), at N rows for an evaluation budget, or when the searcher is
finished and nothing is left to run.

Incumbent: the rule the plain loop uses (``incumbent="nats"``: the best feedback over all rows,
as NATS-Bench's trajectories, which for BOHB mix fidelities too), so a scheduler run and a FIFO
or BOHB run are compared by one rule. A stopped trial's feedback is an early-epoch value, lower
than it would be at the end on nearly every learning curve, so this rule favours trials trained
longer without forbidding a short one that truly led. ``incumbent="searcher"`` is live mode's
``best_trial`` rule: ``Searcher.best()``, the best value among the trials trained the most epochs.

Speed, with the same decisions and rows. ``run_trials`` drives any ``SimScheduler`` through its
hooks. It queues one event per epoch, except where the scheduler asks for a trial's next result
later than the next epoch (``SimScheduler.next_result``; HyperBand: its bracket's budget): the
epochs in between are skipped (their times summed into the next event's, one by one), the order
of simultaneous events is the per-epoch loop's (``orchestrator.sim_order``), and the results the
scheduler would have seen there are delivered in one call when it needs them (``settle``, before
the trial's error or completion, at the run's end). Our own ASHA (exactly ``schedulers.ASHA``)
runs in ``orchestrator.sim_asha``, which also leaves out the hooks ASHA answers trivially. The
tests hold every skipping loop to the per-epoch one (rows and scheduler state), and drive Ray's
schedulers epoch by epoch through this loop.
"""

from __future__ import annotations

import bisect
import heapq
import time
from typing import Any

import numpy as np

from orchestrator.records import Observation, to_suggestion
from orchestrator.schedulers.asha import ASHA
from orchestrator.schedulers.base import (
    CONTINUE,
    PAUSE,
    PAUSED,
    PENDING,
    RUNNING,
    STOP,
    TERMINATED,
    SimScheduler,
)
from orchestrator.searchers.base import FIDELITY
from orchestrator.sim_order import ARCH, EPOCH, SEED, START, TID, EventOrder
from spaces import UserError

_new_tuple = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)
_perf = time.perf_counter


class _Trial:
    """A trial of the per-epoch loop: its key ``(trial id, arch, seed position)`` from
    ``SearcherLink`` (seed None: the table has no seed for it) and how far it got."""

    __slots__ = ("tid", "arch", "seed", "epochs", "value", "spent")

    def __init__(self, key: tuple) -> None:
        self.tid, self.arch, self.seed = key
        self.epochs = 0          # epochs trained so far (shown to the scheduler)
        self.value = np.nan      # feedback after the last of them (NaN: failed)
        self.spent = 0.0         # the time cost (Task.cost) at its queued event's epoch


class SearcherLink:
    """What a trial loop asks of the searcher and tells it, for one run.

    ``next(now)`` asks (timed into the rows' searcher column) for trial id "0", "1", ... and
    returns the new trial as ``(trial id, arch, seed position)``, the seed drawn as for an
    evaluation (None where the table has none; the loops read the table cell by cell with
    ``ndarray.item``, so no per-trial curves are built), or None: when the searcher is finished
    (``finished``), the run's trial or time limit is reached (nothing is asked then), or the
    searcher answered None (``answered_none``: nothing until a result comes back; it is asked
    again next time). ``tell(...)`` tells it an ended trial and records its row.
    """

    __slots__ = ("table", "ask", "marker", "rows", "rng", "arch_of", "draw_seed", "limit_s", "limit_n",
                 "past_budget", "created", "told", "finished", "answered_none")

    def __init__(self, table, searcher, rows, rng: np.random.Generator, limit_s: float, limit_n: int,
                 past_budget: bool) -> None:
        self.table, self.ask, self.marker = table, searcher.ask, getattr(searcher, "FINISHED", None)
        self.rows, self.rng, self.arch_of, self.draw_seed = rows, rng, rows.arch_of, table.draw_seed
        self.limit_s, self.limit_n, self.past_budget = limit_s, limit_n, past_budget
        self.created = 0
        self.told = 0  # rows recorded
        self.finished = False
        self.answered_none = False

    def next(self, now: float) -> tuple | None:
        created = self.created
        if self.finished or created >= self.limit_n or not (now < self.limit_s or self.past_budget):
            return None
        tid = str(created)
        t0 = _perf()
        answer = self.ask(tid)
        self.rows.searcher_s += _perf() - t0
        if answer is None:
            self.answered_none = True
            return None
        self.answered_none = False
        if answer is self.marker or isinstance(answer, str):
            self.finished = True
            return None
        # A scheduled trial trains to the scheduler's end whatever fidelity was asked for, so
        # only the config matters (to_suggestion splits a fidelity key off, when there is one).
        arch = self.arch_of(to_suggestion(tid, answer).config if FIDELITY in answer else answer)
        self.created = created + 1
        return tid, arch, self.draw_seed(arch, self.rng)

    def stuck(self, now: float) -> bool:
        """Whether a searcher that proposed nothing (None) leaves a run with nothing to run."""
        return not self.finished and self.created < self.limit_n and (now < self.limit_s or self.past_budget)

    def tell(self, tid: Any, arch: int, epochs: int, value: float, now: float) -> bool:
        """Tell the searcher and record the row of a trial that ended after ``epochs`` epochs
        with ``value`` (NaN: failed); True when the run ends there."""
        rows = self.rows
        if self.past_budget and rows.too_far(now):
            return True
        ok = value == value
        obs = _new_tuple(Observation, (tid, value if ok else None, "ok" if ok else "error", epochs or None))
        self.told += 1
        return rows.tell(obs, arch, now, epochs) or self.told >= self.limit_n


def nothing_proposed(searcher_name: str) -> UserError:
    return UserError(f"searcher {searcher_name} proposed nothing while no trial was running; it cannot make "
                     "progress")


def run_trials(table, searcher, scheduler, rows, rng: np.random.Generator, workers: int,
               limit_s: float, limit_n: int, past_budget: bool) -> None:
    """Run the loop, appending rows to ``rows`` (``simulator._Trajectory``)."""
    link = SearcherLink(table, searcher, rows, rng, limit_s, limit_n, past_budget)
    if type(scheduler) is ASHA:
        from orchestrator.sim_asha import run_asha

        return run_asha(link, scheduler, workers, type(searcher).__name__)
    n_epochs = table.num_epochs
    feedback, cost = table.feedback.item, table.cost.item  # (arch, seed, epoch) -> float
    status = scheduler.status
    on_result = scheduler.on_trial_result
    # Epochs between the results a scheduler asks for (SimScheduler.next_result) are skipped:
    # their times summed into the next event's, their order recovered by EventOrder, and the
    # results the scheduler would have seen there delivered in one call when it needs them.
    own = getattr(type(scheduler), "next_result", SimScheduler.next_result)
    skipping = own is not SimScheduler.next_result
    next_result = scheduler.next_result if skipping else None
    order = EventOrder(table)
    trials: dict[Any, _Trial] = {}
    inflight: dict[Any, tuple] = {}  # while skipping: trial -> (its queued event, its skipped epochs' times)
    heap: list[tuple] = []
    heappush, heappop = heapq.heappush, heapq.heappop
    running = 0
    pending: Any | None = None
    now = 0.0
    seq = 0
    current = None  # the event being handled (None: the first fill)

    def create() -> Any | None:
        """Ask for the next trial and add it to the scheduler (PENDING); its id, or None."""
        key = link.next(now)
        if key is None:
            return None
        tid = key[0]
        trials[tid] = _Trial(key)
        status[tid] = PENDING
        scheduler.on_trial_add(tid)
        return tid

    def train(trial: _Trial) -> None:
        """Queue the trial's next event, training from now: the next result the scheduler asks
        for (the next epoch when not skipping), or the first epoch without feedback. The queue
        holds sim_order's event tuples; seq is unique and increasing."""
        nonlocal seq
        tid, a, s, j = trial.tid, trial.arch, trial.seed, trial.epochs
        if s is None:  # no seed: it fails at its first epoch, uncharged
            heappush(heap, (now + 0.0, seq, tid, a, s, 1, np.nan, current, 0))
            seq += 1
            return
        m = min(max(next_result(tid, j), j + 1), n_epochs) if skipping else j + 1
        if m == j + 1:  # one epoch, as the per-epoch loop trains it (sim_order.epoch_step)
            value = feedback(a, s, j)
            if value == value:
                after = cost(a, s, j)
                step = after - trial.spent if j else after
                if not step >= 0.0 and skipping:
                    to_steps()
                trial.spent = after
                ev = (now + step, seq, tid, a, s, j + 1, value, current, j)
            else:  # no feedback for it: the trial fails there, uncharged
                ev = (now + 0.0, seq, tid, a, s, j + 1, value, current, j)
            heappush(heap, ev)
            seq += 1
            return
        t = now
        before = trial.spent
        times = []
        for i in range(j, m):
            value = feedback(a, s, i)
            if value != value:  # no feedback for epoch i + 1: the trial fails there, uncharged
                ev = (t + 0.0, seq, tid, a, s, i + 1, value, current, j)
                break
            after = cost(a, s, i)
            step = after - before if i else after
            if not step >= 0.0:
                if i > j:  # stop before it: the event of epoch i queues this step itself
                    ev = (t, seq, tid, a, s, i, feedback(a, s, i - 1), current, j)
                    break
                to_steps()
                ev = (t + step, seq, tid, a, s, j + 1, value, current, j)
                before = after
                break
            before = after
            t += step
            if i + 1 < m:
                times.append(t)
        else:
            ev = (t, seq, tid, a, s, m, value, current, j)
        trial.spent = before  # the time cost at the event's epoch
        heappush(heap, ev)
        seq += 1
        if ev[EPOCH] > j + 1:
            inflight[tid] = (ev, times)

    def tell_skipped(trial: _Trial, h: int) -> None:
        """Deliver the results the trial's skipped epochs up to ``h`` would have given, in one
        (the scheduler promises the same state and a CONTINUE)."""
        if h > trial.epochs:
            trial.epochs, trial.value = h, feedback(trial.arch, trial.seed, h - 1)
            action = on_result(trial.tid, h, trial.value)
            if action != CONTINUE:  # pragma: no cover - a scheduler breaking next_result's promise
                raise ValueError(f"scheduler {scheduler.name} answered {action!r} before the epoch it asked for")

    def catch_up() -> None:
        """Bring the scheduler to the per-epoch loop's state: the skipped epochs of running
        trials handled by now (``current`` included) delivered as results."""
        for tid, (ev, times) in inflight.items():
            k = bisect.bisect_left(times, now)
            first = ev[START] + 1
            while k < len(times) and times[k] == now and order.handled((ev, first + k), current):
                k += 1
            tell_skipped(trials[tid], ev[START] + k)

    def to_steps() -> None:
        """Go on epoch by epoch (see sim_asha): the scheduler and the queue brought to the
        per-epoch loop's state."""
        nonlocal seq, skipping
        catch_up()
        inflight.clear()
        seq = order.to_steps(heap, current)
        skipping = False
        for ev in heap:  # cut chains: the time cost at their new epochs
            if ev[SEED] is not None:
                trials[ev[TID]].spent = cost(ev[ARCH], ev[SEED], ev[EPOCH] - 1)

    def end(trial: _Trial) -> bool:
        """End a trial (RUNNING, or PAUSED and stopped); True when the run ends."""
        nonlocal running
        tid = trial.tid
        if status[tid] == RUNNING:
            running -= 1
        status[tid] = TERMINATED
        return link.tell(tid, trial.arch, trial.epochs, trial.value, now)

    def end_stopped() -> bool:
        """End the trials the scheduler stopped during its last call (it has), in its order."""
        stopped, scheduler.stopped = scheduler.stopped, []
        return any(end(trials[t]) for t in stopped)

    def loop() -> None:
        nonlocal running, pending, now, current
        while True:
            # Fill free workers with the scheduler's choice, keeping one trial pending (as Ray does).
            asked_none = False
            while running < workers:
                if pending is None and not asked_none:
                    pending = create()
                    asked_none = pending is None
                tid = scheduler.choose_trial_to_run()
                if tid is None:
                    break
                if tid == pending:
                    pending = None
                status[tid] = RUNNING
                running += 1
                scheduler.on_trial_start(tid)
                train(trials[tid])
            if pending is None and not asked_none:
                pending = create()
            if skipping and pending is None and link.answered_none:
                to_steps()  # the per-epoch loop asks again after every epoch now
            if not heap:
                if pending is None and link.stuck(now):
                    raise nothing_proposed(type(searcher).__name__)
                return None
            ev = heappop(heap)
            if skipping and heap and heap[0][0] == ev[0]:
                ev = order.first_of_ties(heap, ev)
            now, _, tid, _, _, epoch, value, _, _ = current = ev
            trial = trials[tid]
            if skipping:
                inflight.pop(tid, None)
            # Ray tells the searcher about trials the scheduler stopped inside its call before the
            # trial whose end caused the call: hence end_stopped() first, every time.
            if value != value:  # no feedback for this epoch: the trial fails here
                tell_skipped(trial, epoch - 1)
                trial.value = np.nan
                scheduler.on_trial_error(tid)
                if (scheduler.stopped and end_stopped()) or end(trial):
                    return None
                continue
            if epoch >= n_epochs:  # the recipe's end: Ray's done=True, no decision asked
                tell_skipped(trial, epoch - 1)
                trial.epochs, trial.value = epoch, value
                scheduler.on_trial_complete(tid, epoch, value)
                if (scheduler.stopped and end_stopped()) or end(trial):
                    return None
                continue
            trial.epochs, trial.value = epoch, value
            action = on_result(tid, epoch, value)
            if scheduler.stopped and end_stopped():
                return None
            if action == CONTINUE:
                train(trial)
            elif action == PAUSE:
                status[tid] = PAUSED
                running -= 1
            elif action == STOP:
                scheduler.on_trial_complete(tid, epoch, value)
                if (scheduler.stopped and end_stopped()) or end(trial):
                    return None
            else:  # pragma: no cover - a scheduler bug, not a user error
                raise ValueError(f"scheduler {scheduler.name} answered {action!r}")

    if skipping:
        scheduler.settle = catch_up  # for this run (the class's own settle does nothing)
    try:
        loop()
    finally:
        scheduler.__dict__.pop("settle", None)
    if inflight:  # leave the scheduler as the per-epoch loop does at the run's end
        catch_up()
