"""TAS' cost loss: push the searched network's FLOPs or parameters towards a target.

Thesis Eq. 3.14-3.15 (TAS, Dong & Yang 2019, Eq. 7): with E_cost the expected cost under the
architecture distribution (differentiable) and F_cost the cost of the network the search would
derive now,

    L_cost = log E_cost     if F_cost is above the band   (too large: shrink)
             0              if F_cost is within the band
             -log E_cost    if F_cost is below the band   (too small: grow)

and the architecture loss becomes L_val + lambda_cost * L_cost (lambda_cost 2, tolerance 5 %).
The band: NATS-Bench's reference code (xautodl ``procedures/search_main.py:get_flop_loss``,
used by TAS' own search scripts) takes [R - t * cost of the largest network, R]; the thesis writes
[(1 - t) R, (1 + t) R]. ``band="xautodl"`` (the default) is the code's, ``band="thesis"`` the text's.

A target is absolute (millions: MFLOPs as multiply-adds, M parameters) or a fraction of the
largest network of the space, written with a percent sign ("50%"). A target whose band holds no
configuration of the space can never be met, and is refused. A space too large to list (the
pruned ResNets, ``trainables.prune``) passes ``dense=True`` and only its smallest and largest
costs: its networks are taken to fill that range, so the band only has to overlap it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spaces.errors import UserError

BANDS = ("xautodl", "thesis")
UNITS = {"flops_m": "MFLOPs", "params_m": "M parameters"}


@dataclass(frozen=True)
class CostTarget:
    """A resolved target: the metric (``flops_m`` | ``params_m``), its value and its band, in millions."""

    metric: str
    value: float
    low: float
    high: float

    def loss(self, expected: torch.Tensor, derived: float) -> torch.Tensor:
        """The piecewise loss of Eq. 3.15 for the expected cost and the derived network's cost."""
        if derived > self.high:
            return torch.log(expected)
        if derived < self.low:
            return -torch.log(expected)
        return expected.new_zeros(())


def parse_target(given: float | str, flag: str) -> tuple[float, bool]:
    """(value, is_fraction) of a target as written: ``12.5`` / ``"12.5"`` (absolute) or ``"50%"``."""
    text = str(given).strip()
    fraction = text.endswith("%")
    try:
        value = float(text[:-1] if fraction else text)
    except ValueError:
        raise UserError(f"{flag} {given!r}: give a cost in millions (e.g. 8.5) or a share of the largest "
                        "network with a percent sign (e.g. 50%)") from None
    if not value > 0 or not np.isfinite(value):
        raise UserError(f"{flag} {given!r}: a target must be a positive cost (or share), got {text}")
    return (value / 100.0 if fraction else value), fraction


def resolve_target(metric: str, given: float | str, every: np.ndarray, *, tolerance: float = 0.05,
                   band: str = "xautodl", flag: str | None = None, dense: bool = False,
                   space: str = "the size space") -> CostTarget:
    """The target ``given`` for ``metric`` against the costs of every configuration ``every``;
    UserError when it is malformed or no configuration lies in its band."""
    flag = flag or f"--{metric.removesuffix('_m')}-target"
    if band not in BANDS:
        raise UserError(f"cost band {band!r}: choose one of {', '.join(BANDS)}")
    if not 0 < tolerance < 1:
        raise UserError(f"the cost tolerance must be between 0 and 1 (a share), got {tolerance!r}")
    value, fraction = parse_target(given, flag)
    largest = float(every.max())
    target = value * largest if fraction else value
    if band == "xautodl":
        low, high = target - tolerance * largest, target
    else:
        low, high = (1 - tolerance) * target, (1 + tolerance) * target
    smallest = float(every.min())
    met = (smallest <= high and largest >= low) if dense else ((every >= low) & (every <= high)).any()
    if not met:
        unit = UNITS[metric]
        raise UserError(f"{flag} {given}: no network of {space} has {max(low, 0):.4g} to {high:.4g} {unit} "
                        f"(the target's band, tolerance {tolerance:g}), so the search could never meet it; "
                        f"the networks range from {smallest:.4g} to {largest:.4g} {unit}")
    return CostTarget(metric, target, low, high)
