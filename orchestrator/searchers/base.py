"""The ask/tell contract every multi-trial searcher implements, and the bookkeeping they share.

Why a common base: the simulator and the Ray Tune adapter drive every algorithm the same way,
so trial bookkeeping (pending trials, the history of results, the incumbent, the RNG and the
checkpoint format) lives here once. An algorithm only says how it proposes (``_propose``) and
what it learns from a result (``_observe``), plus any state of its own (``_extra_state`` /
``_load_extra_state``).

Contract details that callers rely on:
  * ``ask`` returns a fresh config dict, ``None`` (nothing to propose until results come back)
    or ``FINISHED`` (the searcher will never propose again; compare with ``==``). A
    multi-fidelity searcher adds ``"fidelity": <epochs>`` to the config.
  * ``tell`` takes the value larger-is-better. A failed evaluation is ``value=None`` or
    ``status="error"``; a NaN or infinite value counts as failed too (a diverged run).
  * A trial id may be asked once and told once. Telling an id that is not pending (never asked,
    or already told) raises ``UserError``: in the simulator that is always a bug worth seeing.
    The Ray adapter filters Ray's late or duplicate calls before they reach the searcher.
  * ``best`` is the config (without "fidelity") with the highest value among the results at the
    highest fidelity any successful result has reached, ties to the earliest; a searcher's
    belief, so it never reads test metrics.
  * ``state_dict`` holds plain Python data (JSON/pickle friendly). Loading it into a searcher
    built with the same space, seed and knobs continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from spaces.errors import UserError
from spaces.hparams import SearchSpace

FINISHED = "FINISHED"  # the same string as ray.tune.search.Searcher.FINISHED
FIDELITY = "fidelity"  # key a multi-fidelity searcher adds to its configs (epochs)
STATUSES = ("ok", "error")
_STATE_VERSION = 1


def check_int(name: str, value: Any, minimum: int | None = None, *, optional: bool = False) -> int | None:
    """A knob that must be an integer (>= minimum); UserError that names the knob otherwise."""
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise UserError(f"knob {name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise UserError(f"knob {name} must be >= {minimum}, got {value}")
    return int(value)


def check_float(name: str, value: Any, low: float, high: float, *,
                low_open: bool = False) -> float:
    """A knob that must be a real number in [low, high] (or (low, high])."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise UserError(f"knob {name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < low or v > high or (low_open and v == low):
        bracket = "(" if low_open else "["
        raise UserError(f"knob {name} must lie in {bracket}{low}, {high}], got {value!r}")
    return v


def check_bool(name: str, value: Any) -> bool:
    """A knob that must be True or False (not 0/1 or a string)."""
    if not isinstance(value, bool):
        raise UserError(f"knob {name} must be True or False, got {value!r}")
    return value


def _fidelity_key(fidelity: int | None) -> float:
    # A single-fidelity searcher is told no fidelity: its results are all at "full" fidelity.
    return math.inf if fidelity is None else float(fidelity)


class Searcher:
    """Base class: subclasses set ``name``, implement ``_propose`` and usually ``_observe``."""

    name: ClassVar[str] = "base"
    multi_fidelity: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, seed: int, *, max_trials: int | None = None,
                 knobs: Mapping[str, Any] | None = None) -> None:
        if not isinstance(space, SearchSpace):
            raise UserError(f"a searcher needs a spaces.hparams.SearchSpace, got {type(space).__name__}")
        self.space = space
        self.seed = check_int("seed", seed, 0)
        self.max_trials = check_int("max_trials", max_trials, 1, optional=True)
        # Recorded so that a checkpoint refuses to load into a differently configured searcher.
        self._knobs = {**dict(knobs or {}), "max_trials": self.max_trials}
        self.rng = np.random.default_rng(self.seed)
        self._pending: dict[Any, dict] = {}      # trial id -> {"config", "ask_index"}
        self._history: list[dict] = []           # told results, in tell order
        self._told_ids: set = set()
        self._n_asked = 0
        self._best: dict | None = None           # {"config", "value", "fidelity"}

    # ----- the public contract -------------------------------------------------------------
    def ask(self, trial_id: Any) -> dict | None | str:
        """A config to evaluate as ``trial_id``, None (wait for results) or FINISHED."""
        if type(trial_id) is not str and (not isinstance(trial_id, (str, int)) or isinstance(trial_id, bool)):
            raise UserError(f"trial ids must be str or int, got {trial_id!r}")
        if trial_id in self._pending or trial_id in self._told_ids:
            raise UserError(f"trial id {trial_id!r} was already asked; use a new id per trial")
        if self.max_trials is not None and self._n_asked >= self.max_trials:
            return FINISHED
        config = self._propose(trial_id)
        if config is None or (isinstance(config, str) and config == FINISHED):
            return config
        self._pending[trial_id] = {"config": config, "ask_index": self._n_asked}
        self._n_asked += 1
        return dict(config)

    def tell(self, trial_id: Any, value: float | None, status: str = "ok",
             fidelity: int | None = None) -> None:
        """Record the result of ``trial_id``; value larger is better, None/"error" = failed."""
        if status not in STATUSES:
            raise UserError(f"status must be one of {STATUSES}, got {status!r}")
        # type(...) is float / int first: the simulator tells tens of thousands of plain numbers,
        # and the abstract-class checks below cost more than the rest of tell.
        if value is not None and type(value) is not float and (isinstance(value, (bool, np.bool_))
                                                               or not isinstance(value, numbers.Real)):
            raise UserError(f"value must be a number or None, got {value!r}")
        if fidelity is not None and not (type(fidelity) is int and fidelity >= 1):
            fidelity = check_int("fidelity", fidelity, 1)
        if trial_id not in self._pending:
            what = "was already told" if trial_id in self._told_ids else "was never asked"
            raise UserError(f"tell for trial {trial_id!r}, which {what}; tell each asked trial once")
        entry = self._pending.pop(trial_id)
        config = dict(entry["config"])
        asked_fidelity = config.pop(FIDELITY, None)
        ok = status == "ok" and value is not None and math.isfinite(float(value))
        record = {
            "trial_id": trial_id,
            "config": config,
            "value": float(value) if ok else None,
            "fidelity": fidelity if fidelity is not None else asked_fidelity,
            "asked_fidelity": asked_fidelity,
            "ask_index": entry["ask_index"],
        }
        self._history.append(record)
        self._told_ids.add(trial_id)
        if ok:
            self._update_best(record)
        self._observe(record)

    def best(self) -> dict | None:
        """The config this searcher believes best so far (None before any successful result)."""
        return None if self._best is None else dict(self._best["config"])

    def suggest(self, trial_id: Any) -> Any:
        """``ask`` as a typed record: ``orchestrator.records.Suggestion`` (the config without its
        fidelity, and the fidelity or None), or None / FINISHED as ``ask`` answers them."""
        from orchestrator.records import to_suggestion  # records imports this module

        return to_suggestion(trial_id, self.ask(trial_id))

    def observe(self, observation: Any) -> None:
        """``tell`` from an ``orchestrator.records.Observation`` (its fields are tell's parameters)."""
        self.tell(*observation)

    @property
    def all_knobs(self) -> dict:
        """Every knob of this searcher with its default resolved (what provenance records)."""
        return dict(self._knobs)

    @property
    def history(self) -> list[dict]:
        """Told results in tell order (copies): trial_id, config, value, fidelity, ask_index."""
        return copy.deepcopy(self._history)

    @property
    def num_pending(self) -> int:
        return len(self._pending)

    def state_dict(self) -> dict:
        """Everything needed to continue this search exactly, as plain Python data."""
        return copy.deepcopy({
            "searcher": self.name,
            "version": _STATE_VERSION,
            "space": list(self.space.names),
            "seed": self.seed,
            "knobs": self._knobs,
            "rng": self.rng.bit_generator.state,
            "n_asked": self._n_asked,
            "pending": [[tid, e["config"], e["ask_index"]] for tid, e in self._pending.items()],
            "history": self._history,
            "best": self._best,
            "extra": self._extra_state(),
        })

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state``; this searcher must have the same space, seed and knobs."""
        if not isinstance(state, Mapping) or state.get("version") != _STATE_VERSION:
            raise UserError("not a searcher checkpoint of this version; start the search afresh")
        expected = {"searcher": self.name, "space": list(self.space.names),
                    "seed": self.seed, "knobs": self._knobs}
        for key, mine in expected.items():
            if state.get(key) != mine:
                raise UserError(
                    f"checkpoint has {key}={state.get(key)!r} but this searcher has {mine!r}; "
                    "build the searcher with the settings of the checkpointed run"
                )
        state = copy.deepcopy(dict(state))
        self.rng.bit_generator.state = state["rng"]
        self._n_asked = state["n_asked"]
        self._pending = {tid: {"config": cfg, "ask_index": i} for tid, cfg, i in state["pending"]}
        self._history = state["history"]
        self._told_ids = {r["trial_id"] for r in self._history}
        self._best = state["best"]
        self._load_extra_state(state["extra"])

    # ----- what subclasses provide ---------------------------------------------------------
    def _propose(self, trial_id: Any) -> dict | None | str:
        raise NotImplementedError

    def _observe(self, record: dict) -> None:
        """Learn from one told result (``record["value"]`` is None for a failure)."""

    def _extra_state(self) -> dict:
        return {}

    def _load_extra_state(self, extra: dict) -> None:
        """Restore algorithm state; the base state (history, pending, rng) is already loaded."""

    # ----- helpers -------------------------------------------------------------------------
    def _update_best(self, record: dict) -> None:
        key = _fidelity_key(record["fidelity"])
        if (self._best is None or key > _fidelity_key(self._best["fidelity"])
                or (key == _fidelity_key(self._best["fidelity"])
                    and record["value"] > self._best["value"])):
            self._best = {"config": record["config"], "value": record["value"],
                          "fidelity": record["fidelity"]}

    def _pending_records(self) -> list[tuple[Any, dict, int]]:
        """(trial id, config, ask index) of the pending trials, in ask order."""
        return [(tid, e["config"], e["ask_index"]) for tid, e in self._pending.items()]
