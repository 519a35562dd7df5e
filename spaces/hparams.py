"""One way to declare a search space, shared by every searcher and every space.

Why one declaration language: the same space must be sampled by our own searchers (random, REA,
REINFORCE), handed to hpbandster (ConfigSpace), to Optuna (distributions) and to Ray Tune (a
search-space dict). Declaring it once and converting keeps those views from drifting apart.

Configs are plain dicts ``{name: value}`` whose values keep the declared Python types (a channel
count stays an ``int``, an op name a ``str``); ``SearchSpace.validate`` converts whatever a library
hands back (``numpy.int64``, ``numpy.str_``, ...) to those types, so configs compare and hash the
same wherever they came from.

Only the standard library and numpy are imported at module level; ConfigSpace, Optuna and Ray are
imported inside their converters so that declaring a space stays cheap.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spaces.errors import UserError

# Multi-fidelity searchers add the epochs they want under this key, so a parameter may not use it.
RESERVED_NAMES = ("fidelity",)

# Standard deviation, in the parameter's unit interval, of the step a numeric mutation takes:
# local enough for evolution to refine a good value, wide enough to leave a poor region.
_MUTATION_SIGMA = 0.25


def _kind(value: Any) -> str:
    """Coarse type family, so that 16 == np.int64(16) matches but "16" or True does not."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Number):
        return "number"
    if isinstance(value, str):
        return "str"
    return "other"


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise UserError(f"parameter name must be a non-empty string, got {name!r}")
    if name in RESERVED_NAMES:
        raise UserError(
            f"parameter name {name!r} is reserved (multi-fidelity searchers put the epochs there); "
            "rename the parameter, e.g. 'epochs'"
        )


def _real(name: str, value: Any, what: str) -> float:
    """A finite real number as a Python float; UserError otherwise."""
    if _kind(value) != "number" or isinstance(value, complex):
        raise UserError(f"{what} of {name!r} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise UserError(f"{what} of {name!r} must be finite, got {value!r}")
    return out


def _as_tuple(name: str, values: Any, what: str) -> tuple:
    """A list/tuple/array of values as a tuple; a lone string or mapping is a mistake."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise UserError(f"{what} of {name!r} must be a tuple or list of values, got {values!r}")
    return tuple(values)


class Param:
    """A single decision of a search space. Subclasses are immutable dataclasses."""

    name: str

    @property
    def mutable(self) -> bool:
        """Whether the parameter has more than one value, i.e. whether mutate can change it."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        """A uniform draw (uniform in log space for log-scaled numbers)."""
        raise NotImplementedError

    def mutate(self, value: Any, rng: np.random.Generator) -> Any:
        """A value different from ``value`` (which is already valid)."""
        raise NotImplementedError

    def validate(self, value: Any) -> Any:
        """``value`` converted to the declared type; UserError when it is not a legal value."""
        raise NotImplementedError

    def to_configspace(self) -> Any:
        raise NotImplementedError

    def to_optuna(self) -> Any:
        raise NotImplementedError

    def to_tune(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Categorical(Param):
    """Unordered choices (op names, channel counts). Choices may be str, int, float or bool."""

    name: str
    choices: tuple

    def __post_init__(self) -> None:
        _check_name(self.name)
        # numpy scalars (e.g. from np.arange) become Python values, so configs keep plain types.
        choices = tuple(
            c.item() if isinstance(c, np.generic) else c
            for c in _as_tuple(self.name, self.choices, "choices")
        )
        if not choices:
            raise UserError(f"Categorical {self.name!r} needs at least one choice")
        for c in choices:
            # Optuna's CategoricalDistribution only stores these types; refusing the rest here
            # gives the error at declaration time instead of deep inside a searcher.
            if _kind(c) == "other" or isinstance(c, complex):
                raise UserError(
                    f"choice {c!r} of {self.name!r} must be a Python str, int, float or bool"
                )
        if len(set((_kind(c), c) for c in choices)) != len(choices):
            raise UserError(f"choices of {self.name!r} contain duplicates: {choices!r}")
        object.__setattr__(self, "choices", choices)
        # (kind, choice) -> position: index() in O(1) (searchers call it on every config they see);
        # equal numbers hash alike, so this finds exactly the choice the scan in index() would.
        object.__setattr__(self, "_positions", {(_kind(c), c): i for i, c in enumerate(choices)})

    @property
    def mutable(self) -> bool:
        return len(self.choices) > 1

    def index(self, value: Any) -> int:
        """Position of ``value`` among the choices (used by policy-based searchers)."""
        kind = _kind(value)
        try:
            i = self._positions[(kind, value)]
        except (KeyError, TypeError):  # not a choice, or unhashable: the scan below says so
            i = None
        if i is not None and self.choices[i] == value:
            return i
        for i, c in enumerate(self.choices):
            if _kind(c) == kind and c == value:
                return i
        raise UserError(
            f"{value!r} is not a valid value of {self.name!r}; choose one of {list(self.choices)}"
        )

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def mutate(self, value: Any, rng: np.random.Generator) -> Any:
        # Draw among the other choices only, so a mutation always changes the value.
        k = int(rng.integers(len(self.choices) - 1))
        return self.choices[k if k < self.index(value) else k + 1]

    def validate(self, value: Any) -> Any:
        return self.choices[self.index(value)]

    def to_configspace(self) -> Any:
        from ConfigSpace import CategoricalHyperparameter

        return CategoricalHyperparameter(self.name, list(self.choices))

    def to_optuna(self) -> Any:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(self.choices)

    def to_tune(self) -> Any:
        from ray import tune

        return tune.choice(list(self.choices))


class _Numeric(Param):
    """Shared logic of Integer and Float: a linear or log map between [low, high] and [0, 1]."""

    low: Any
    high: Any
    log: bool

    def _check_bounds(self) -> None:
        low = _real(self.name, self.low, "low")
        high = _real(self.name, self.high, "high")
        if low > high:
            raise UserError(f"{self.name!r}: low ({low}) must not exceed high ({high})")
        if self.log and low <= 0:
            raise UserError(f"{self.name!r}: a log-scaled parameter needs low > 0, got {low}")
        if not isinstance(self.log, (bool, np.bool_)):
            raise UserError(f"{self.name!r}: log must be True or False, got {self.log!r}")

    def _to_unit(self, value: float) -> float:
        lo, hi = float(self.low), float(self.high)
        if hi == lo:
            return 0.0
        if self.log:
            return (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return (value - lo) / (hi - lo)

    def _from_unit(self, u: float) -> float:
        lo, hi = float(self.low), float(self.high)
        u = min(max(u, 0.0), 1.0)
        if self.log:
            return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        return lo + u * (hi - lo)

    def _cast(self, x: float) -> Any:
        raise NotImplementedError

    def mutate(self, value: Any, rng: np.random.Generator) -> Any:
        # A Gaussian step in the unit interval keeps mutations local; redraw until it changes the
        # value (clipping at a bound or rounding an Integer may leave it unchanged).
        u = self._to_unit(float(value))
        for _ in range(64):
            new = self._cast(self._from_unit(u + rng.normal(0.0, _MUTATION_SIGMA)))
            if new != value:
                return new
        # Practically unreachable; a uniform draw over the other values ends the loop for sure.
        while (new := self.sample(rng)) == value:
            pass
        return new


@dataclass(frozen=True)
class Integer(_Numeric):
    """An integer in [low, high], both inclusive; log=True samples uniformly in log space."""

    name: str
    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        for what in ("low", "high"):
            v = getattr(self, what)
            if _kind(v) != "number" or int(v) != v:
                raise UserError(f"{what} of Integer {self.name!r} must be an integer, got {v!r}")
            object.__setattr__(self, what, int(v))
        self._check_bounds()

    @property
    def mutable(self) -> bool:
        return self.high > self.low

    def _cast(self, x: float) -> int:
        return min(max(int(round(x)), self.low), self.high)

    def sample(self, rng: np.random.Generator) -> int:
        if not self.log:
            return int(rng.integers(self.low, self.high + 1))
        # Half a step beyond each bound gives the end values their fair share after rounding.
        x = math.exp(rng.uniform(math.log(self.low - 0.5 if self.low > 1 else 0.5),
                                 math.log(self.high + 0.5)))
        return self._cast(x)

    def validate(self, value: Any) -> int:
        if _kind(value) != "number" or isinstance(value, complex) or int(value) != value:
            raise UserError(f"{self.name!r} must be an integer, got {value!r}")
        v = int(value)
        if not self.low <= v <= self.high:
            raise UserError(f"{self.name!r} must lie in [{self.low}, {self.high}], got {v}")
        return v

    def to_configspace(self) -> Any:
        from ConfigSpace import Constant, UniformIntegerHyperparameter

        if self.low == self.high:  # ConfigSpace refuses an empty range
            return Constant(self.name, self.low)
        return UniformIntegerHyperparameter(self.name, self.low, self.high, log=self.log)

    def to_optuna(self) -> Any:
        from optuna.distributions import IntDistribution

        return IntDistribution(self.low, self.high, log=self.log)

    def to_tune(self) -> Any:
        from ray import tune

        if self.log:
            return tune.lograndint(self.low, self.high + 1)  # Tune's upper bound is exclusive
        return tune.randint(self.low, self.high + 1)


@dataclass(frozen=True)
class Float(_Numeric):
    """A real number in [low, high] (low < high); log=True samples uniformly in log space."""

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "low", _real(self.name, self.low, "low"))
        object.__setattr__(self, "high", _real(self.name, self.high, "high"))
        self._check_bounds()
        if self.low == self.high:
            raise UserError(
                f"Float {self.name!r} needs low < high, got {self.low} twice; "
                "use a single-choice Categorical for a constant"
            )

    @property
    def mutable(self) -> bool:
        return True

    def _cast(self, x: float) -> float:
        return min(max(float(x), self.low), self.high)

    def sample(self, rng: np.random.Generator) -> float:
        return self._cast(self._from_unit(float(rng.random())))

    def validate(self, value: Any) -> float:
        v = _real(self.name, value, "value")
        # Libraries map log-scaled values through exp(log(x)), which can land an ulp outside a
        # bound; such values are the bound, not a user error.
        slack = 1e-9 * max(1.0, abs(self.low), abs(self.high))
        if self.low - slack <= v <= self.high + slack:
            v = min(max(v, self.low), self.high)
        if not self.low <= v <= self.high:
            raise UserError(f"{self.name!r} must lie in [{self.low}, {self.high}], got {v}")
        return v

    def to_configspace(self) -> Any:
        from ConfigSpace import UniformFloatHyperparameter

        return UniformFloatHyperparameter(self.name, self.low, self.high, log=self.log)

    def to_optuna(self) -> Any:
        from optuna.distributions import FloatDistribution

        return FloatDistribution(self.low, self.high, log=self.log)

    def to_tune(self) -> Any:
        from ray import tune

        return tune.loguniform(self.low, self.high) if self.log else tune.uniform(self.low, self.high)


@dataclass(frozen=True, init=False)
class BasisMixture(Float):
    """A continuous value written as a convex combination of basis values (AutoHAS).

    AutoHAS learns one weight per basis value and uses the weighted sum; multi-trial searchers
    see the same decision as a linear Float on [min(basis), max(basis)], so a config holds one
    float either way. ``weights_to_value`` and ``value_to_weights`` move between the two views;
    the latter interpolates between the two neighbouring basis values, which is the sparsest
    convex combination that reproduces a value.
    """

    basis: tuple

    def __init__(self, name: str, basis: Sequence[float]) -> None:
        _check_name(name)
        values = tuple(_real(name, b, "basis value") for b in _as_tuple(name, basis, "basis"))
        if len(values) < 2 or len(set(values)) != len(values):
            raise UserError(
                f"BasisMixture {name!r} needs at least two distinct basis values, got {basis!r}"
            )
        object.__setattr__(self, "basis", values)
        super().__init__(name, min(values), max(values), False)

    def weights_to_value(self, weights: Sequence[float]) -> float:
        """The weighted sum of the basis; weights must be non-negative and sum to 1."""
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(self.basis),):
            raise UserError(
                f"{self.name!r} needs {len(self.basis)} weights (one per basis value), got {w.shape}"
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1.0) > 1e-6:
            raise UserError(
                f"weights of {self.name!r} must be non-negative and sum to 1, got {w.tolist()}"
            )
        return self._cast(float(w @ np.asarray(self.basis)))

    def value_to_weights(self, value: float) -> np.ndarray:
        """Weights, in basis order, that put all mass on the two basis values around ``value``."""
        v = self.validate(value)
        order = np.argsort(self.basis)
        sorted_basis = np.asarray(self.basis)[order]
        hi = int(np.searchsorted(sorted_basis, v, side="left"))
        w_sorted = np.zeros(len(self.basis))
        if sorted_basis[hi] == v:
            w_sorted[hi] = 1.0
        else:
            lo = hi - 1
            t = (v - sorted_basis[lo]) / (sorted_basis[hi] - sorted_basis[lo])
            w_sorted[lo], w_sorted[hi] = 1.0 - t, t
        w = np.empty_like(w_sorted)
        w[order] = w_sorted
        return w


class SearchSpace:
    """An ordered collection of parameters with sampling, mutation, validation and converters."""

    def __init__(self, params: Sequence[Param]) -> None:
        params = tuple(params)
        if not params:
            raise UserError("a SearchSpace needs at least one parameter")
        for p in params:
            if not isinstance(p, Param):
                raise UserError(
                    f"SearchSpace takes Categorical/Integer/Float/BasisMixture objects, got {p!r}"
                )
        names = tuple(p.name for p in params)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UserError(f"parameter names must be unique; repeated: {dupes}")
        self._params = params
        self._by_name = {p.name: p for p in params}
        self._mutable = tuple(p for p in params if p.mutable)
        # A space of choices only draws all its indices in one call: numpy's Generator gives the
        # same numbers for integers(0, [n1, n2, ...]) as for integers(n1), integers(n2), ...
        self._choice_sizes = (np.array([len(p.choices) for p in params])
                              if all(isinstance(p, Categorical) for p in params) else None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self) -> Iterator[Param]:
        return iter(self._params)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise UserError(
                f"unknown parameter {name!r}; this space has {list(self._by_name)}"
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self._params == other._params

    def __hash__(self) -> int:
        return hash(self._params)

    def __repr__(self) -> str:
        return f"SearchSpace({list(self._params)!r})"

    def sample(self, rng: np.random.Generator) -> dict:
        """A uniform random config; the same rng state gives the same config."""
        if self._choice_sizes is not None:
            picks = rng.integers(0, self._choice_sizes).tolist()
            return {p.name: p.choices[i] for p, i in zip(self._params, picks)}
        return {p.name: p.sample(rng) for p in self._params}

    def mutate(self, config: Mapping[str, Any], rng: np.random.Generator) -> dict:
        """A copy of ``config`` with exactly one parameter changed (single-edge/channel mutation)."""
        out = self.validate(config)
        if not self._mutable:
            raise UserError("cannot mutate: every parameter of this space has a single value")
        p = self._mutable[int(rng.integers(len(self._mutable)))]
        out[p.name] = p.mutate(out[p.name], rng)
        return out

    def validate(self, config: Mapping[str, Any]) -> dict:
        """``config`` checked and converted to the declared types, in the space's order.

        Raises UserError for a non-mapping, unknown or missing names, and illegal values. Keys
        outside the space (including a multi-fidelity searcher's "fidelity") are refused: strip
        them first, so that a typo in a name never passes silently.
        """
        if not isinstance(config, Mapping):
            raise UserError(f"a config must be a dict of parameter values, got {config!r}")
        unknown = [k for k in config if k not in self._by_name]
        if unknown:
            raise UserError(
                f"unknown parameter(s) {unknown} in config; valid names: {list(self._by_name)}"
            )
        missing = [n for n in self._by_name if n not in config]
        if missing:
            raise UserError(f"config lacks parameter(s) {missing}; give a value for each")
        return {p.name: p.validate(config[p.name]) for p in self._params}

    def to_configspace(self, seed: int | None = None) -> Any:
        """The space as a ``ConfigSpace.ConfigurationSpace`` (for hpbandster's BOHB)."""
        from ConfigSpace import ConfigurationSpace

        cs = ConfigurationSpace(seed=seed)
        cs.add([p.to_configspace() for p in self._params])
        return cs

    def to_optuna(self) -> dict[str, Any]:
        """``{name: optuna distribution}`` (for Optuna's ask/tell interface)."""
        return {p.name: p.to_optuna() for p in self._params}

    def to_tune(self) -> dict[str, Any]:
        """``{name: ray.tune domain}``, a Ray Tune ``param_space``."""
        return {p.name: p.to_tune() for p in self._params}
