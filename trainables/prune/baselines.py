"""The two baselines of the thesis' pruning tables, in the same pipeline as TAS.

  * pre-defined: one width ratio for every conv and the full depth, the largest ratio (on a fine
    grid, 0.01) whose network meets the FLOPs target (at most the target: the band's top);
  * random: widths drawn uniformly from each conv's candidates and depths from each stage's, redrawn
    (at most ``tries`` times, seeded) until the network's FLOPs lie in the target's band.
"""

from __future__ import annotations

import numpy as np

from spaces.cifar_resnet import ResNetArch, scaled_arch
from spaces.errors import UserError

from .search import PruneSpace

GRID = 0.01


def _flops(space: PruneSpace, arch: ResNetArch) -> float:
    from spaces.cifar_resnet import cost

    return cost(arch, space.shape["num_classes"], in_channels=space.shape["in_channels"],
                input_size=space.shape["input_size"])["flops_m"]


def predefined(space: PruneSpace, target) -> ResNetArch:
    for r in np.arange(1.0, 0.0, -GRID):
        arch = scaled_arch(space.model, [float(r)])
        if _flops(space, arch) <= target.high:
            return arch
    raise UserError(f"no uniform width ratio brings {space.model} to {target.high:.4g} MFLOPs")


def random_arch(space: PruneSpace, target, seed: int, tries: int = 100_000) -> ResNetArch:
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        widths = [int(rng.integers(len(c))) for c in space.candidates]
        depths = [int(rng.integers(len(space.depths))) for _ in range(3)]
        if target.low <= space.choice_flops(widths, depths) <= target.high:
            return space.arch(widths, depths)
    raise UserError(f"random search drew no network within {target.low:.4g}-{target.high:.4g} MFLOPs "
                    f"in {tries} tries")


__all__ = ["predefined", "random_arch"]
