"""BOHB's KDE model: hpbandster's configuration generator, computed fast with the very same numbers.

BOHB proposes a config by drawing ``num_samples`` candidates around the good configs and keeping
the one with the lowest ratio of "bad" to "good" density. hpbandster does this one candidate and
one dimension at a time in Python, calls each density once per candidate (each call a pass over
every stored config), refits from a Python list of arrays after every result, and seeds numpy's
global RNG and ConfigSpace around every call: a long search spends nearly all its time there and
slows down as its history grows. ``KDEModel`` keeps hpbandster's state and settings (it subclasses
hpbandster's generator) but:

* draws the candidates from a private ``RandomState`` seeded exactly as hpbandster seeds the
  global one, so it consumes the same random numbers in the same order;
* evaluates all candidates' densities in one vectorized call (``ProductKernel``), with the same
  floating-point operations in the same order as the scalar ``pdf`` (so the same picks, bit for
  bit; a test pins this);
* keeps the training data in growing arrays and fits the bandwidths with statsmodels' own rule.

Whenever the fast path meets a case it does not reproduce (no model yet, a random pick, a failed
candidate draw), it hands the call to hpbandster's ``get_config`` under the seeding of old, which
is a deterministic function of the seed and the model, so the answer is the same either way.

``categorical_kernel_fix`` (see ``CategoricalKDE``) chooses the density: ours, or statsmodels'
``KDEMultivariate`` as hpbandster (and so NATS-Bench) published it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np
from hpbandster.optimizers.config_generators.bohb import BOHB as KDEGenerator

from spaces.hparams import Categorical, SearchSpace

# A pattern table indexes 2 ** (bits * dimensions) packed configs; past this, the plain product.
_MAX_PATTERN_BITS = 20


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


class CategoricalKDE:
    """A product-kernel density with a proper kernel for unordered choices.

    hpbandster fits statsmodels' ``KDEMultivariate``, whose Aitchison-Aitken kernel takes the
    number of choices from the data it was fitted on: when the good configs all agree on a
    choice (exactly when the model has learnt something) that number is 1 and every density
    is NaN, so hpbandster silently falls back to a random config. Its bandwidth rule can also
    exceed ``(c - 1) / c``, where the kernel starts to prefer the *other* choices. This density
    uses the declared number of choices and caps the categorical bandwidth there; continuous
    dimensions keep statsmodels' Gaussian kernel. It offers what hpbandster reads from a KDE:
    ``data``, ``bw`` and ``pdf``.
    """

    def __init__(self, data: np.ndarray, bw: np.ndarray, vartypes: np.ndarray,
                 min_bandwidth: float) -> None:
        self.data = np.asarray(data, dtype=np.float64)
        self.vartypes = np.asarray(vartypes)
        self._categorical = self.vartypes > 0
        levels = np.maximum(self.vartypes, 2).astype(np.float64)
        cap = np.where(self._categorical, (levels - 1) / levels, np.inf)
        self.bw = np.minimum(np.maximum(np.asarray(bw, dtype=np.float64), min_bandwidth), cap)
        self._levels = levels

    def pdf(self, x: Any) -> float:
        """The density at one point (hpbandster's call; ``ProductKernel`` does many at once)."""
        x = np.asarray(x, dtype=np.float64)
        same = self.data == x
        cat = np.where(same, 1.0 - self.bw, self.bw / (self._levels - 1))
        u = (self.data - x) / self.bw
        cont = np.exp(-0.5 * u * u) / (np.sqrt(2 * np.pi) * self.bw)
        kernel = np.where(self._categorical, cat, cont)
        return float(np.mean(np.prod(kernel, axis=1)))


class FixedKDEGenerator(KDEGenerator):
    """hpbandster's generator with its fitted densities replaced by ``CategoricalKDE``.

    The reference implementation: what BOHB ran before ``KDEModel``, which tests pin it to.
    """

    def impute_conditional_data(self, array: np.ndarray) -> np.ndarray:
        # hpbandster fills the NaNs of inactive conditional parameters row by row in Python on
        # every model refit, which makes a long search quadratic in Python time. Rows without
        # NaNs are left unchanged by that loop, so skipping it when there are none changes nothing.
        if not np.isnan(array).any():
            return array
        return super().impute_conditional_data(array)

    def new_result(self, job: Any, update_model: bool = True) -> None:
        super().new_result(job, update_model)
        models = self.kde_models.get(job.kwargs["budget"])
        if models is not None and not isinstance(models["good"], CategoricalKDE):
            for key, kde in models.items():
                models[key] = CategoricalKDE(kde.data, kde.bw, self.vartypes, self.min_bandwidth)


def pattern_bits(vartypes: np.ndarray) -> int | None:
    """Bits per dimension of a packed config for ``ProductKernel``'s pattern table (None: no table).

    Only a space of choices alone has one: each choice index gets enough bits for the widest
    dimension, and the table has 2 ** (bits * dimensions) entries.
    """
    vartypes = np.asarray(vartypes)
    if not (vartypes > 0).all():
        return None
    bits = max(1, (int(vartypes.max()) - 1).bit_length())
    return bits if bits * len(vartypes) <= _MAX_PATTERN_BITS else None


def pack(indices: np.ndarray, bits: int) -> np.ndarray:
    """Rows of choice indices ([n, d], whole numbers) as one integer each, ``bits`` per dimension."""
    return (np.asarray(indices).astype(np.int64) << (np.arange(indices.shape[-1]) * bits)).sum(axis=-1)


@lru_cache(maxsize=8)
def _match_table(bits: int, dims: int) -> np.ndarray:
    """For every XOR of two packed configs, the bit mask of the dimensions where they agree."""
    xor = np.arange(1 << (bits * dims), dtype=np.int64)
    table = np.zeros(xor.size, dtype=np.int64)
    for j in range(dims):
        table |= (((xor >> (bits * j)) & ((1 << bits) - 1)) == 0).astype(np.int64) << j
    # The smallest type that holds the masks keeps the table in cache (2**18 entries for tss).
    return table.astype(np.uint8 if dims <= 8 else np.uint16 if dims <= 16 else np.int64)


class ProductKernel:
    """Densities of a fitted product-kernel KDE at many points in one call, bit for bit as its ``pdf``.

    Both densities BOHB uses are a mean over the stored configs of a product over dimensions of
    one kernel factor each; for an unordered choice the factor is one of two numbers (the point
    agrees with the stored config or not). The vectorized form keeps every floating-point
    operation of the scalar one, in the same order: the same factors, multiplied left to right
    per stored config, then summed over the stored configs in their order (numpy's pairwise sum
    along a contiguous row, as for the scalar's 1-D array). When every dimension is a choice, the
    2**d possible products are computed once per fit and each (point, config) pair only looks its
    product up through a table of agreement patterns, which is what makes the call cheap.
    """

    def __init__(self, data: np.ndarray, vartypes: np.ndarray, match: np.ndarray,
                 mismatch: np.ndarray, continuous: str, bw: np.ndarray, mean: str,
                 packed: np.ndarray | None = None) -> None:
        self.data = data
        self.categorical = np.asarray(vartypes) > 0
        self.match, self.mismatch = match, mismatch  # factors of the categorical dimensions
        self.continuous = continuous                 # "ours" or "statsmodels" (Gaussian form)
        self.bw = bw
        self.mean = mean                             # "ours" or "statsmodels" (normalisation)
        self.n = data.shape[0]
        self._cont_bw_product = np.prod(bw[~self.categorical])
        self._bits = pattern_bits(vartypes)
        if self._bits is not None and packed is None:
            if np.all(data >= 0) and np.all(data < (1 << self._bits)) and np.all(data == np.floor(data)):
                packed = pack(data, self._bits)
            else:
                self._bits = None  # not choice indices (cannot happen for ConfigSpace vectors)
        if self._bits is not None:
            dims = data.shape[1]
            self._packed = packed
            agree = (np.arange(1 << dims)[:, None] >> np.arange(dims)) & 1
            self._table = self._normalise(np.prod(np.where(agree == 1, match, mismatch), axis=1))
            self._patterns = _match_table(self._bits, dims)

    @classmethod
    def of(cls, kde: Any, vartypes: np.ndarray, packed: np.ndarray | None = None) -> ProductKernel:
        """The vectorized form of a ``CategoricalKDE`` or of statsmodels' ``KDEMultivariate``
        (``packed``: the data's rows as ``pack`` gives them, when the caller has them already)."""
        categorical = np.asarray(vartypes) > 0
        data = np.asarray(kde.data, dtype=np.float64)
        bw = np.asarray(kde.bw, dtype=np.float64)
        if isinstance(kde, CategoricalKDE):
            return cls(data, vartypes, 1.0 - bw, bw / (kde._levels - 1), "ours", bw, "ours", packed)
        # statsmodels' Aitchison-Aitken kernel: 1 - h where equal, else h / (c - 1) with c the
        # number of distinct values in the fitted column (c = 1 gives inf or NaN, as there).
        levels = np.array([np.unique(data[:, j]).size if c else 2 for j, c in enumerate(categorical)])
        with np.errstate(divide="ignore", invalid="ignore"):
            mismatch = np.ones(len(bw)) * bw / (levels - 1)
        return cls(data, vartypes, 1.0 - bw, mismatch, "statsmodels", bw, "statsmodels", packed)

    def _normalise(self, products: np.ndarray) -> np.ndarray:
        # statsmodels divides each product by the product of the continuous bandwidths (1.0 when
        # there are none: a no-op, kept for the same operations).
        return products / self._cont_bw_product if self.mean == "statsmodels" else products

    def _products(self, points: np.ndarray) -> np.ndarray:
        """[points, configs] products of the kernel factors, normalised as the scalar pdf."""
        if self._bits is not None:
            whole = points.astype(np.int64)
            if (whole == points).all() and whole.min() >= 0 and whole.max() < (1 << self._bits):
                xor = self._packed[None, :] ^ pack(whole, self._bits)[:, None]
                return self._table.take(self._patterns.take(xor))
        kernel = np.empty((points.shape[0], self.n, self.data.shape[1]))
        cat = self.categorical
        if cat.any():
            same = self.data[None, :, cat] == points[:, None, cat]
            kernel[:, :, cat] = np.where(same, self.match[cat], self.mismatch[cat])
        if not cat.all():
            diff = self.data[None, :, ~cat] - points[:, None, ~cat]
            h = self.bw[~cat]
            if self.continuous == "ours":
                u = diff / h
                kernel[:, :, ~cat] = np.exp(-0.5 * u * u) / (np.sqrt(2 * np.pi) * h)
            else:
                kernel[:, :, ~cat] = (1.0 / np.sqrt(2 * np.pi)) * np.exp(-(diff ** 2) / (h ** 2 * 2.0))
        return self._normalise(np.prod(kernel, axis=2))

    def densities(self, points: Any) -> np.ndarray:
        """The density at each row of ``points`` ([k, d]); equal to ``[kde.pdf(p) for p in points]``."""
        points = np.asarray(points, dtype=np.float64).reshape(-1, self.data.shape[1])
        with np.errstate(all="ignore"):
            return np.add.reduce(self._products(points), axis=1) / self.n


def normal_reference_bandwidth(data: np.ndarray) -> np.ndarray:
    """statsmodels' ``normal_reference`` rule, written as statsmodels writes it (same numbers)."""
    return 1.06 * np.std(data, axis=0) * data.shape[0] ** (-1.0 / (4 + data.shape[1]))


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


class LegacyDraws:
    """``RandomState.rand()`` and ``RandomState.randint(n)``, replayed from its raw 32-bit outputs.

    numpy's legacy RandomState makes a double of two 32-bit outputs a, b as
    ``((a >> 5) * 2**26 + (b >> 6)) / 2**53`` and an integer below n by masking one output to the
    next power of two and drawing again while it is >= n. Reading the outputs in blocks and doing
    that arithmetic in Python gives the same numbers several times faster than one call into
    numpy per draw (a test pins it to RandomState). It reads ahead, so the RandomState must not
    be used for anything else afterwards until it is seeded again.
    """

    _BLOCK = 256

    def __init__(self, rs: np.random.RandomState) -> None:
        self._bitgen = rs._bit_generator  # the MT19937 behind the RandomState
        self._raw = self._bitgen.random_raw(self._BLOCK).tolist()
        self._i = 0

    def _next(self) -> int:
        if self._i == len(self._raw):
            self._raw = self._bitgen.random_raw(self._BLOCK).tolist()
            self._i = 0
        self._i += 1
        return self._raw[self._i - 1]

    def rand(self) -> float:
        a = self._next() >> 5
        return (a * 67108864.0 + (self._next() >> 6)) / 9007199254740992.0

    def randint(self, n: int) -> int:
        top = n - 1
        if top == 0:
            return 0  # numpy draws nothing for a single value
        mask = (1 << top.bit_length()) - 1
        value = self._next() & mask
        while value > top:
            value = self._next() & mask
        return value


class KDEModel(KDEGenerator):
    """hpbandster's BOHB configuration generator with a fast ``sample`` and ``add_result``.

    ``sample(budget, seed)`` returns what ``get_config(budget)`` returns after ``np.random.seed(seed)``
    and ``configspace.seed(seed)`` (as a validated config in the space's order, and whether it
    came from the model); ``add_result`` is ``new_result`` for one result.
    """

    def __init__(self, space: SearchSpace, configspace: Any, *, categorical_kernel_fix: bool,
                 **kwargs: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            super().__init__(configspace, **kwargs)
        self.space = space
        self.categorical_kernel_fix = categorical_kernel_fix
        self._rows: dict[Any, _Rows] = {}
        self._arrays: dict[tuple, np.ndarray] = {}   # config values -> ConfigSpace vector
        self._kernels: dict[Any, dict[str, tuple[Any, ProductKernel]]] = {}  # budget -> fitted
        self._rs = np.random.RandomState(0)           # reseeded per proposal (cheaper than a new one)
        self._bits = pattern_bits(self.vartypes)
        self._draw_setup: tuple | None = None          # (good KDE, keep probabilities, levels)
        self._names = list(configspace.keys())        # ConfigSpace's dimension order
        from ConfigSpace import CategoricalHyperparameter

        # hpbandster rounds the vector entries of these (and only these) to whole indices.
        self._rounded = [isinstance(configspace[n], CategoricalHyperparameter) for n in self._names]
        params = [space[n] for n in self._names]
        # Categorical dimensions map a vector index straight to the declared choice when
        # ConfigSpace lists the same choices in the same order (it does for spaces.hparams').
        self._choices = None
        if all(isinstance(p, Categorical) and list(configspace[p.name].choices) == list(p.choices)
               for p in params):
            self._choices = [p.choices for p in params]
        self._params = params

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
                data = {key: self.impute_conditional_data(data[key]) for key in ("good", "bad")}
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
        picked = self._sample_from_model(seed) if self.kde_models else None
        if picked is not None:
            return picked, True
        with seeded_global_rng(seed):
            self.configspace.seed(seed)
            raw, info = self.get_config(budget)
        return self.space.validate(dict(raw)), bool(info.get("model_based_pick"))

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

    def _sample_from_model(self, seed: int) -> dict | None:
        """The model-based branch of ``get_config``, or None where that call would do otherwise."""
        rs = self._rs
        rs.seed(seed)  # the very state np.random.seed(seed) gives the global RNG
        if rs.rand() < self.random_fraction:
            return None  # a random config: hpbandster's own path draws it
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
        return self._config_of(best_vector)

    def _config_of(self, vector: list) -> dict | None:
        if self._choices is not None:
            picks = {n: c[v] for n, c, v in zip(self._names, self._choices, vector)}  # whole already
            return {n: picks[n] for n in self.space.names}
        import ConfigSpace
        import ConfigSpace.util

        vector = [int(np.rint(v)) if r else v for r, v in zip(self._rounded, vector)]
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
