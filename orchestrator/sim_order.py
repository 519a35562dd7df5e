"""The order of simultaneous events in the epoch-by-epoch trial loop, for a loop that skips epochs.

The trial loop (``orchestrator.sim_trials``) queues one event per trained epoch and handles them
by (time, seq), where seq counts the pushes: of two events at the same simulated time, the one
queued first is handled first. Every event is queued while another one is handled, its *parent*
(a trial's previous epoch, or the event whose end freed the worker that starts the trial; the
first trials are queued before any event, by the *root*). While no step is negative (an epoch
never costs less than nothing), every event is queued at or after its parent's time, so events
are handled in increasing (time, seq) order and seq order is the parents' handling order, then
the order of the pushes made while handling one parent. Of two events at equal times, the first
is therefore the one whose parent came first: compare the parents' times, and on a tie their
parents', up to a common parent, where the push order decides. ``precedes`` walks that.

A loop that skips epochs (``orchestrator.sim_asha``: ASHA decides only at its rungs) queues a
trial's event at its next decision directly, and the epochs in between become *virtual* events
that are never queued, but whose times it can recompute: a queued event is the last node of a
*chain* of epochs ``start + 1 .. epoch`` that one handled event (``root``) queued at once, each
epoch's time the previous one's plus the epoch's cost increment, summed in the per-epoch loop's
order so that every float is the same. With the walk above run over real and virtual nodes, the
skipping loop handles its events in the per-epoch loop's order even where times tie, as they
do all the time on tables whose architectures share epoch times.

Queued events are tuples ``(time, seq, trial id, arch, seed, epoch, value, root, start)``: the
trial (``sim_trials.SearcherLink``: its arch and seed position, None when the table has no seed),
``seq`` the skipping loop's push counter when the chain was queued (unique; among pushes made
while one event is handled, their order), ``root`` the event tuple handled when the chain was
queued (None for the root). Plain tuples of numbers and strings: the garbage collector stops
tracking them, which matters since a run keeps every event its queue may still walk back to.
``EventOrder(table).to_steps`` turns such a queue into the per-epoch loop's own queue at the
point reached, for the rest of a run that can no longer skip (negative steps, or a searcher that
asks for results before it proposes again).
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable

TIME, SEQ, TID, ARCH, SEED, EPOCH, VALUE, ROOT, START = range(9)


def epoch_step(cost: Callable[[int, int, int], float], arch: int, seed: int, i: int) -> float:
    """What 0-based epoch ``i`` costs: the increment of NATS-Bench's time cost (``Task.cost``,
    read with ``cost = task.cost.item``), so that a trial trained to ``e`` epochs has been
    charged ``cost[e - 1]``. (The loops' hot paths compute the same difference inline.)"""
    return cost(arch, seed, i) - cost(arch, seed, i - 1) if i else cost(arch, seed, 0)


class EventOrder:
    """The per-epoch loop's order over a skipping loop's events, on one table."""

    def __init__(self, table) -> None:
        self.feedback, self.cost = table.feedback.item, table.cost.item

    def _time(self, node: tuple) -> float:
        ev, k = node
        if k == ev[EPOCH]:
            return ev[TIME]
        root = ev[ROOT]
        t = root[TIME] if root is not None else 0.0
        arch, seed, cost = ev[ARCH], ev[SEED], self.cost
        for i in range(ev[START], k):  # the chain's epochs up to k, in the per-epoch loop's order
            t += epoch_step(cost, arch, seed, i)
        return t

    def _node_precedes(self, na: tuple, nb: tuple) -> bool:
        """Whether node ``na`` was handled before ``nb`` (distinct nodes at equal times)."""
        while True:
            pa, pb = _parent(na), _parent(nb)
            if pa is None or pb is None:
                if pa is None and pb is None:  # both queued by the root: in push order
                    return na[0][SEQ] < nb[0][SEQ]
                return pa is None  # queued by the root, before anything an event queued
            if pa[0][TID] == pb[0][TID] and pa[1] == pb[1]:
                # One parent; only a handled real event queues more than one event (a chain's
                # virtual epoch queues just its successor), and those are chain heads: push order.
                return na[0][SEQ] < nb[0][SEQ]
            ta, tb = self._time(pa), self._time(pb)
            if ta != tb:
                return ta < tb
            na, nb = pa, pb

    def precedes(self, a: tuple, b: tuple) -> bool:
        """Whether the per-epoch loop handles queued event ``a`` before ``b`` (distinct, same time)."""
        return self._node_precedes((a, a[EPOCH]), (b, b[EPOCH]))

    def first_of_ties(self, heap: list, ev: tuple) -> tuple:
        """``ev`` was just popped and ``heap[0]`` has its time: pop every event at that time,
        keep the one the per-epoch loop handles first and push the others back."""
        tied = [ev]
        t = ev[TIME]
        while heap and heap[0][TIME] == t:
            tied.append(heapq.heappop(heap))
        first = tied[0]
        for other in tied[1:]:
            if self.precedes(other, first):
                first = other
        for other in tied:
            if other is not first:
                heapq.heappush(heap, other)
        return first

    def to_steps(self, heap: list, current: tuple | None) -> int:
        """Rewrite a skipping loop's queue (in place) as the per-epoch loop's queue once
        ``current`` (the event being handled; None: before the first) has been handled: every
        chain is cut at its first epoch not handled yet, and seq is renumbered 0, 1, ... in
        handling order, so that plain (time, seq) order is the per-epoch loop's from here on.
        Returns the next seq to use."""
        cut = []
        for ev in heap:
            for k in range(ev[START] + 1, ev[EPOCH] + 1):
                node = (ev, k)
                if k == ev[EPOCH] or not self.handled(node, current):
                    break
            if k != ev[EPOCH]:
                value = self.feedback(ev[ARCH], ev[SEED], k - 1)
                ev = (self._time(node), ev[SEQ], ev[TID], ev[ARCH], ev[SEED], k, value, ev[ROOT], ev[START])
            cut.append(ev)
        cut.sort(key=functools.cmp_to_key(self._order))
        heap[:] = [(ev[TIME], i, *ev[TID:]) for i, ev in enumerate(cut)]  # sorted: a valid heap
        return len(heap)

    def handled(self, node: tuple, current: tuple | None) -> bool:
        """Whether the per-epoch loop has handled ``node`` (a chain's ``(event, epoch)``) by the
        time it handles the event ``current`` (None: before the first)."""
        if current is None:
            return False
        now = (current, current[EPOCH])
        t, tn = self._time(node), current[TIME]
        return t < tn or (t == tn and self._node_precedes(node, now))

    def _order(self, a: tuple, b: tuple) -> int:
        if a is b:
            return 0
        if a[TIME] != b[TIME]:
            return -1 if a[TIME] < b[TIME] else 1
        return -1 if self.precedes(a, b) else 1


def _parent(node: tuple) -> tuple | None:
    ev, k = node
    if k > ev[START] + 1:
        return ev, k - 1
    root = ev[ROOT]
    return None if root is None else (root, root[EPOCH])
