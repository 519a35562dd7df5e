"""BOHB's KDE model: hpbandster's configuration generator, computed fast with the very same numbers.

BOHB proposes a config by drawing ``num_samples`` candidates around the good configs and keeping
the one with the lowest ratio of "bad" to "good" density. hpbandster does this one candidate and
one dimension at a time in Python, calls each density once per candidate (each call a pass over
every stored config), refits from a Python list of arrays after every result, and seeds numpy's
global RNG and ConfigSpace around every call: a long search spends nearly all its time there and
slows down as its history grows. ``KDEModel`` keeps hpbandster's state and settings but:

* draws the candidates from a private ``RandomState`` seeded exactly as hpbandster seeds the
  global one, so it consumes the same random numbers in the same order;
* evaluates all candidates' densities in one vectorized call (``ProductKernel``), with the same
  floating-point operations in the same order as the scalar ``pdf`` (so the same picks, bit for
  bit; a test pins this);
* keeps the training data in growing arrays and fits the bandwidths with statsmodels' own rule;
* for a space of choices only, draws hpbandster's random configs (no model yet, or a
  ``random_fraction`` pick) as ConfigSpace draws them, so that no hpbandster, ConfigSpace or
  statsmodels module is imported at all.

Whenever the fast path meets a case it does not reproduce (a failed candidate draw, no finite
density, numeric dimensions), it hands the call to hpbandster's ``get_config``
(``bohb_reference``) under the seeding of old, which is a deterministic function of the seed and
the model, so the answer is the same either way.

``categorical_kernel_fix`` (see ``CategoricalKDE``) chooses the density: ours, or statsmodels'
``KDEMultivariate`` as hpbandster (and so NATS-Bench) published it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from spaces.hparams import Categorical, SearchSpace

from .bohb_density import CategoricalKDE, ProductKernel, normal_reference_bandwidth, pattern_bits
from .legacy_draws import LegacyDraws


@contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG for the duration of a call, then put the old state back."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            # ConfigSpace 1.x deprecates the 0.x calls hpbandster makes (the calls still work);
            # statsmodels warns that its KDE's default RNG will change, but the KDE only uses
            # that RNG for cross-validated bandwidths, which hpbandster does not request;
            # statsmodels' NaN densities (see CategoricalKDE) warn, and hpbandster handles them.
            for category in (DeprecationWarning, FutureWarning, RuntimeWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        np.random.set_state(saved)


class _Rows:
    """Growing [n, d] training configs with their losses (and packed rows): O(1) appends and views."""

    def __init__(self, dims: int, bits: int | None) -> None:
        self.configs = np.empty((64, dims))
        self.losses = np.empty(64)
        self.packed = np.empty(64, dtype=np.int64)
        self._shifts = None if bits is None else [bits * j for j in range(dims)]
        self.n = 0

    def append(self, array: np.ndarray, loss: float) -> None:
        if self.n == len(self.losses):
            self.configs = np.concatenate([self.configs, np.empty_like(self.configs)])
            self.losses = np.concatenate([self.losses, np.empty_like(self.losses)])
            self.packed = np.concatenate([self.packed, np.empty_like(self.packed)])
        self.configs[self.n] = array
        self.losses[self.n] = loss
        if self._shifts is not None:
            if np.isnan(array).any():  # an inactive conditional value: no packed rows from here
                self._shifts = None
            else:
                self.packed[self.n] = sum(int(v) << s for v, s in zip(array, self._shifts))
        self.n += 1

    @property
    def has_packed(self) -> bool:
        return self._shifts is not None


class KDEModel:
    """hpbandster's BOHB configuration generator with a fast ``sample`` and ``add_result``.

    ``sample(budget, seed)`` returns what hpbandster's ``get_config(budget)`` returns after
    ``np.random.seed(seed)`` and ``configspace.seed(seed)`` (as a validated config in the space's
    order, and whether the model proposed it); ``add_result`` is its ``new_result``. The state is
    hpbandster's (``kde_models`` and its settings under the same names); the reference generator
    (``bohb_reference``) is built only when a call needs it, and shares that state. For a space of
    choices only nothing else is needed, so neither hpbandster nor ConfigSpace nor statsmodels is
    imported (over a second of a process's start) unless ``categorical_kernel_fix`` is off.
    """

    def __init__(self, space: SearchSpace, *, categorical_kernel_fix: bool, top_n_percent: int,
                 num_samples: int, random_fraction: float, bandwidth_factor: float, min_bandwidth: float,
                 logger: Any = None) -> None:
        self.space = space
        self.categorical_kernel_fix = categorical_kernel_fix
        self.top_n_percent, self.num_samples = top_n_percent, num_samples
        self.random_fraction, self.bw_factor, self.min_bandwidth = random_fraction, bandwidth_factor, min_bandwidth
        self.logger = logger
        self.kde_models: dict[Any, dict[str, Any]] = {}
        self._configspace = self._reference_generator = None
        self._params = list(space)
        self._choices = None
        if all(isinstance(p, Categorical) for p in self._params):
            # ConfigSpace orders unconditional dimensions by name and keeps each one's choices in
            # their declared order (a test checks both), so its vectors are our choice indices.
            self._params = sorted(self._params, key=lambda p: p.name)
            self._choices = [p.choices for p in self._params]
            self.vartypes = np.array([len(c) for c in self._choices], dtype=int)
            self.kde_vartypes = "u" * len(self._params)
            self.min_points_in_model = len(self._params) + 1  # hpbandster's default
        else:
            reference = self._reference
            self._params = [space[n] for n in self.configspace.keys()]
            self.vartypes, self.kde_vartypes = reference.vartypes, reference.kde_vartypes
            self.min_points_in_model = reference.min_points_in_model
        self._names = [p.name for p in self._params]  # ConfigSpace's dimension order
        self._rows: dict[Any, _Rows] = {}
        self._arrays: dict[tuple, np.ndarray] = {}   # config values -> ConfigSpace vector
        self._kernels: dict[Any, dict[str, tuple[Any, ProductKernel]]] = {}  # budget -> fitted
        self._rs = np.random.RandomState(0)           # reseeded per proposal (cheaper than a new one)
        self._bits = pattern_bits(self.vartypes)
        self._draw_setup: tuple | None = None          # (good KDE, keep probabilities, levels)

    @property
    def configspace(self) -> Any:
        """The space as ConfigSpace sees it (built on first use: importing ConfigSpace is slow)."""
        if self._configspace is None:
            self._configspace = self.space.to_configspace(seed=0)
        return self._configspace

    @property
    def _reference(self) -> Any:
        """hpbandster's generator over the same state (``kde_models`` is this model's dict)."""
        if self._reference_generator is None:
            from .bohb_reference import FixedKDEGenerator, KDEGenerator

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                generator = (FixedKDEGenerator if self.categorical_kernel_fix else KDEGenerator)(
                    self.configspace, top_n_percent=self.top_n_percent, num_samples=self.num_samples,
                    random_fraction=self.random_fraction, bandwidth_factor=self.bw_factor,
                    min_bandwidth=self.min_bandwidth, logger=self.logger)
            generator.kde_models = self.kde_models
            self._reference_generator = generator
        return self._reference_generator

    # ----- results --------------------------------------------------------------------------
    def _vector(self, config: dict) -> np.ndarray:
        key = tuple(config[n] for n in self._names)
        array = self._arrays.get(key)
        if array is None:
            if self._choices is not None:  # ConfigSpace's vector of choices: their indices
                array = np.array([p.index(v) for p, v in zip(self._params, key)], dtype=np.float64)
            else:
                import ConfigSpace

                array = ConfigSpace.Configuration(self.configspace, values=config).get_array().copy()
            self._arrays[key] = array
        return array

    def add_result(self, config: dict, budget: Any, loss: float | None, seed: int) -> None:
        """hpbandster's ``new_result``: store the result and refit the KDEs of its budget.

        ``loss`` None (a failure) or non-finite counts as infinitely bad, as in hpbandster. ``seed``
        seeds numpy's global RNG for hpbandster's imputation of inactive conditional values, the
        only randomness a refit can use (spaces without conditions never need it).
        """
        loss = math.inf if loss is None or not np.isfinite(loss) else loss
        rows = self._rows.setdefault(budget, _Rows(len(self._names), self._bits))
        if max(list(self.kde_models.keys()) + [-np.inf]) > budget:
            return  # hpbandster keeps only results at the largest budget with a model
        rows.append(self._vector(config), loss)
        if rows.n <= self.min_points_in_model - 1:
            return
        train_configs, train_losses = rows.configs[:rows.n], rows.losses[:rows.n]
        n_good = max(self.min_points_in_model, (self.top_n_percent * rows.n) // 100)
        n_bad = max(self.min_points_in_model, ((100 - self.top_n_percent) * rows.n) // 100)
        idx = np.argsort(train_losses)
        parts = {"good": idx[:n_good], "bad": idx[n_good:n_good + n_bad]}
        data = {key: np.take(train_configs, rows_of, axis=0) for key, rows_of in parts.items()}
        packed = {key: rows.packed[rows_of] if rows.has_packed else None for key, rows_of in parts.items()}
        if not rows.has_packed and (np.isnan(data["good"]).any() or np.isnan(data["bad"]).any()):
            with seeded_global_rng(seed):
                data = {key: self._reference.impute_conditional_data(data[key]) for key in ("good", "bad")}
        if any(d.shape[0] <= d.shape[1] for d in data.values()):
            return
        fitted = {key: self._fit(data[key]) for key in ("bad", "good")}
        self.kde_models[budget] = fitted
        self._kernels[budget] = {key: (kde, ProductKernel.of(kde, self.vartypes, packed[key]))
                                 for key, kde in fitted.items()}

    def _fit(self, data: np.ndarray) -> Any:
        if not self.categorical_kernel_fix:
            from statsmodels.nonparametric.kernel_density import KDEMultivariate

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                kde = KDEMultivariate(data=data, var_type=self.kde_vartypes, bw="normal_reference")
            kde.bw = np.clip(kde.bw, self.min_bandwidth, None)
            return kde
        bw = np.clip(normal_reference_bandwidth(data), self.min_bandwidth, None)
        return CategoricalKDE(data, bw, self.vartypes, self.min_bandwidth)

    def new_result(self, job: Any, update_model: bool = True) -> None:
        """hpbandster's entry point, for callers that speak its job objects."""
        result = job.result
        self.add_result(job.kwargs["config"], job.kwargs["budget"],
                        None if result is None else result["loss"], seed=0)

    # ----- proposals ------------------------------------------------------------------------
    def _kernel(self, budget: Any, key: str) -> ProductKernel:
        kde = self.kde_models[budget][key]
        kernels = self._kernels.setdefault(budget, {})
        if key not in kernels or kernels[key][0] is not kde:  # a model set from outside
            kernels[key] = (kde, ProductKernel.of(kde, self.vartypes))
        return kernels[key][1]

    def sample(self, budget: Any, seed: int) -> tuple[dict, bool]:
        """(config, whether the model proposed it): ``get_config(budget)`` seeded with ``seed``."""
        if not self.kde_models:  # no model yet: hpbandster samples the space
            picked = None if self._choices is None else (self._random_config(seed), False)
        else:
            picked = self._sample_from_model(seed)
        if picked is not None:
            return picked
        with seeded_global_rng(seed):
            self.configspace.seed(seed)
            raw, info = self._reference.get_config(budget)
        return self.space.validate(dict(raw)), bool(info.get("model_based_pick"))

    def _random_config(self, seed: int) -> dict:
        """``configspace.sample_configuration()`` after ``configspace.seed(seed)``, for a space of
        choices: ConfigSpace draws five candidate indices per dimension (dimensions in its order)
        and keeps the first of each."""
        rs = self._rs
        rs.seed(seed)  # ConfigSpace's seed() makes a RandomState(seed): the same state
        picks = {p.name: c[int(rs.randint(low=0, high=len(c), size=5, dtype=np.int64)[0])]
                 for p, c in zip(self._params, self._choices)}
        return {n: picks[n] for n in self.space.names}

    def _candidates(self, rs: np.random.RandomState, kde_good: Any) -> list[list]:
        """hpbandster's candidate draws, one RNG call for one RNG call."""
        if self._bits is not None:
            return self._choice_candidates(LegacyDraws(rs), kde_good)
        import scipy.stats as sps

        out = []
        for _ in range(self.num_samples):
            datum = kde_good.data[rs.randint(0, len(kde_good.data))]
            vector = []
            for m, bw, t in zip(datum, kde_good.bw, self.vartypes):
                bw = max(bw, self.min_bandwidth)
                if t == 0:
                    bw = self.bw_factor * bw
                    vector.append(sps.truncnorm.rvs(-m / bw, (1 - m) / bw, loc=m, scale=bw,
                                                    random_state=rs))
                elif rs.rand() < (1 - bw):
                    vector.append(int(m))
                else:
                    vector.append(rs.randint(t))
            out.append(vector)
        return out

    def _choice_candidates(self, draws: LegacyDraws, kde_good: Any) -> list[list]:
        """``_candidates`` for a space of choices only, on Python numbers (the same values)."""
        setup = self._draw_setup
        if setup is None or setup[0] is not kde_good:
            # hpbandster keeps a stored choice with probability 1 - max(bw, min_bandwidth).
            keep = [float(1 - max(bw, self.min_bandwidth)) for bw in kde_good.bw]
            setup = self._draw_setup = (kde_good, keep, [int(t) for t in self.vartypes])
        _, keep, levels = setup
        data = kde_good.data
        out = []
        for _ in range(self.num_samples):
            datum = data[draws.randint(len(data))].tolist()
            out.append([int(m) if draws.rand() < k else draws.randint(t)
                        for m, k, t in zip(datum, keep, levels)])
        return out

    def _sample_from_model(self, seed: int) -> tuple[dict, bool] | None:
        """``get_config`` with a model, or None where hpbandster's own code must answer."""
        rs = self._rs
        rs.seed(seed)  # the very state np.random.seed(seed) gives the global RNG
        if rs.rand() < self.random_fraction:  # a random config (ConfigSpace's RNG is its own)
            return None if self._choices is None else (self._random_config(seed), False)
        budget = max(self.kde_models.keys())
        try:
            candidates = self._candidates(rs, self.kde_models[budget]["good"])
        except Exception:  # hpbandster logs such a failure and falls back to a random config
            return None
        l_values = self._kernel(budget, "good").densities(candidates)
        g_values = self._kernel(budget, "bad").densities(candidates)
        best, best_vector = np.inf, None
        for vector, lx, gx in zip(candidates, l_values, g_values):
            # hpbandster's acquisition, with Python's max() on possibly NaN densities.
            val = max(1e-32, gx) / max(lx, 1e-32)
            if not np.isfinite(val) and np.isfinite(lx):
                best_vector = vector
                break
            if val < best:
                best, best_vector = val, vector
        if best_vector is None:
            return None
        config = self._config_of(best_vector)
        return None if config is None else (config, True)

    def _config_of(self, vector: list) -> dict | None:
        if self._choices is not None:
            picks = {n: c[v] for n, c, v in zip(self._names, self._choices, vector)}  # whole already
            return {n: picks[n] for n in self.space.names}
        import ConfigSpace
        import ConfigSpace.util

        # hpbandster rounds the entries of categorical dimensions (and only those) to indices.
        vector = [int(np.rint(v)) if isinstance(self.configspace[n], ConfigSpace.CategoricalHyperparameter)
                  else v for n, v in zip(self._names, vector)]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                config = ConfigSpace.Configuration(self.configspace, vector=vector)
                config = ConfigSpace.util.deactivate_inactive_hyperparameters(
                    configuration_space=self.configspace, configuration=dict(config))
                config = ConfigSpace.util.deactivate_inactive_hyperparameters(
                    configuration_space=self.configspace, configuration=dict(config))
        except Exception:
            return None
        return self.space.validate(dict(config))
