"""The MBConv supernet AutoHAS searches when its architecture half is ``spaces.mbconv``.

Every block holds its six candidate MBConvs (kernel {3, 5, 7} x expansion {3, 6}); ``forward(x,
sample)`` takes the topology supernet's ``ArchSample`` with one row per block, so the strategies'
hard (one candidate computed, straight-through weight, the unchosen weights added as zeros) and
soft (weighted sum of every candidate) samples work unchanged. As the topology supernet, the
candidates have no BN affine and every BN uses the current batch's statistics.
"""

from __future__ import annotations

import torch
from torch import nn

from spaces.mbconv import CHOICES, MBConv, block_plan, choice_of, stem

from .supernet import ArchSample


class MBConvSupernet(nn.Module):
    def __init__(self, num_classes: int, *, C: int, N: int, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = stem(in_channels, C, track=False)
        self.blocks = nn.ModuleList(
            nn.ModuleList(MBConv(i, o, *choice_of(c), s, affine=False, track=False) for c in CHOICES)
            for i, o, s in block_plan(C, N))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward(self, x: torch.Tensor, sample: ArchSample) -> torch.Tensor:
        h = self.stem(x)
        for b, candidates in enumerate(self.blocks):
            w = sample.weights[b]
            if sample.index is not None:
                k = sample.index[b]
                out = candidates[k](h) * w[k]
                if sample.add_unchosen:
                    out = out + torch.cat([w[:k], w[k + 1:]]).sum()
            else:
                out = sum(w[k] * op(h) for k, op in enumerate(candidates))
            h = out
        return self.classifier(self.pool(h).flatten(1))
