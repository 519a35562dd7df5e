"""BOHB (Falkner et al. 2018): HyperBand brackets whose new configs come from hpbandster's KDE model.

Why our own driver: hpbandster's Master needs a Pyro name server, a dispatcher and threads (it
hung on this machine), and Ray's TuneBOHB only works inside Ray's scheduler. Here HyperBand and
successive halving are a few lines of bookkeeping that run in-process, and only hpbandster's
configuration generator (``hpbandster.optimizers.config_generators.bohb.BOHB``, the KDE model)
is reused, with NATS-Bench's settings by default, through ``bohb_kde.KDEModel``: the same
generator with its proposal and refit computed fast, giving the very same configs.

Schedule (as hpbandster's): budgets are ``max_fidelity * eta**-k`` rounded to whole epochs, e.g.
1, 4, 12 for min 1, max 12, eta 3; HyperBand iteration i runs a successive-halving bracket with
``s = S - 1 - i % S`` halvings; a bracket samples its first-rung configs lazily from the model
(so each draw sees the freshest model), waits for the whole rung, then promotes the best
``1/eta`` (in proposal order) to the next budget. An ask serves the oldest bracket with work;
when every open bracket is waiting for results it opens the next bracket, as hpbandster's
Master does, unless ``max_active_brackets`` are open, in which case it returns None. With
``min_fidelity == max_fidelity`` every bracket is a single config at that fidelity: plain
model-based search.

One deliberate difference from hpbandster: with ``categorical_kernel_fix`` (default) the fitted
densities are replaced by ``CategoricalKDE``, because statsmodels' categorical kernel breaks on
exactly the data a converging search produces (see that class); ``categorical_kernel_fix=False``
reproduces hpbandster, and so NATS-Bench, as published.

Determinism: hpbandster draws from numpy's global RNG and ConfigSpace from its own RandomState.
Every proposal is seeded from this searcher's Generator (``KDEModel`` draws from a private
RandomState seeded alike, and where it calls into hpbandster both are seeded and the global state
is restored afterwards, so that other code is not disturbed); a model update is seeded from the
result count, so replaying results consumes nothing. The KDE model is a deterministic
function of the told results, so a checkpoint stores only the history and the brackets and
rebuilds the model by replaying ``new_result`` in tell order.
"""

from __future__ import annotations

import logging
from typing import Any

from orchestrator.schedulers.brackets import hpbandster_bracket, hpbandster_budgets, keep_best
from spaces.errors import UserError
from spaces.hparams import SearchSpace

from .base import FIDELITY, Searcher, check_bool, check_float, check_int
from .bohb_density import CategoricalKDE
from .bohb_kde import KDEModel

__all__ = ["BOHB", "CategoricalKDE", "hyperband_budgets"]

_LOG = logging.getLogger(__name__)


# The rung budgets in epochs, ascending (hpbandster's geometric grid, rounded): the bracket
# arithmetic lives in orchestrator.schedulers.brackets, shared with the simulated HyperBand.
hyperband_budgets = hpbandster_budgets


class BOHB(Searcher):
    name = "bohb"
    multi_fidelity = True

    def __init__(self, space: SearchSpace, seed: int, *, min_fidelity: int = 1,
                 max_fidelity: int = 12, eta: int = 3, num_samples: int = 4,
                 random_fraction: float = 0.0, bandwidth_factor: float = 3.0,
                 min_bandwidth: float = 0.3, top_n_percent: int = 15,
                 categorical_kernel_fix: bool = True,
                 max_active_brackets: int | None = None, max_trials: int | None = None) -> None:
        min_fidelity = check_int("min_fidelity", min_fidelity, 1)
        max_fidelity = check_int("max_fidelity", max_fidelity, 1)
        if max_fidelity < min_fidelity:
            raise UserError(
                f"knob max_fidelity ({max_fidelity}) must be >= min_fidelity ({min_fidelity})"
            )
        knobs = {
            "min_fidelity": min_fidelity, "max_fidelity": max_fidelity,
            "eta": check_int("eta", eta, 2),
            "num_samples": check_int("num_samples", num_samples, 1),
            "random_fraction": check_float("random_fraction", random_fraction, 0.0, 1.0),
            "bandwidth_factor": check_float("bandwidth_factor", bandwidth_factor, 0.0, 1e6,
                                            low_open=True),
            "min_bandwidth": check_float("min_bandwidth", min_bandwidth, 0.0, 1.0),
            "top_n_percent": check_int("top_n_percent", top_n_percent, 1),
            "categorical_kernel_fix": check_bool("categorical_kernel_fix",
                                                 categorical_kernel_fix),
            "max_active_brackets": check_int("max_active_brackets", max_active_brackets, 1,
                                             optional=True),
        }
        if knobs["top_n_percent"] >= 100:
            raise UserError(f"knob top_n_percent must be < 100, got {top_n_percent}")
        super().__init__(space, seed, max_trials=max_trials, knobs=knobs)
        self.knobs = knobs
        self.budgets = hyperband_budgets(min_fidelity, max_fidelity, knobs["eta"])
        self._generator = self._new_generator()
        self._brackets: list[dict] = []        # open brackets, oldest first
        self._n_brackets = 0                   # HyperBand iteration counter
        self._trial_slot: dict[Any, list] = {}  # pending trial id -> [bracket id, slot]
        self.model_based_picks = 0             # how many first-rung configs came from the KDE

    def _new_generator(self) -> KDEModel:
        return KDEModel(
            self.space,
            categorical_kernel_fix=self.knobs["categorical_kernel_fix"],
            top_n_percent=self.knobs["top_n_percent"], num_samples=self.knobs["num_samples"],
            random_fraction=self.knobs["random_fraction"],
            bandwidth_factor=self.knobs["bandwidth_factor"],
            min_bandwidth=self.knobs["min_bandwidth"], logger=_LOG)

    # ----- HyperBand / successive halving ---------------------------------------------------
    def _open_bracket(self) -> dict:
        plan = hpbandster_bracket(self.budgets, self._n_brackets, self.knobs["eta"])
        bracket = {
            "id": self._n_brackets,
            "budgets": list(plan.budgets),
            "sizes": list(plan.sizes),
            "rung": 0,
            "queue": [],       # [slot, config] promoted to this rung, not yet proposed
            "proposed": 0,     # configs proposed at this rung
            "results": {},     # slot -> value (None = failed) at this rung
            "configs": {},     # slot -> config at this rung
        }
        self._n_brackets += 1
        self._brackets.append(bracket)
        return bracket

    def _next_from(self, bracket: dict) -> tuple[int, dict] | None:
        """(slot, config) the bracket wants evaluated next, or None while it waits for results."""
        rung = bracket["rung"]
        if bracket["queue"]:
            slot, config = bracket["queue"].pop(0)
        elif rung == 0 and bracket["proposed"] < bracket["sizes"][0]:
            slot, config = bracket["proposed"], self._sample(bracket["budgets"][0])
        else:
            return None
        bracket["proposed"] += 1
        bracket["configs"][slot] = config
        return slot, config

    def _propose(self, trial_id: Any) -> dict | None:
        for bracket in self._brackets:
            picked = self._next_from(bracket)
            if picked is not None:
                break
        else:
            limit = self.knobs["max_active_brackets"]
            if limit is not None and len(self._brackets) >= limit:
                return None
            bracket = self._open_bracket()
            picked = self._next_from(bracket)
        slot, config = picked
        self._trial_slot[trial_id] = [bracket["id"], slot]
        return {**config, FIDELITY: bracket["budgets"][bracket["rung"]]}

    def _observe(self, record: dict) -> None:
        self._feed_model(record, len(self._history))
        bracket_id, slot = self._trial_slot.pop(record["trial_id"])
        bracket = next((b for b in self._brackets if b["id"] == bracket_id), None)
        if bracket is None:  # pragma: no cover - a bracket closes only after all its results
            return
        bracket["results"][slot] = record["value"]
        if len(bracket["results"]) == bracket["sizes"][bracket["rung"]]:
            self._advance(bracket)

    def _advance(self, bracket: dict) -> None:
        """Close a complete rung: promote the best configs (failures last) or close the bracket."""
        rung = bracket["rung"] + 1
        if rung == len(bracket["sizes"]):
            self._brackets.remove(bracket)
            return
        results = bracket["results"]
        best, _ = keep_best(sorted(results), results.__getitem__, bracket["sizes"][rung], ties="earlier")
        keep = sorted(best)  # promoted configs keep proposal order
        bracket.update(rung=rung, proposed=0, results={},
                       queue=[[s, bracket["configs"][s]] for s in keep],
                       configs={})

    # ----- the KDE model --------------------------------------------------------------------
    def _sample(self, budget: int) -> dict:
        config, model_based = self._generator.sample(budget, int(self.rng.integers(2 ** 32)))
        self.model_based_picks += model_based
        return config

    def _feed_model(self, record: dict, n_results: int) -> None:
        value = record["value"]
        # hpbandster minimises a loss; a failure is "no result" (it ranks as infinitely bad)
        self._generator.add_result(record["config"], record["fidelity"],
                                   None if value is None else -value, seed=n_results)

    # ----- checkpointing --------------------------------------------------------------------
    def _extra_state(self) -> dict:
        return {"brackets": self._brackets, "n_brackets": self._n_brackets,
                "trial_slot": [[tid, v] for tid, v in self._trial_slot.items()],
                "model_based_picks": self.model_based_picks}

    def _load_extra_state(self, extra: dict) -> None:
        self._brackets = extra["brackets"]
        for b in self._brackets:  # JSON turns int dict keys into strings; undo that
            b["results"] = {int(k): v for k, v in b["results"].items()}
            b["configs"] = {int(k): v for k, v in b["configs"].items()}
        self._n_brackets = extra["n_brackets"]
        self._trial_slot = {tid: v for tid, v in extra["trial_slot"]}
        self.model_based_picks = extra["model_based_picks"]
        self._generator = self._new_generator()
        for i, record in enumerate(self._history, start=1):
            self._feed_model(record, i)
