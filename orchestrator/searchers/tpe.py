"""TPE through Optuna's ask/tell interface on an in-memory study.

Why this shape: Optuna's samplers are stateless apart from their RNGs and caches (everything else
is derived from the study's trials), so a sampler reseeded from our Generator before each ask plus
a replay of the trials gives an exact checkpoint without pickling Optuna objects. Knobs are Optuna 5's
TPESampler defaults made explicit (multivariate TPE, constant liar for pending trials).

The study mirrors the search: one Optuna trial per ask, in ask order, completed (or failed) at
tell. Replaying a checkpoint adds every asked trial as RUNNING in ask order, then tells the told
ones in tell order, which rebuilds the same storage contents.
"""

from __future__ import annotations

import warnings
from typing import Any

from spaces.hparams import SearchSpace

from .base import Searcher, check_bool, check_int


class TPE(Searcher):
    name = "tpe"

    def __init__(self, space: SearchSpace, seed: int, *, n_startup_trials: int = 10,
                 n_ei_candidates: int = 24, multivariate: bool = True,
                 constant_liar: bool = True, max_trials: int | None = None) -> None:
        knobs = {
            "n_startup_trials": check_int("n_startup_trials", n_startup_trials, 0),
            "n_ei_candidates": check_int("n_ei_candidates", n_ei_candidates, 1),
            "multivariate": check_bool("multivariate", multivariate),
            "constant_liar": check_bool("constant_liar", constant_liar),
        }
        super().__init__(space, seed, max_trials=max_trials, knobs=knobs)
        self.knobs = knobs
        from .tpe_sampler import identical_fast

        self._distributions = identical_fast(space.to_optuna())
        self._study = self._new_study()
        self._numbers: dict[Any, int] = {}  # pending trial id -> Optuna trial number

    def _new_study(self) -> Any:
        import optuna

        # Optuna logs every tell at INFO; a simulator runs tens of thousands of them.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.create_study(direction="maximize", sampler=self._sampler(0))

    def _sampler(self, seed: int) -> Any:
        from .tpe_sampler import FixedSpaceTPESampler  # TPESampler, minus work our fixed space makes moot

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning for multivariate/constant_liar
            return FixedSpaceTPESampler(self._distributions, seed=seed,
                                        n_startup_trials=self.knobs["n_startup_trials"],
                                        n_ei_candidates=self.knobs["n_ei_candidates"],
                                        multivariate=self.knobs["multivariate"],
                                        constant_liar=self.knobs["constant_liar"])

    def _propose(self, trial_id: Any) -> dict:
        # Reseeded from our Generator before every ask, the sampler's RNGs hold no state of
        # their own. (A fresh sampler per ask would do the same through public API only, but
        # it loses the sampler's search-space cache, and recomputing it made asks O(trials):
        # 6 ms per ask+tell at 200 trials. The attributes are those of the pinned Optuna 5.0.)
        seed = int(self.rng.integers(2 ** 31))
        sampler = self._study.sampler
        sampler._rng.rng.seed(seed)
        sampler._random_sampler._rng.rng.seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self._study.ask(self._distributions)
        self._numbers[trial_id] = trial.number
        return self.space.validate(trial.params)

    def _observe(self, record: dict) -> None:
        # Study.tell is this call plus a deep copy of the trial for its return value, which we do
        # not read (a tenth of a TPE run's time; the function is the pinned Optuna 5.0's).
        from optuna.study._tell import _tell_with_warning
        from optuna.trial import TrialState

        number = self._numbers.pop(record["trial_id"])
        if record["value"] is None:
            _tell_with_warning(self._study, number, state=TrialState.FAIL)
        else:
            _tell_with_warning(self._study, number, record["value"])
            self._study.sampler.completed = True

    def _load_extra_state(self, extra: dict) -> None:
        from optuna.trial import TrialState, create_trial

        self._study = self._new_study()
        asked = [(r["ask_index"], r["trial_id"], r["config"]) for r in self._history]
        asked += [(i, tid, cfg) for tid, cfg, i in self._pending_records()]
        numbers = {}
        for number, (_, tid, config) in enumerate(sorted(asked, key=lambda a: a[0])):
            self._study.add_trial(create_trial(state=TrialState.RUNNING, params=config,
                                               distributions=self._distributions))
            numbers[tid] = number
        self._numbers = numbers
        for record in self._history:
            self._observe(record)
