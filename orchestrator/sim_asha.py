"""ASHA's trial loop: ``sim_trials.run_trials`` for our own ASHA scheduler, with the same decisions
and rows and far less work per trial.

ASHA (``schedulers.asha``) decides only at its rungs: at any other epoch before its end it
answers CONTINUE and changes nothing. Ray's controller, which ``run_trials`` plays, reports every
epoch; this loop shows ASHA only the results it decides on.

* A trial's next event is its next decision (a rung below max_t, or max_t where it ends), or
  the first epoch the table lacks (the trial fails there) when that comes first. The epochs in
  between are never queued: their cost increments are added to the event's time one by one, in
  the per-epoch loop's order, so every time is the same float.
* Events at equal times (frequent where architectures share epoch times) are taken in the
  per-epoch loop's order, which ``sim_order`` recovers from the skipped epochs' times.
* Hooks ASHA answers without deciding are not called: its choose_trial_to_run is the FIFO choice
  of the one pending trial, and on_trial_add, on_trial_start and on_trial_error only keep that
  choice. ``Rung.cut`` is the decision itself, the same method ASHA's hooks use.

A skipped epoch is an event at which the per-epoch loop only queues the next epoch: its fill step
does nothing there as long as a trial is pending or no trial would be asked for (searcher
finished, trial or time budget reached). When that no longer holds (a searcher answered None:
the per-epoch loop would ask it again at every epoch), or when an epoch's cost increment is
negative (the order argument needs times that never go back), the loop turns its queue into the
per-epoch loop's (``sim_order.to_steps``) and goes on epoch by epoch for the rest of the run.
"""

from __future__ import annotations

import heapq
import math

from orchestrator.schedulers.asha import ASHA
from orchestrator.schedulers.base import PENDING, RUNNING, TERMINATED
from orchestrator.sim_order import EventOrder
from orchestrator.sim_trials import SearcherLink, nothing_proposed

NAN = math.nan


def run_asha(link: SearcherLink, asha: ASHA, workers: int, searcher_name: str) -> None:
    """One run of ``asha`` over ``workers`` simulated workers, trials asked through ``link``."""
    status = asha.status
    table = link.table
    ask, tell = link.next, link.tell
    end = min(asha.max_t, table.num_epochs)  # ASHA stops every trial at max_t
    rung_at = asha.rungs_by_epoch(end)
    # The epoch of a trial's next decision once it has trained e epochs: a rung, or the end.
    decision = [next(m for m in range(e + 1, end + 1) if m == end or rung_at[m] is not None)
                for e in range(end)]
    order = EventOrder(table)
    feedback, cost = table.feedback.item, table.cost.item  # (arch, seed, epoch) -> float
    heap: list[tuple] = []
    heappush, heappop = heapq.heappush, heapq.heappop
    seq = 0
    now = 0.0
    running = 0
    pending = None
    current = None  # the event being handled (None: the first fill)
    skipping = True

    def queue(tid: str, a: int, s: int | None, j: int) -> None:
        """Queue the next event of trial ``tid`` (arch ``a``, seed ``s``), trained ``j`` epochs
        so far, training from now (one epoch once not skipping)."""
        nonlocal seq, skipping
        if s is None:  # no seed: it fails at its first epoch, uncharged
            heappush(heap, (now + 0.0, seq, tid, a, s, 1, NAN, current, 0))
            seq += 1
            return
        m = decision[j] if skipping else j + 1
        t = now
        before = cost(a, s, j - 1) if j else 0.0  # the time cost so far (sim_order.epoch_step's terms)
        value = NAN
        for i in range(j, m):
            value = feedback(a, s, i)
            if value != value:  # no feedback for epoch i + 1: the trial fails there
                heappush(heap, (t + 0.0, seq, tid, a, s, i + 1, NAN, current, j))
                seq += 1
                return
            after = cost(a, s, i)
            step = after - before if i else after
            before = after
            if not step >= 0.0 and skipping:
                if i > j:  # stop before it: the event of epoch i queues this step itself
                    heappush(heap, (t, seq, tid, a, s, i, feedback(a, s, i - 1), current, j))
                    seq += 1
                    return
                seq = order.to_steps(heap, current)
                skipping = False
                m = j + 1
                t += step
                break
            t += step
        heappush(heap, (t, seq, tid, a, s, m, value, current, j))  # value: the feedback at epoch m
        seq += 1

    while True:
        # Fill free workers with the pending trial (ASHA's FIFO choice), keeping one pending.
        asked_none = False
        while running < workers:
            if pending is None and not asked_none:
                pending = ask(now)
                asked_none = pending is None
                if pending is not None:
                    status[pending[0]] = PENDING
            if pending is None:
                break
            tid, a, s = pending
            status[tid] = RUNNING
            running += 1
            queue(tid, a, s, 0)
            pending = None
        if pending is None and not asked_none:
            pending = ask(now)
            if pending is not None:
                status[pending[0]] = PENDING
        if skipping and pending is None and link.answered_none:
            seq = order.to_steps(heap, current)  # the per-epoch loop asks again at every epoch now
            skipping = False
        if not heap:
            if pending is None and link.stuck(now):
                raise nothing_proposed(searcher_name)
            return
        ev = heappop(heap)
        if skipping and heap and heap[0][0] == ev[0]:
            ev = order.first_of_ties(heap, ev)
        now, _, tid, a, s, epoch, value, _, _ = ev
        current = ev
        if value != value:  # a failure at this epoch: the trial ends with the epochs before it
            epoch -= 1
        else:
            rung = rung_at[epoch]
            if epoch < end:
                if rung is None or not rung.cut(value):
                    queue(tid, a, s, epoch)  # CONTINUE
                    continue
            elif rung is not None:  # the end (STOP, or the recipe's last epoch): recorded only
                rung.cut(value)
        status[tid] = TERMINATED
        running -= 1
        if tell(tid, a, epoch, value, now):
            return
