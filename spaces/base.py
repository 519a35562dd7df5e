"""What the NATS topology and size spaces have in common: a fixed list of categorical decisions.

An architecture is one choice per decision. The project index reads the choices as a mixed-radix
number with the first decision as the most significant digit, so the order is documented,
deterministic and cheap to convert both ways (no lookup table needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from .errors import UserError


class CategoricalSpace:
    """Base of a space whose architectures are one choice per named decision."""

    name: str = ""
    decisions: tuple[str, ...] = ()
    choices: tuple[Any, ...] = ()  # the same candidate values for every decision

    @property
    def size(self) -> int:
        return len(self.choices) ** len(self.decisions)

    @cached_property
    def hparams(self):
        """The space declared in the common language, for searchers (ConfigSpace, Optuna, Tune)."""
        from .hparams import Categorical, SearchSpace

        return SearchSpace([Categorical(d, tuple(self.choices)) for d in self.decisions])

    # --- choices <-> index <-> config ---------------------------------------------------------
    def choice_indices(self, index: int) -> tuple[int, ...]:
        """The choice index of every decision for a project index."""
        index = self.check_index(index)
        k = len(self.choices)
        digits = []
        for _ in self.decisions:
            index, d = divmod(index, k)
            digits.append(d)
        return tuple(reversed(digits))

    def index_of_choices(self, digits: Sequence[int]) -> int:
        k, index = len(self.choices), 0
        for d in digits:
            index = index * k + int(d)
        return index

    def check_index(self, index: Any) -> int:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise UserError(f"{self.name}: an architecture index must be an integer, got {index!r}")
        if not 0 <= int(index) < self.size:
            raise UserError(f"{self.name}: architecture index {index} is out of range 0..{self.size - 1}")
        return int(index)

    def config_to_index(self, config: dict) -> int:
        missing = [d for d in self.decisions if d not in config]
        if missing:
            raise UserError(f"{self.name}: config lacks the decisions {missing}; expected {list(self.decisions)}")
        digits = []
        for d in self.decisions:
            try:
                digits.append(self.choices.index(config[d]))
            except ValueError:
                raise UserError(f"{self.name}: {d}={config[d]!r} is not one of {list(self.choices)}") from None
        return self.index_of_choices(digits)

    def index_to_config(self, index: int) -> dict:
        return {d: self.choices[c] for d, c in zip(self.decisions, self.choice_indices(index))}

    def all_choice_indices(self) -> np.ndarray:
        """[size, n_decisions] choice indices of every architecture, in index order."""
        k, n = len(self.choices), len(self.decisions)
        idx = np.arange(self.size)
        return np.stack([(idx // k ** (n - 1 - j)) % k for j in range(n)], axis=1)

    # --- index-level sampling (searchers use the hparams declaration instead) ---------------------
    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.size))

    def mutate(self, index: int, rng: np.random.Generator) -> int:
        """Change exactly one decision to a different choice (single-edge / single-channel mutation)."""
        digits = list(self.choice_indices(index))
        k = len(self.choices)
        d = int(rng.integers(len(digits)))
        digits[d] = (digits[d] + 1 + int(rng.integers(k - 1))) % k
        return self.index_of_choices(digits)

    def neighbours(self, index: int) -> list[int]:
        """Every architecture one decision away, in index order."""
        digits = self.choice_indices(index)
        return sorted(self.index_of_choices(digits[:d] + (c,) + digits[d + 1:])
                      for d in range(len(digits)) for c in range(len(self.choices)) if c != digits[d])

    # --- to be provided by each space ---------------------------------------------------------
    def parse(self, arch: str) -> int:
        raise NotImplementedError

    def to_str(self, index: int) -> str:
        raise NotImplementedError

    def iso_class_ids(self) -> np.ndarray:
        raise NotImplementedError

    def resolve(self, arch: int | str) -> int:
        """An index or a canonical string -> index (what users type on command lines)."""
        if isinstance(arch, str):
            s = arch.strip()
            return self.check_index(int(s)) if s.lstrip("-").isdigit() else self.parse(s)
        return self.check_index(arch)
