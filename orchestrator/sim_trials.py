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

Speed: ``run_trials`` drives any ``SimScheduler`` through its hooks, one event per epoch. Our own
ASHA (exactly ``schedulers.ASHA``) runs in ``orchestrator.sim_asha`` instead: the same decisions
and rows, with a trial's epochs between two rungs skipped (ASHA decides only at its rungs) and
the hooks it would answer trivially left out; the tests prove both loops identical, tie order
included, and drive Ray's schedulers through this one.
"""

from __future__ import annotations

import heapq
import time
from typing import Any

import numpy as np

from orchestrator.records import Observation, to_suggestion
from orchestrator.schedulers.asha import ASHA
from orchestrator.schedulers.base import CONTINUE, PAUSE, PAUSED, PENDING, RUNNING, STOP, TERMINATED
from orchestrator.searchers.base import FIDELITY
from spaces import UserError

_new_tuple = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)
_perf = time.perf_counter


class _Trial:
    """A trial of the per-epoch loop: its key ``(trial id, arch, seed position)`` from
    ``SearcherLink`` (seed None: the table has no seed for it) and how far it got."""

    __slots__ = ("tid", "arch", "seed", "epochs", "value", "spent")

    def __init__(self, key: tuple) -> None:
        self.tid, self.arch, self.seed = key
        self.epochs = 0          # epochs trained so far
        self.value = np.nan      # feedback after the last of them (NaN: failed)
        self.spent = 0.0         # the time cost of those epochs (Task.cost), read from the table


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
    trials: dict[Any, _Trial] = {}
    heap: list[tuple] = []
    heappush, heappop = heapq.heappush, heapq.heappop
    on_result = scheduler.on_trial_result
    running = 0
    pending: Any | None = None
    now = 0.0
    seq = 0

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

    def train_next_epoch(trial: _Trial) -> None:
        # The queue holds (time, seq, trial, epoch, value): seq is unique and increasing, so
        # events at equal times come out in the order they were queued.
        nonlocal seq
        e = trial.epochs  # 0-based index of the epoch to train
        a, s = trial.arch, trial.seed
        value = np.nan if s is None else feedback(a, s, e)
        step = 0.0
        if value == value:  # sim_order.epoch_step, with cost(a, s, e - 1) kept from the last epoch
            after = cost(a, s, e)
            step = after - trial.spent if e else after
            trial.spent = after
        heappush(heap, (now + step, seq, trial, e + 1, value))
        seq += 1

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
            train_next_epoch(trials[tid])
        if pending is None and not asked_none:
            pending = create()
        if not heap:
            if pending is None and link.stuck(now):
                raise nothing_proposed(type(searcher).__name__)
            return None
        now, _, trial, epoch, value = heappop(heap)
        tid = trial.tid
        # Ray tells the searcher about trials the scheduler stopped inside its call before the
        # trial whose end caused the call: hence end_stopped() first, every time.
        if value != value:  # no feedback for this epoch: the trial fails here
            trial.value = np.nan
            scheduler.on_trial_error(tid)
            if (scheduler.stopped and end_stopped()) or end(trial):
                return None
            continue
        trial.epochs, trial.value = epoch, value
        if epoch >= n_epochs:  # the recipe's end: Ray's done=True, no decision asked
            scheduler.on_trial_complete(tid, epoch, value)
            if (scheduler.stopped and end_stopped()) or end(trial):
                return None
            continue
        action = on_result(tid, epoch, value)
        if scheduler.stopped and end_stopped():
            return None
        if action == CONTINUE:
            train_next_epoch(trial)
        elif action == PAUSE:
            status[tid] = PAUSED
            running -= 1
        elif action == STOP:
            scheduler.on_trial_complete(tid, epoch, value)
            if (scheduler.stopped and end_stopped()) or end(trial):
                return None
        else:  # pragma: no cover - a scheduler bug, not a user error
            raise ValueError(f"scheduler {scheduler.name} answered {action!r}")
