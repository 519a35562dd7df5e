"""Joint hyperparameter-and-architecture spaces (AutoHAS, thesis Chapter 4; JAHS-Bench-201's idea).

A joint space is an architecture space (the NATS topology cell, or the MBConv network of
``spaces.mbconv``) times hyperparameters declared with ``spaces.hparams``: the learning rate and
the L2 weight as continuous values over a basis (``BasisMixture``: the default times
``DEFAULT_MULTIPLIERS``), and optionally a categorical optimizer. ``search_space`` is the whole
space in the common language (what random search, TPE and BOHB sample); ``encode`` / ``decode``
move between a config and AutoHAS' mixed encoding: one one-hot row per architecture decision, one
weight vector over the basis per continuous hyperparameter (``BasisMixture.value_to_weights``),
one one-hot vector per categorical one. ``decode`` applies Eq. 4.10 of the thesis: the expectation
over the basis for a continuous value (or, ``rule="argmax"``, Eq. 4.6: the most likely basis
value), the most likely choice for a categorical one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .base import CategoricalSpace
from .errors import UserError, short
from .hparams import BasisMixture, Categorical, Param, SearchSpace

DEFAULT_MULTIPLIERS = (0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
OPTIMIZERS = ("sgd", "adam", "rmsprop")
RULES = ("expectation", "argmax")
DEFAULT_LR, DEFAULT_WD = 0.025, 5e-4  # NATS-Bench's one-shot weight setting (search.search_recipe)


def basis_values(name: str, default: float, multipliers: Sequence[float] = DEFAULT_MULTIPLIERS, *,
                 allow_zero: bool = False) -> tuple[float, ...]:
    """``default * m`` for every multiplier; UserError for an empty basis or a value out of range
    (a learning rate must be > 0, an L2 weight >= 0)."""
    try:
        multipliers = tuple(float(m) for m in multipliers)
    except (TypeError, ValueError):
        raise UserError(f"the {name} basis must be a list of numbers, got {multipliers!r}") from None
    if not multipliers:
        raise UserError(f"the {name} basis is empty: give at least two values (default: the default times "
                        f"{list(DEFAULT_MULTIPLIERS)})")
    values = tuple(float(default) * m for m in multipliers)
    bad = [v for v in values if not np.isfinite(v) or (v < 0 if allow_zero else v <= 0)]
    if bad:
        need = ">= 0" if allow_zero else "> 0"
        raise UserError(f"every {name} basis value must be finite and {need}; got {bad} in {list(values)}")
    return values


def autohas_hparams(*, lr: float = DEFAULT_LR, weight_decay: float = DEFAULT_WD,
                    multipliers: Sequence[float] = DEFAULT_MULTIPLIERS,
                    optimizers: Sequence[str] | None = None) -> tuple[Param, ...]:
    """The thesis' hyperparameters: lr and L2 weight over the basis, optionally the optimizer."""
    params: list[Param] = [BasisMixture("lr", basis_values("learning-rate", lr, multipliers)),
                           BasisMixture("weight_decay", basis_values("L2-weight", weight_decay, multipliers,
                                                                     allow_zero=True))]
    if optimizers:
        unknown = [o for o in optimizers if o not in OPTIMIZERS]
        if unknown or len(set(optimizers)) != len(optimizers) or len(optimizers) < 2:
            raise UserError(f"optimizers must be at least two distinct of {list(OPTIMIZERS)}, "
                            f"got {short(list(optimizers))}")
        params.append(Categorical("optimizer", tuple(optimizers)))
    return tuple(params)


class JointSpace:
    """An architecture space x hyperparameters (at least one)."""

    def __init__(self, arch: CategoricalSpace, hparams: Sequence[Param]) -> None:
        hparams = tuple(hparams)
        if not hparams:
            raise UserError(f"a joint space needs at least one hyperparameter beside the {arch.name} architecture; "
                            "for an architecture-only search use the space itself")
        for p in hparams:
            if not isinstance(p, (BasisMixture, Categorical)):
                raise UserError(f"a joint space's hyperparameters are BasisMixture (continuous over a basis) or "
                                f"Categorical, got {p!r}")
        clash = sorted({p.name for p in hparams} & set(arch.decisions))
        if clash:
            raise UserError(f"hyperparameter name(s) {clash} clash with the architecture's decisions")
        self.arch, self.hparams = arch, hparams
        self.search_space = SearchSpace([*arch.hparams, *hparams])

    @property
    def continuous(self) -> tuple[BasisMixture, ...]:
        return tuple(p for p in self.hparams if isinstance(p, BasisMixture))

    @property
    def categorical(self) -> tuple[Categorical, ...]:
        return tuple(p for p in self.hparams if not isinstance(p, BasisMixture))

    def split(self, config: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """A config -> (architecture index, {hyperparameter: value})."""
        config = self.search_space.validate(config)
        arch = self.arch.config_to_index({d: config[d] for d in self.arch.decisions})
        return arch, {p.name: config[p.name] for p in self.hparams}

    def join(self, arch_index: int, hp: Mapping[str, Any]) -> dict[str, Any]:
        return self.search_space.validate({**self.arch.index_to_config(arch_index), **hp})

    def encode(self, config: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """A config -> the mixed encoding: ``"arch"`` [decisions, choices] one-hot, and per
        hyperparameter its weights over the basis (continuous) or a one-hot row (categorical)."""
        arch, hp = self.split(config)
        k = len(self.arch.choices)
        out = {"arch": np.eye(k)[list(self.arch.choice_indices(arch))]}
        for p in self.hparams:
            if isinstance(p, BasisMixture):
                out[p.name] = p.value_to_weights(hp[p.name])
            else:
                out[p.name] = np.eye(len(p.choices))[p.index(hp[p.name])]
        return out

    def decode(self, encoding: Mapping[str, Any], rule: str = "expectation") -> dict[str, Any]:
        """The mixed encoding (weights or probabilities) -> a config by Eq. 4.10 (``rule``
        "expectation") or Eq. 4.6 ("argmax") for continuous values; argmax for the rest."""
        if rule not in RULES:
            raise UserError(f"derivation rule {rule!r}: choose one of {', '.join(RULES)}")
        missing = [n for n in ("arch", *(p.name for p in self.hparams)) if n not in encoding]
        if missing:
            raise UserError(f"the encoding lacks {missing}")
        arch = np.asarray(encoding["arch"], dtype=np.float64)
        if arch.shape != (len(self.arch.decisions), len(self.arch.choices)):
            raise UserError(f"the architecture encoding must be {len(self.arch.decisions)} x "
                            f"{len(self.arch.choices)}, got {arch.shape}")
        hp: dict[str, Any] = {}
        for p in self.hparams:
            w = np.asarray(encoding[p.name], dtype=np.float64)
            if isinstance(p, BasisMixture):
                hp[p.name] = derive_continuous(w, p.basis, rule)
            else:
                hp[p.name] = p.choices[int(np.argmax(w))]
        return self.join(self.arch.index_of_choices(arch.argmax(axis=1).tolist()), hp)


def derive_continuous(weights, basis: Sequence[float], rule: str = "expectation") -> float:
    """Eq. 4.10: sum_k w_k v_k (weights normalised to sum 1); Eq. 4.6 ("argmax"): v of the largest w."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(basis),) or np.any(w < 0) or not w.sum() > 0:
        raise UserError(f"need {len(basis)} non-negative weights, got {w.tolist()}")
    if rule == "argmax":
        return float(basis[int(np.argmax(w))])
    return float((w / w.sum()) @ np.asarray(basis, dtype=np.float64))


def joint_space(arch: str = "tss", *, N: int = 1, **hparams) -> JointSpace:
    """The default joint space: ``arch`` "tss" (NATS cell x lr x wd, as JAHS-Bench-201) or
    "mbconv" (``N`` blocks per stage), with ``autohas_hparams(**hparams)``."""
    if arch == "tss":
        from .nats_topology import SPACE
    elif arch == "mbconv":
        from .mbconv import MBConvSpace

        SPACE = MBConvSpace(N)
    else:
        raise UserError(f"joint space architecture {arch!r}: choose tss or mbconv")
    return JointSpace(SPACE, autohas_hparams(**hparams))
