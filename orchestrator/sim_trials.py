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
"""

from __future__ import annotations

import heapq
import time
from typing import Any

import numpy as np

from orchestrator.records import Event, Observation, to_suggestion
from orchestrator.schedulers.base import CONTINUE, PAUSE, PAUSED, PENDING, RUNNING, STOP, TERMINATED
from spaces import UserError


class _Trial:
    __slots__ = ("arch", "feedback", "cost", "epochs", "value")

    def __init__(self, arch: int, feedback: list[float] | None, cost: list[float] | None) -> None:
        self.arch = arch
        self.feedback, self.cost = feedback, cost  # the drawn seed's curves (None: no seed)
        self.epochs = 0          # epochs trained so far
        self.value = np.nan      # feedback after the last of them (NaN: failed)


def run_trials(table, searcher, scheduler, rows, rng: np.random.Generator, workers: int,
               limit_s: float, limit_n: int, past_budget: bool) -> dict[Any, _Trial]:
    """Run the loop, appending rows to ``rows`` (``simulator._Trajectory``); returns the trials."""
    feedback, cost, n_epochs = table.feedback, table.cost, table.num_epochs
    ask, arch_of, draw_seed = searcher.ask, rows.arch_of, table.draw_seed
    marker = getattr(searcher, "FINISHED", None)
    status = scheduler.status
    perf = time.perf_counter
    trials: dict[Any, _Trial] = {}
    heap: list[Event] = []
    running = 0
    created = 0
    pending: Any | None = None
    finished = False
    now = 0.0
    seq = 0

    def create() -> Any | None:
        """Ask the searcher for the next trial (PENDING), or None."""
        nonlocal created, finished
        if finished or created >= limit_n or not (now < limit_s or past_budget):
            return None
        tid = str(created)
        t0 = perf()
        answer = ask(tid)
        rows.searcher_s += perf() - t0
        if answer is None:
            return None
        if answer is marker or isinstance(answer, str):
            finished = True
            return None
        suggestion = to_suggestion(tid, answer)
        arch = arch_of(suggestion.config)
        s = draw_seed(arch, rng)
        # Python lists of the seed's two curves: cheaper to read epoch by epoch than the arrays.
        trials[tid] = (_Trial(arch, None, None) if s is None
                       else _Trial(arch, feedback[arch, s].tolist(), cost[arch, s].tolist()))
        created += 1
        status[tid] = PENDING
        scheduler.on_trial_add(tid)
        return tid

    def train_next_epoch(tid: Any, trial: _Trial) -> None:
        nonlocal seq
        e = trial.epochs  # 0-based index of the epoch to train
        value = np.nan if trial.feedback is None else trial.feedback[e]
        step = 0.0
        if value == value:
            c = trial.cost
            step = c[e] - c[e - 1] if e else c[0]
        heapq.heappush(heap, Event(now + step, seq, tid, trial.arch, e + 1, value))
        seq += 1

    def end(tid: Any) -> bool:
        """Tell the searcher and record the row of an ended trial; True when the run ends."""
        nonlocal running
        trial = trials[tid]
        if status[tid] == RUNNING:
            running -= 1
        status[tid] = TERMINATED
        if past_budget and rows.too_far(now):
            return True
        ok = trial.value == trial.value
        obs = Observation(tid, trial.value if ok else None, "ok" if ok else "error", trial.epochs or None)
        return rows.tell(obs, trial.arch, now, trial.epochs) or len(rows) >= limit_n

    def end_stopped() -> bool:
        """End the trials the scheduler stopped during its last call, in its order."""
        if not scheduler.stopped:
            return False
        stopped, scheduler.stopped = scheduler.stopped, []
        return any(end(t) for t in stopped)

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
            train_next_epoch(tid, trials[tid])
        if pending is None and not asked_none:
            pending = create()
        if not heap:
            if pending is None and not finished and created < limit_n and (now < limit_s or past_budget):
                raise UserError(f"searcher {type(searcher).__name__} proposed nothing while no trial "
                                "was running; it cannot make progress")
            return trials
        event = heapq.heappop(heap)
        now = event.time
        tid, trial = event.trial_id, trials[event.trial_id]
        # Ray tells the searcher about trials the scheduler stopped inside its call before the
        # trial whose end caused the call: hence end_stopped() first, every time.
        if event.value != event.value:  # no feedback for this epoch: the trial fails here
            trial.value = np.nan
            scheduler.on_trial_error(tid)
            if end_stopped() or end(tid):
                return trials
            continue
        trial.epochs, trial.value = event.epoch, event.value
        if event.epoch >= n_epochs:  # the recipe's end: Ray's done=True, no decision asked
            scheduler.on_trial_complete(tid, event.epoch, event.value)
            if end_stopped() or end(tid):
                return trials
            continue
        action = scheduler.on_trial_result(tid, event.epoch, event.value)
        if end_stopped():
            return trials
        if action == CONTINUE:
            train_next_epoch(tid, trial)
        elif action == PAUSE:
            status[tid] = PAUSED
            running -= 1
        elif action == STOP:
            scheduler.on_trial_complete(tid, event.epoch, event.value)
            if end_stopped() or end(tid):
                return trials
        else:  # pragma: no cover - a scheduler bug, not a user error
            raise ValueError(f"scheduler {scheduler.name} answered {action!r}")
