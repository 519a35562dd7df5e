"""Exact checkpoints of the pruning engines: their parts (modules, optimizers, random generators),
the epoch, torch's global random state and the configuration a checkpoint must agree on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from spaces.errors import UserError


def save_parts(config: Mapping[str, Any], epoch: int, parts: Mapping[str, Any]) -> dict[str, Any]:
    """References to the live tensors (as torch's own state_dicts): serialise right away."""
    out = {"config": dict(config), "epoch": epoch, "torch_rng": torch.get_rng_state()}
    for name, part in parts.items():
        out[name] = part.get_state() if isinstance(part, torch.Generator) else part.state_dict()
    return out


def load_parts(state: Mapping[str, Any], config: Mapping[str, Any], parts: Mapping[str, Any], what: str) -> int:
    """Restore ``parts`` from ``state``; the epoch to continue from. UserError for another configuration's."""
    if state["config"] != dict(config):
        raise UserError(f"checkpoint is for the {what} {state['config']}, this one is {dict(config)}")
    for name, part in parts.items():
        if isinstance(part, torch.Generator):
            part.set_state(state[name])
        else:
            part.load_state_dict(state[name])
    torch.set_rng_state(state["torch_rng"])
    return int(state["epoch"])
