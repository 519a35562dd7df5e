"""Typed records where the orchestrator's modules meet: what a searcher proposes, what it is told,
and what the simulator's event queue holds.

They are NamedTuples: compared as the bare tuples they replace (the simulator's plain loop pushes
one ``Event`` per simulated evaluation onto a heap, which orders them as tuples: by time, then by
the unique sequence number), yet every field has a name. The trial loops, which queue an event
per epoch or rung, push bare tuples in the same order instead (a NamedTuple's Python-level
``__new__`` costs ten times a tuple display there): ``sim_trials`` documents their fields.

The searchers' own ``ask``/``tell`` API stays as it is (the Ray Tune adapter speaks it); callers
convert at their boundary: ``to_suggestion(trial_id, searcher.ask(trial_id))`` and
``searcher.tell(*observation)`` (``Observation``'s fields are ``tell``'s parameters, in order).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from orchestrator.searchers.base import FIDELITY


class Suggestion(NamedTuple):
    """A config a searcher proposed for ``trial_id``; ``fidelity``: the epochs a multi-fidelity
    searcher asked for (None: train to the recipe's end). ``config`` holds no fidelity key."""

    trial_id: Any
    config: dict
    fidelity: int | None = None


class Observation(NamedTuple):
    """What a searcher is told about ``trial_id`` (``Searcher.tell``'s parameters, in order):
    ``value`` larger is better (None: failed), ``status`` "ok" | "error", ``fidelity`` the epochs
    the value was measured after (None: the searcher's asked fidelity)."""

    trial_id: Any
    value: float | None
    status: str = "ok"
    fidelity: int | None = None


class Event(NamedTuple):
    """A simulated training of ``arch`` (trial ``trial_id``) reaches ``epoch`` at simulated
    ``time``, with feedback ``value`` there (NaN: the table has none). ``seq`` is unique and
    increasing, so events at the same time come out in the order they were queued."""

    time: float
    seq: int
    trial_id: Any
    arch: int
    epoch: int
    value: float


def to_suggestion(trial_id: Any, answer: dict | None | str) -> Suggestion | None | str:
    """A searcher's ``ask`` answer as a Suggestion; None (nothing until a result comes back) and
    FINISHED (a string: the searcher will never propose again) are passed through."""
    if answer is None or isinstance(answer, str):
        return answer
    if FIDELITY not in answer:
        return Suggestion(trial_id, answer, None)
    config = {k: v for k, v in answer.items() if k != FIDELITY}
    return Suggestion(trial_id, config, int(answer[FIDELITY]))
