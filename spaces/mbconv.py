"""A MobileNet-V2-like space of MBConv blocks (the AutoHAS paper's architecture half, Chapter 4).

The skeleton: a 3x3 stem of C channels, three stages of N MBConv blocks at C, 2C and 4C channels
(strides 1, 2, 2: the first block of a stage changes the width and, after the first stage, halves
the resolution), global pooling and a linear classifier. Every block searches its depthwise
kernel size {3, 5, 7} and its expansion ratio {3, 6}: six choices per block, written ``k{k}e{e}``.
C, N and the input size are configurable (a CPU test uses C=4, N=1 on 8x8 digits); the thesis'
supermodel is MobileNet-V2 at 224 px, which this reproduces in kind, not in size.

An architecture string is the choices joined by ``-`` (``k3e6-k5e3-...``), first block first; the
project index reads them as a mixed-radix number (``spaces.base``).
"""

from __future__ import annotations

from functools import cached_property

from torch import nn

from .base import CategoricalSpace
from .errors import UserError

KERNELS = (3, 5, 7)
EXPANSIONS = (3, 6)
CHOICES = tuple(f"k{k}e{e}" for k in KERNELS for e in EXPANSIONS)
STAGES = 3


def choice_of(name: str) -> tuple[int, int]:
    """``"k5e3"`` -> (kernel 5, expansion 3)."""
    return KERNELS[CHOICES.index(name) // len(EXPANSIONS)], EXPANSIONS[CHOICES.index(name) % len(EXPANSIONS)]


def block_plan(C: int, N: int) -> list[tuple[int, int, int]]:
    """(c_in, c_out, stride) of every block: three stages of N blocks at C, 2C, 4C."""
    plan, c_in = [], C
    for s, width in enumerate((C, 2 * C, 4 * C)):
        for b in range(N):
            plan.append((c_in, width, 2 if (b == 0 and s > 0) else 1))
            c_in = width
    return plan


class MBConvSpace(CategoricalSpace):
    """The MBConv space of ``3 * N`` blocks (``N`` blocks per stage)."""

    choices = CHOICES

    def __init__(self, N: int = 1) -> None:
        if not isinstance(N, int) or isinstance(N, bool) or N < 1:
            raise UserError(f"the MBConv space needs N >= 1 blocks per stage, got {N!r}")
        self.N = N
        self.name = f"mbconv-{STAGES * N}"
        self.decisions = tuple(f"block{i}" for i in range(STAGES * N))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MBConvSpace) and other.N == self.N

    def __hash__(self) -> int:
        return hash(("mbconv", self.N))

    def parse(self, arch: str) -> int:
        parts = arch.strip().split("-")
        if len(parts) != len(self.decisions) or any(p not in CHOICES for p in parts):
            raise UserError(f"{self.name}: {arch!r} is not {len(self.decisions)} choices of {list(CHOICES)} "
                            "joined by '-'")
        return self.index_of_choices([CHOICES.index(p) for p in parts])

    def to_str(self, index: int) -> str:
        return "-".join(CHOICES[c] for c in self.choice_indices(index))

    def iso_class_ids(self):
        import numpy as np

        return np.arange(self.size)  # every choice is a different network

    @cached_property
    def default_index(self) -> int:
        """MobileNet-V2's own block (3x3 kernel, expansion 6) everywhere: AutoHAS (HP)'s fixed network."""
        return self.index_of_choices([CHOICES.index("k3e6")] * len(self.decisions))

    def build(self, index: int, num_classes: int = 10, *, C: int = 16, in_channels: int = 3) -> nn.Module:
        """The stand-alone network of one architecture (running BN statistics, learnable affine)."""
        return MBConvNet([choice_of(CHOICES[c]) for c in self.choice_indices(index)], num_classes, C=C,
                         N=self.N, in_channels=in_channels)


class MBConv(nn.Module):
    """MobileNet-V2's inverted residual: 1x1 expand, kxk depthwise, 1x1 project (+ identity)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expansion: int, stride: int, affine: bool = True,
                 track: bool = True) -> None:
        super().__init__()
        hidden = c_in * expansion

        def bn(c):
            return nn.BatchNorm2d(c, affine=affine, track_running_stats=track)

        self.body = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False), bn(hidden), nn.ReLU6(inplace=False),
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False), bn(hidden),
            nn.ReLU6(inplace=False),
            nn.Conv2d(hidden, c_out, 1, bias=False), bn(c_out))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        out = self.body(x)
        return out + x if self.residual else out


def stem(in_channels: int, C: int, track: bool = True) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, C, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(C, track_running_stats=track), nn.ReLU6(inplace=False))


class MBConvNet(nn.Module):
    """One fixed network of the space: ``blocks`` is (kernel, expansion) per block."""

    def __init__(self, blocks, num_classes: int, *, C: int, N: int, in_channels: int = 3) -> None:
        super().__init__()
        plan = block_plan(C, N)
        if len(blocks) != len(plan):
            raise UserError(f"{len(blocks)} block choices for {len(plan)} blocks")
        self.stem = stem(in_channels, C)
        self.blocks = nn.Sequential(*(MBConv(i, o, k, e, s) for (i, o, s), (k, e) in zip(plan, blocks)))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.blocks(self.stem(x))).flatten(1))
