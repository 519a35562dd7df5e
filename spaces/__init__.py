"""Search spaces: encodings, sampling/mutation, network builders and hyperparameter spaces."""

from __future__ import annotations

from .base import CategoricalSpace
from .errors import UserError

SPACE_NAMES = ("tss", "sss")


def get_space(name: str) -> CategoricalSpace:
    """The NATS topology ("tss") or size ("sss") space."""
    if name == "tss":
        from .nats_topology import SPACE
    elif name == "sss":
        from .nats_size import SPACE
    else:
        raise UserError(f"unknown search space {name!r}; choose one of {', '.join(SPACE_NAMES)}")
    return SPACE


__all__ = ["CategoricalSpace", "SPACE_NAMES", "UserError", "get_space"]
