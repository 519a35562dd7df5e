"""NATS-Bench's reporting rules for simulated searches: accuracy at the budget, and curves.

A time-budgeted run ends with the first evaluation past the budget, so its last event is not
"the result at the budget". NATS-Bench's ``exps/NATS-Bench/draw-table.py`` (``query_performance``)
reports, per run, the test accuracy of the incumbent interpolated linearly at the budget between
the two recorded events whose times are *nearest* to it (``sorted(..., key=abs(t - ticket))``, a
stable sort, so of two equally near events the earlier one counts first; both may lie on one
side, and then the line is extended). Over runs it reports ``np.mean`` and ``np.std`` (ddof=0).
``draw-fig6.py`` samples the same interpolation at many tickets for its curves; here the
tickets are every ``step`` simulated seconds.
"""

from __future__ import annotations

import numpy as np

NATS_STD_DDOF = 0  # np.std's default, as draw-table.py prints mean +- std
# Searchers whose NATS-Bench script is not bounded by the budget: bohb.py runs n_iters=300
# HyperBand iterations whatever --time_budget says, so its trajectory goes on past the budget
# (the simulator goes on just until the interpolated value at the budget can no longer change).
RUNS_PAST_BUDGET = frozenset({"bohb"})
CURVE_STEP_S = 100.0


def value_at(times: np.ndarray, values: np.ndarray, ticket: float) -> float:
    """``values`` interpolated at ``ticket`` between the two events nearest to it (draw-table.py).

    One event: its value. Two nearest events at the same time: their mean (draw-table.py would
    divide by zero there). When both nearest events lie on one side of the ticket the line through
    them is extended, as draw-table.py does, so a curve point can leave the 0-100 % range (100.4 %
    has been seen), the final value at the budget included when the last event falls short of it.
    """
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if times.size == 0:
        return float("nan")
    if times.size == 1:
        return float(values[0])
    a, b = np.argsort(np.abs(times - ticket), kind="stable")[:2]
    (t1, y1), (t2, y2) = (times[a], values[a]), (times[b], values[b])
    if t1 == t2:
        return float((y1 + y2) / 2)
    return float((t2 - ticket) / (t2 - t1) * y1 + (ticket - t1) / (t2 - t1) * y2)


def curve(times: np.ndarray, values: np.ndarray, budget_s: float,
          step_s: float = CURVE_STEP_S) -> tuple[np.ndarray, np.ndarray]:
    """(tickets, interpolated values) at step_s, 2 step_s, ... up to the budget (included)."""
    tickets = np.arange(step_s, budget_s + step_s / 2, step_s)
    if tickets.size and tickets[-1] > budget_s:
        tickets = tickets[:-1]
    return tickets, np.array([value_at(times, values, t) for t in tickets])
