"""One adapter that runs any of our ask/tell searchers as a ``ray.tune.search.Searcher``.

Modelled on Ray's ``OptunaSearch``: Ray's trial ids are passed through as our trial ids, the
adapter remembers which trials it suggested, maps Ray's completion statuses explicitly onto
tell(value, status), turns Ray's ``metric``/``mode`` into one larger-is-better value, and handles
Ray's late, duplicate or foreign calls quietly (a debug log line, nothing told): after a restore
Ray may report trials the searcher never suggested, or complete a trial twice.

Status mapping (``on_trial_complete``):
  * ``error=True`` or no result           -> tell(value=None, status="error")
  * the metric missing from the result     -> tell(value=None, status="error") and a warning
  * otherwise                              -> tell(+metric if mode == "max" else -metric);
    a NaN/inf metric is a failed evaluation (the searcher's own rule).
A multi-fidelity searcher's config carries ``"fidelity"`` (epochs); the trainable reads it and
stops there. The fidelity told back is the one asked, or ``result[fidelity_key]`` when the
adapter is given a ``fidelity_key`` (e.g. "training_iteration") and the result has it.

Checkpoints: ``save``/``restore`` pickle ``get_state()``, which holds the searcher's
``state_dict()``; Ray calls them (through ``save_to_dir``/``restore_from_dir``) at experiment
checkpoints and on ``Tuner.restore``. The wrapped searcher is ``.inner``. The searcher object passed to a
restored adapter must be built with the same space, seed and knobs.
"""

from __future__ import annotations

import logging
import math
import pickle
from typing import Any

from ray.tune.search import Searcher as TuneSearcherBase

from orchestrator.searchers.base import FINISHED, Searcher
from spaces.errors import UserError

_LOG = logging.getLogger(__name__)
_MODES = ("min", "max")


class TuneSearcher(TuneSearcherBase):
    """``TuneSearcher(make_searcher("rea", space, seed), metric="valid_acc", mode="max")``."""

    def __init__(self, searcher: Searcher, metric: str | None = None, mode: str | None = None,
                 fidelity_key: str | None = None) -> None:
        if not isinstance(searcher, Searcher):
            raise UserError(
                f"TuneSearcher wraps an orchestrator.searchers Searcher, got {type(searcher).__name__}"
            )
        _check_mode(mode)
        super().__init__(metric=metric, mode=mode)
        # Not named ``searcher``: Ray's SearchGenerator treats any object with that attribute as
        # a wrapper (ConcurrencyLimiter) and would descend to it when checkpointing.
        self.inner = searcher
        self.fidelity_key = fidelity_key
        self._live: set[str] = set()      # suggested, not yet completed
        self._finished: set[str] = set()  # completed (told) trial ids
        self._last: dict[str, dict] = {}  # a live trial's last result (see on_trial_result)

    # ----- Ray's Searcher API ------------------------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        """Take metric/mode from TuneConfig unless given here; the space is the searcher's own."""
        _check_mode(mode)
        if self._metric is None and metric:
            self._metric = metric
        if self._mode is None and mode:
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict | None | str:
        if not self._metric or not self._mode:
            raise UserError(
                "TuneSearcher needs a metric and a mode: pass them to TuneSearcher(metric=..., "
                "mode=...) (Tune forwards TuneConfig's metric/mode to a searcher only when the "
                "Tuner has a non-empty param_space)"
            )
        config = self.inner.ask(trial_id)
        if isinstance(config, str) and config == FINISHED:
            return TuneSearcherBase.FINISHED
        if config is not None:
            self._live.add(trial_id)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Searchers learn from completed trials only; the last result is kept because a trial
        that a synchronous scheduler (HyperBand) stops while it is paused completes without one,
        and its value is then the last one it reported (not a failed evaluation)."""
        if trial_id in self._live:
            self._last[trial_id] = result

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if trial_id not in self._live:
            why = "already completed" if trial_id in self._finished else "not suggested here"
            _LOG.debug("ignoring completion of trial %s (%s)", trial_id, why)
            return
        self._live.discard(trial_id)
        self._finished.add(trial_id)
        last = self._last.pop(trial_id, None)
        value, status, fidelity = self._value_from(trial_id, result or (None if error else last), error)
        self.inner.tell(trial_id, value, status=status, fidelity=fidelity)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    def get_state(self) -> dict:
        return {"metric": self._metric, "mode": self._mode, "live": sorted(self._live),
                "finished": sorted(self._finished), "last": dict(self._last), "searcher": self.inner.state_dict()}

    def set_state(self, state: dict) -> None:
        self.inner.load_state_dict(state["searcher"])
        self._metric, self._mode = state["metric"], state["mode"]
        self._live, self._finished = set(state["live"]), set(state["finished"])
        self._last = dict(state.get("last", {}))  # checkpoints written before it kept none

    # ----- helpers -----------------------------------------------------------------------------
    def _value_from(self, trial_id: str, result: dict | None,
                    error: bool) -> tuple[float | None, str, int | None]:
        if error or not result:
            return None, "error", None
        raw = result.get(self._metric)
        if raw is None:
            _LOG.warning("trial %s finished without metric %r; told as a failed evaluation",
                         trial_id, self._metric)
            return None, "error", None
        try:
            value = float(raw)
        except (TypeError, ValueError):
            _LOG.warning("trial %s reported a non-numeric %r (%r); told as a failed evaluation",
                         trial_id, self._metric, raw)
            return None, "error", None
        fidelity = None
        if self.fidelity_key is not None and result.get(self.fidelity_key, 0) >= 1:
            fidelity = int(result[self.fidelity_key])
        if math.isnan(value):
            return None, "error", fidelity
        return (value if self._mode == "max" else -value), "ok", fidelity


def _check_mode(mode: str | None) -> None:
    if mode is not None and mode not in _MODES:
        raise UserError(f"mode must be 'min' or 'max', got {mode!r}")
