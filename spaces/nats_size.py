"""The NATS-Bench size search space (SSS): 8 channel counts on 5 layers = 32,768 networks.

Every network has the same cell (``CELL``) and the NATS skeleton with one cell per stage; an
architecture sets the channels of the five layers: cell, reduction, cell, reduction, cell. One cell
per stage is part of the space, not a knob: NATS-Bench builds these networks as
``infer.shape.tiny`` (xautodl/models/__init__.py:88-95), whose ``DynamicShapeTinyNet`` takes one
layer per channel count and derives N = len(channels) // 3 = 1 (models/shape_infers/
InferTinyCellNet.py:16-19), so ``build``/``cost`` refuse any other N.
Strings are the channels joined by ``:`` (``8:16:32:64:64``).

Project index: the five channel choices (position in ``CHANNELS``) read as a base-8 number, first
layer most significant: ``8:8:8:8:8`` is 0 and ``64:64:64:64:64`` is 32,767. Every configuration is
a different network, so each is its own isomorphism class.
"""

from __future__ import annotations

import numpy as np

from .base import CategoricalSpace
from .errors import UserError

CHANNELS: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
NUM_LAYERS = 5
NUM_ARCHS = len(CHANNELS) ** NUM_LAYERS
CELLS_PER_STAGE = 1  # the only N of this space (module docstring)
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


class SizeSpace(CategoricalSpace):
    name = "sss"
    decisions = tuple(f"channels_{i}" for i in range(NUM_LAYERS))
    choices = CHANNELS

    def parse(self, arch: str) -> int:
        if not isinstance(arch, str):
            raise UserError(f"sss: an architecture string is expected, got {type(arch).__name__}")
        parts = arch.strip().split(":")
        if len(parts) != NUM_LAYERS:
            raise UserError(f"sss: {arch!r} has {len(parts)} channel count(s) separated by ':', needs "
                            f"{NUM_LAYERS}, e.g. 8:16:32:64:64")
        digits = []
        for i, p in enumerate(parts):
            if not p.strip().isdigit() or int(p) not in CHANNELS:
                raise UserError(f"sss: layer {i} of {arch!r} has channels {p!r}; each must be one of "
                                f"{', '.join(map(str, CHANNELS))}")
            digits.append(CHANNELS.index(int(p)))
        return self.index_of_choices(digits)

    def to_str(self, index: int) -> str:
        return ":".join(str(CHANNELS[d]) for d in self.choice_indices(index))

    def channels(self, index: int) -> tuple[int, ...]:
        return tuple(CHANNELS[d] for d in self.choice_indices(index))

    def iso_class_ids(self, rule: str = "semantic") -> np.ndarray:
        return np.arange(self.size, dtype=np.int32)

    def has_path(self, index: int) -> bool:
        return True

    def build(self, index: int, num_classes: int = 10, *, C: int | None = None, N: int = 1, in_channels: int = 3):
        """The NATS-Bench size network; ``C`` is ignored (the channels are the architecture)."""
        from .nats_network import NATSNetwork, stage_layers
        from .nats_topology import SPACE as TSS

        check_cells_per_stage(N)
        c = self.channels(index)
        # Cells take layers 0, 2, 4 and the reduction blocks layers 1 and 3; the cell after a
        # reduction maps the reduction's channel count to its own (as NATS-Bench's SSS networks).
        reductions = iter((c[1], c[3]))
        layers = [(next(reductions), True) if red else (ch, red) for ch, red in stage_layers((c[0], c[2], c[4]), N)]
        return NATSNetwork(TSS.cell(TSS.parse(CELL)), c[0], layers, num_classes, in_channels)

    def cost(self, index: int, num_classes: int = 10, *, input_size: int = 32, C: int | None = None, N: int = 1,
             in_channels: int = 3) -> dict[str, float]:
        from .nats_network import count_params_flops

        check_cells_per_stage(N)
        params, flops = count_params_flops(self.build(index, num_classes, N=N, in_channels=in_channels),
                                           in_channels, input_size)
        return {"params_m": params, "flops_m": flops}


def check_cells_per_stage(N: int, flag: str = "N") -> None:
    """UserError unless N is the size space's one cell per stage (see the module docstring)."""
    if N != CELLS_PER_STAGE:
        raise UserError(f"sss: {flag}={N}, but the size space has one cell per stage (N=1, as "
                        f"NATS-Bench: its five channel counts are three 1-cell stages and two "
                        f"reduction blocks); drop {flag} or set it to 1 for --space sss")


SPACE = SizeSpace()
