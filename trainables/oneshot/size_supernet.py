"""The channel supernet of the size space, shared by TAS, FBNet-V2 and TuNAS.

The NATS size skeleton (N=1: stem, cell, reduction, cell, reduction, cell, head; the fixed cell
``spaces.nats_size.CELL``) with every layer at the widest candidate, 64 channels. A width c of a
layer is produced from that layer's 64-channel output, after its BN: its first c channels (BN
normalises each channel on its own, so BN before the selection is BN of the narrower layer). The
next layer sees 64 channels with the unselected ones at zero, i.e. the narrower input. How one
forward pass selects is an :class:`Align` per aligned output — the stem and the five layers, six
in all — handed in by the strategy (the supernet has no mode string):

  * :class:`Mask`: multiply channel j by ``mask[j]``. The hard masks (the first c channels are 1,
    the rest 0) are single paths (TuNAS's samples, derivation, the warm-up); FBNet-V2's mask is the
    Gumbel-softmax-weighted sum of the hard masks of all widths.
  * :class:`Interpolate` (TAS): the sampled widths' maps, each aligned to the widest of them by
    channel-wise interpolation (``cwi``) and summed with their weights; zeros above.

As NATS-Bench's ``GenericNAS301Model`` (xautodl/models/shape_searchs/generic_size_tiny_cell_model.py):
only the outputs of the stem and of the five blocks are selected (the nodes inside a cell run at
64 channels), the stem's output is aligned on its own with the first layer's distribution, and
BN layers normalise with batch statistics with no affine parameters, except in the residual
reduction blocks, which keep their affine BN.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from spaces.nats_network import NATSNetwork, ResidualReduction, stage_layers
from spaces.nats_size import CELL, CHANNELS, check_cells_per_stage
from spaces.nats_topology import SPACE as TSS

MAX_WIDTH = max(CHANNELS)
NUM_WIDTHS = len(CHANNELS)
# The alpha row each aligned output draws from: the stem's output is the first layer's width.
ALIGNED_LAYERS = (0, 0, 1, 2, 3, 4)


def cwi_matrix(c_in: int, c_out: int) -> torch.Tensor:
    """[c_out, c_in]: row i averages input channels floor(i c_in / c_out) .. ceil((i + 1) c_in / c_out) - 1
    (the thesis' footnote on channel-wise interpolation; adaptive average pooling over channels)."""
    matrix = torch.zeros(c_out, c_in)
    for i in range(c_out):
        start, end = (i * c_in) // c_out, -((-(i + 1) * c_in) // c_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@functools.cache
def _cwi_weight(c_in: int, c_out: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return cwi_matrix(c_in, c_out).to(dtype=dtype, device=device)[:, :, None, None]


def cwi(x: torch.Tensor, c_out: int) -> torch.Tensor:
    """Channel-wise interpolation of ``x`` [n, c, h, w] to ``c_out`` channels (identity when equal)."""
    if x.shape[1] == c_out:
        return x
    return F.conv2d(x, _cwi_weight(x.shape[1], c_out, x.dtype, x.device))


@functools.cache
def _width_masks(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    masks = torch.zeros(NUM_WIDTHS, MAX_WIDTH, dtype=dtype, device=device)
    for k, c in enumerate(CHANNELS):
        masks[k, :c] = 1.0
    return masks


def width_masks(like: torch.Tensor) -> torch.Tensor:
    """[widths, 64]: row k is 1 on the first CHANNELS[k] channels, 0 on the rest."""
    return _width_masks(like.dtype, like.device)


@dataclass(frozen=True)
class Mask:
    """Channel j of the output times ``mask[j]`` ([64])."""

    mask: torch.Tensor

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        return h * self.mask.view(1, -1, 1, 1)


@dataclass(frozen=True)
class Interpolate:
    """TAS: sum_k weights[k] * cwi(first widths[k] channels, max(widths)), zero-padded to 64."""

    widths: tuple[int, ...]
    weights: torch.Tensor

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        c_out = max(self.widths)
        out = sum(w * cwi(h[:, :c], c_out) for c, w in zip(self.widths, self.weights))
        return F.pad(out, (0, 0, 0, 0, 0, h.shape[1] - c_out))


Align = Mask | Interpolate


def path_sample(choices: Sequence[int], like: torch.Tensor) -> list[Mask]:
    """The single path of one configuration (a width index per layer): its hard masks."""
    masks = width_masks(like)
    return [Mask(masks[int(choices[layer])]) for layer in ALIGNED_LAYERS]


class SizeSupernet(NATSNetwork):
    """Every layer 64 channels wide; ``forward(x, sample)`` with one :class:`Align` per aligned output."""

    def __init__(self, num_classes: int, *, N: int = 1, in_channels: int = 3, input_size: int = 32):
        check_cells_per_stage(N)
        super().__init__(TSS.cell(TSS.parse(CELL)), MAX_WIDTH, stage_layers((MAX_WIDTH,) * 3, N), num_classes,
                         in_channels)
        self.num_classes, self.in_channels, self.input_size = num_classes, in_channels, input_size
        reductions = {id(m) for block in self.cells if isinstance(block, ResidualReduction) for m in block.modules()}
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):  # module docstring: batch statistics; affine in reductions only
                _batch_statistics(m, affine=id(m) in reductions)

    @functools.cached_property
    def costs(self):
        """FLOPs and parameters of every size network on this supernet's data shape (size_cost)."""
        from .size_cost import size_costs

        return size_costs(self.num_classes, self.in_channels, self.input_size)

    def forward(self, x: torch.Tensor, sample: Sequence[Align]) -> torch.Tensor:  # type: ignore[override]
        if len(sample) != len(ALIGNED_LAYERS):
            raise ValueError(f"{len(sample)} aligned outputs for {len(ALIGNED_LAYERS)} (the stem and five layers)")
        h = sample[0](self.stem(x))
        for align, block in zip(sample[1:], self.cells):
            h = align(block(h))
        return self.classifier(self.pool(self.lastact(h)).flatten(1))


def _batch_statistics(bn: nn.BatchNorm2d, *, affine: bool) -> None:
    bn.track_running_stats = False
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        bn.register_buffer(name, None)
    if not affine:
        bn.affine = False
        bn.register_parameter("weight", None)
        bn.register_parameter("bias", None)
