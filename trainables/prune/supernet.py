"""The searchable CIFAR ResNet of TAS' pruning search (thesis Section 3.3.2-3.3.4).

The unpruned network of ``spaces.cifar_resnet`` with every conv at its full width C and every
block present. One forward pass is told, per conv, which widths to produce — an
``Interpolate`` of ``trainables.oneshot.size_supernet`` (TAS' sampled subset I of the conv's width
candidates, their feature maps aligned to the widest of them by channel-wise interpolation and
summed with their Gumbel-softmax weights, zero above) — and, per stage, how to weigh its depths:

    O_stage = sum_d q_d * CWI(O_d, max_d c_d)                                       (Eq. 3.13)

where O_d is the output of the stage's d-th block, c_d its width and q = softmax(beta) the
stage's depth distribution over every candidate depth 1..n (all aggregated, none sampled, as
xautodl's ``SearchShapeCifarResNet``). Widths are ``round(r * C)`` for r in ``RATIOS`` (0.3, 0.4,
..., 1.0). As there, a block's identity shortcut adds its c_in-wide input to its c_b-wide second
conv, so the sum is max(c_in, c_b) wide, and a downsampling shortcut (2x2 avg pool, 1x1 conv)
yields the second conv's width. A tensor always has C channels; ``width`` travels beside it and
says how many of them are real (the rest are zero).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from spaces.cifar_resnet import STAGE_CHANNELS, STEM_CHANNELS, ConvBN, check_model
from spaces.errors import UserError
from trainables.oneshot.size_supernet import Interpolate, cwi

RATIOS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def check_ratios(ratios: Sequence[float], flag: str = "width ratios") -> tuple[float, ...]:
    """The candidate ratios, sorted; UserError for an empty list or a ratio outside (0, 1]."""
    bad = [r for r in ratios if not (isinstance(r, (int, float)) and 0 < r <= 1)]
    if not ratios or bad:
        raise UserError(f"{flag} {list(ratios)}: every ratio must lie in (0, 1] (a share of a layer's channels)"
                        + (f"; {bad} do not" if bad else ""))
    return tuple(sorted({float(r) for r in ratios}))


def width_candidates(channels: int, ratios: Sequence[float]) -> tuple[int, ...]:
    """The widths a conv of ``channels`` channels may keep: round(r * channels), at least 1."""
    return tuple(max(1, round(r * channels)) for r in ratios)


def full_widths(channels: int) -> Interpolate:
    """The alignment that keeps all ``channels`` (a conv that is not searched)."""
    return Interpolate((channels,), torch.ones(1))


def _pad(h: torch.Tensor, channels: int) -> torch.Tensor:
    return F.pad(h, (0, 0, 0, 0, 0, channels - h.shape[1]))


class SearchBlock(nn.Module):
    def __init__(self, c_in: int, channels: int, stride: int) -> None:
        super().__init__()
        self.channels = channels
        self.conv_a = ConvBN(c_in, channels, 3, stride, relu=True)
        self.conv_b = ConvBN(channels, channels, 3, 1)
        self.downsample = ConvBN(c_in, channels, 1, 2, avg=True, bn=False) if stride == 2 else None

    def forward(self, x: torch.Tensor, width: int, align_a: Interpolate,
                align_b: Interpolate) -> tuple[torch.Tensor, int]:
        out = align_b(self.conv_b(align_a(self.conv_a(x))))
        c_b = max(align_b.widths)
        if self.downsample is None:
            return torch.relu(out + x), max(width, c_b)
        residual = _pad(self.downsample(x)[:, :c_b], self.channels)
        return torch.relu(out + residual), c_b


class SearchableResNet(nn.Module):
    """``forward(x, widths, depths)``: ``widths`` one Interpolate per conv (the stem, then conv a and
    conv b of every block, stage by stage); ``depths`` one weight vector per stage over the depths
    1..n (Eq. 3.13), or None for the full depth."""

    def __init__(self, model: str, num_classes: int, *, in_channels: int = 3, input_size: int = 32) -> None:
        super().__init__()
        self.model, self.blocks_per_stage = model, check_model(model)
        self.num_classes, self.in_channels, self.input_size = num_classes, in_channels, input_size
        self.stem = ConvBN(in_channels, STEM_CHANNELS, 3, 1, relu=True)
        c, stages = STEM_CHANNELS, []
        for s, channels in enumerate(STAGE_CHANNELS):
            stages.append(nn.ModuleList(SearchBlock(c if b == 0 else channels, channels, 2 if (s and not b) else 1)
                                        for b in range(self.blocks_per_stage)))
            c = channels
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    @property
    def conv_channels(self) -> tuple[int, ...]:
        """The full width of every searched conv, in ``widths`` order."""
        return (STEM_CHANNELS, *(c for c in STAGE_CHANNELS for _ in range(2 * self.blocks_per_stage)))

    def forward(self, x: torch.Tensor, widths: Sequence[Interpolate],
                depths: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        if len(widths) != len(self.conv_channels):
            raise ValueError(f"{len(widths)} width alignments for {len(self.conv_channels)} convs")
        h = widths[0](self.stem(x))
        width, k = max(widths[0].widths), 1
        for s, stage in enumerate(self.stages):
            outs = []
            for block in stage:
                h, width = block(h, width, widths[k], widths[k + 1])
                k += 2
                outs.append((h, width))
            if depths is not None:
                h, width = aggregate_depths(outs, depths[s], STAGE_CHANNELS[s])
        return self.classifier(self.pool(h).flatten(1))


def aggregate_depths(outs: Sequence[tuple[torch.Tensor, int]], weights: torch.Tensor,
                     channels: int) -> tuple[torch.Tensor, int]:
    """Eq. 3.13: sum_d weights[d] * CWI(the d-th block's output, the widest of them), zero-padded to
    ``channels``; (the sum, its width)."""
    widest = max(w for _, w in outs)
    total = sum(q * cwi(h[:, :w], widest) for q, (h, w) in zip(weights, outs))
    return _pad(total, channels), widest
