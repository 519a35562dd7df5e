"""The rung arithmetic of successive halving, in one place: rung budgets, configs per rung, and
which configs a rung promotes.

Three users, two published conventions. BOHB's searcher (``orchestrator.searchers.bohb``)
follows hpbandster (and so NATS-Bench's bohb.py); the simulated HyperBand and ASHA schedulers
follow Ray Tune's ``HyperBandScheduler`` and ``AsyncHyperBandScheduler``, whose decisions they
must reproduce. The conventions really differ, so both are kept, side by side, written once:

=====================  ====================================  ======================================
                       hpbandster (BOHB)                      Ray Tune (HyperBand scheduler)
=====================  ====================================  ======================================
brackets per round     S = floor(log_eta(max/min)) + 1        S = round(log_eta(max_t)) + 1
bracket with s halv.   i-th opened has s = S - 1 - i % S      i-th opened has s = i % S (0 first)
rung budgets           the grid max * eta**-k, rounded        r0 = int(max_t * eta**-s), then
                       (``hpbandster_budgets``), last s + 1   r = int(min(r * eta, max_t))
rung sizes             n0 = (S // (s + 1)) * eta**s, then     n0 = ceil(S / (s + 1) * eta**s), then
                       max(n0 // eta**k, 1)                   ceil(n / eta)
promotion (ties)       best first, failures last, ties to     stable ascending sort, the last n
                       the earlier config                     kept: ties to the later trial
=====================  ====================================  ======================================

Ray's ASHA rungs are ``grace * rf**k`` below ``max_t`` (``asha_milestones``). Floating-point
steps (``np.log``, ``np.round``, ``int`` truncation) are Ray's own, so that e.g. max_t = 243,
rf = 3 gives Ray's five ASHA rungs (log 243 / log 3 evaluates just below 5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import NamedTuple

import numpy as np


class Bracket(NamedTuple):
    """One successive-halving bracket: rung ``k`` trains ``sizes[k]`` configs to ``budgets[k]``
    epochs (budgets ascending, sizes descending)."""

    budgets: tuple[int, ...]
    sizes: tuple[int, ...]


# ----- hpbandster (BOHB) -----------------------------------------------------------------------
def hpbandster_budgets(min_fidelity: int, max_fidelity: int, eta: int) -> list[int]:
    """hpbandster's rung budgets in epochs, ascending: ``max * eta**-k`` rounded to whole epochs
    (and at least ``min_fidelity``), e.g. 1, 4, 12 for min 1, max 12, eta 3."""
    n_rungs = int(math.floor(math.log(max_fidelity / min_fidelity) / math.log(eta) + 1e-9)) + 1
    raw = [max_fidelity * eta ** -(n_rungs - 1 - k) for k in range(n_rungs)]
    return sorted({max(min_fidelity, int(round(b))) for b in raw})


def hpbandster_bracket(budgets: Sequence[int], iteration: int, eta: int) -> Bracket:
    """The bracket of hpbandster's HyperBand iteration ``iteration`` (0-based) over ``budgets``."""
    n_rungs = len(budgets)
    s = n_rungs - 1 - iteration % n_rungs
    n0 = (n_rungs // (s + 1)) * eta ** s
    return Bracket(tuple(budgets[n_rungs - s - 1:]), tuple(max(n0 // eta ** k, 1) for k in range(s + 1)))


# ----- Ray Tune (HyperBandScheduler, AsyncHyperBandScheduler) ----------------------------------
def ray_num_brackets(max_t: int, eta: int) -> int:
    """Brackets per HyperBand round in Ray's HyperBandScheduler (its ``s_max_1``)."""
    return int(np.round(np.log(max_t) / np.log(eta))) + 1


def ray_bracket(max_t: int, eta: int, s: int) -> Bracket | None:
    """Ray HyperBandScheduler's bracket with ``s`` halvings; None when its first budget
    truncates to 0 epochs (Ray then skips that bracket)."""
    r = int(max_t * eta ** (-s))
    if r == 0:
        return None
    n = int(np.ceil(ray_num_brackets(max_t, eta) / (s + 1) * eta ** s))
    budgets, sizes = [r], [n]
    for _ in range(s):
        n = int(np.ceil(n / eta))
        r = int(min(r * eta, max_t))
        budgets.append(r)
        sizes.append(n)
    return Bracket(tuple(budgets), tuple(sizes))


def ray_total_work(bracket: Bracket, max_t: int, eta: int) -> int:
    """The denominator of Ray's bracket ``completion_percentage`` (which orders the brackets
    when Ray chooses the next trial to run), computed as Ray does: its budget step is capped at
    ``max_t - r0``, so this is not the bracket's epoch total, but it is what Ray compares."""
    n, r = bracket.sizes[0], bracket.budgets[0]
    first, work = r, 0
    for _ in bracket.budgets:
        work += int(n) * int(r)
        n = int(np.ceil(n / eta))
        r = int(min(r * eta, max_t - first))
    return work


def asha_milestones(max_t: int, grace_period: int, reduction_factor: int) -> list[int]:
    """Ray's AsyncHyperBandScheduler rungs (one bracket), descending: ``grace * rf**k`` for the
    ``int(log(max_t / grace) / log(rf) + 1)`` values of k from 0."""
    n_rungs = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    return [grace_period * reduction_factor ** k for k in reversed(range(n_rungs))]


# ----- promotion -------------------------------------------------------------------------------
def keep_best(keys: Sequence[Hashable], value_of: Callable[[Hashable], float | None], n: int, *,
              ties: str) -> tuple[list, list]:
    """Successive halving's cut: (the ``n`` best of ``keys``, the rest).

    ``ties="earlier"`` (hpbandster): the kept list is best first, failed configs (value None)
    rank last, and of equal values the one earlier in ``keys`` ranks first. ``ties="later"``
    (Ray's HyperBandScheduler): Python's stable ascending sort by value, the last ``n`` kept (both
    lists ascending), so of equal values the later one in ``keys`` is kept; a NaN value lands
    wherever that sort puts it, exactly as in Ray.
    """
    if ties == "earlier":
        ranked = sorted(keys, key=lambda k: (value_of(k) is None, -(value_of(k) or 0.0)))
        return ranked[:n], ranked[n:]
    if ties == "later":
        ranked = sorted(keys, key=value_of)
        return ranked[-n:], ranked[:-n]
    raise ValueError(f"ties must be 'earlier' or 'later', got {ties!r}")
