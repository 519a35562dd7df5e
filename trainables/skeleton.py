"""Which network a run trains besides its architecture: the space object and the skeleton.

The skeleton (C channels, N cells per stage) is not part of an architecture's key in the store, so
every writer records it and every check compares it in one form. No torch here: the driver checks
a store before any training process starts.
"""

from __future__ import annotations

from typing import Any


def get_space(name: Any):
    """The space object for a name (or the object itself)."""
    if not isinstance(name, str):
        return name
    import spaces

    return spaces.get_space(name)


def default_N(space: Any) -> int:
    """Cells per stage when none is given: NATS-Bench's 5 for tss, the size space's only 1 for sss."""
    return 1 if get_space(space).name == "sss" else 5


def skeleton(space: Any, C: int, N: int) -> dict[str, int]:
    """The skeleton a file records: {"C", "N"}; only {"N"} for sss, whose channels are the
    architecture (C is ignored there), as the importer records NATS-Bench's sss files."""
    return {"N": int(N)} if get_space(space).name == "sss" else {"C": int(C), "N": int(N)}
