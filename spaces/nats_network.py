"""The NATS-Bench network skeleton, shared by the topology and the size space.

Both spaces build the same macro skeleton — a 3x3 conv stem, stages of cells separated by residual
reduction blocks, BN+ReLU, global pooling and a linear classifier — and differ only in which cell is
used and how many channels each layer has. One builder serves both so that a fix lands once.
Module semantics follow NATS-Bench (AutoDL-Projects ``cell_operations`` / ``TinyNetwork``) so that
parameter and FLOP counts are comparable with the published tables.

torch is imported here, and only modules that build networks import this file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

# A cell: for each of the nodes 1..3, its incoming edges as (op name, source node).
CellSpec = Sequence[Sequence[tuple[str, int]]]


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class Zero(nn.Module):
    """The ``none`` op: contributes nothing (zeros of the output shape)."""

    def __init__(self, c_out: int, stride: int):
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and x.shape[1] == self.c_out:
            return x.mul(0.0)
        n, _, h, w = x.shape
        return x.new_zeros(n, self.c_out, (h + self.stride - 1) // self.stride, (w + self.stride - 1) // self.stride)


class FactorizedReduce(nn.Module):
    """``skip_connect`` when the shape changes: ReLU, 1x1 conv (two offset halves at stride 2), BN."""

    def __init__(self, c_in: int, c_out: int, stride: int, affine: bool = True):
        super().__init__()
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            half = c_out // 2
            self.convs = nn.ModuleList([nn.Conv2d(c_in, half, 1, 2, bias=False),
                                        nn.Conv2d(c_in, c_out - half, 1, 2, bias=False)])
            self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0)
        else:
            self.conv = nn.Conv2d(c_in, c_out, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if self.stride == 2:
            y = self.pad(x)
            out = torch.cat([self.convs[0](x), self.convs[1](y[:, :, 1:, 1:])], dim=1)
        else:
            out = self.conv(x)
        return self.bn(out)


class AvgPool(nn.Module):
    """``avg_pool_3x3``; a 1x1 ReLUConvBN first adapts the channels when they change (size space)."""

    def __init__(self, c_in: int, c_out: int, stride: int, affine: bool = True):
        super().__init__()
        self.pre = ReLUConvBN(c_in, c_out, 1, 1, 0, affine) if c_in != c_out else None
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.pre(x) if self.pre is not None else x)


def make_op(name: str, c_in: int, c_out: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """One candidate operation of the NATS cell, by its NATS-Bench name."""
    if name == "none":
        return Zero(c_out, stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 and c_in == c_out else FactorizedReduce(c_in, c_out, stride, affine)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride, 0, affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, stride, 1, affine)
    if name == "avg_pool_3x3":
        return AvgPool(c_in, c_out, stride, affine)
    raise ValueError(f"unknown NATS op {name!r}")


class Cell(nn.Module):
    """A fixed NATS cell: node i = sum of op(node j) over its incoming edges; the output is node 3.

    Edges leaving the cell input map c_in -> c_out, the others c_out -> c_out (as NATS-Bench).
    """

    def __init__(self, spec: CellSpec, c_in: int, c_out: int):
        super().__init__()
        self.sources = [[src for _, src in node] for node in spec]
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(op, c_in if src == 0 else c_out, c_out) for op, src in node) for node in spec
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for sources, ops in zip(self.sources, self.edges):
            nodes.append(sum(op(nodes[src]) for op, src in zip(ops, sources)))
        return nodes[-1]


class ResidualReduction(nn.Module):
    """The basic residual block between stages: stride 2; shortcut 2x2 avg-pool + 1x1 conv."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NATSNetwork(nn.Module):
    """Stem, then ``layers`` as (channels, is_reduction) pairs, then BN+ReLU, pool, linear.

    ``make_cell(c_in, c_out)`` replaces the fixed cell (the one-shot supernet puts its searchable
    cell there, so that both share this skeleton).
    """

    def __init__(self, cell: CellSpec | None, stem_channels: int, layers: Sequence[tuple[int, bool]],
                 num_classes: int, in_channels: int = 3,
                 make_cell: Callable[[int, int], nn.Module] | None = None):
        super().__init__()
        make_cell = make_cell or (lambda c_in, c_out: Cell(cell, c_in, c_out))
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(stem_channels))
        blocks, c_prev = [], stem_channels
        for c, reduction in layers:
            blocks.append(ResidualReduction(c_prev, c) if reduction else make_cell(c_prev, c))
            c_prev = c
        self.cells = nn.Sequential(*blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool(self.lastact(self.cells(self.stem(x))))
        return self.classifier(out.flatten(1))


def stage_layers(stage_channels: Sequence[int], n: int) -> list[tuple[int, bool]]:
    """N cells per stage with a reduction block in front of every stage but the first."""
    layers: list[tuple[int, bool]] = []
    for s, c in enumerate(stage_channels):
        if s > 0:
            layers.append((c, True))
        layers.extend([(c, False)] * n)
    return layers


def count_params_flops(model: nn.Module, in_channels: int, input_size: int) -> tuple[float, float]:
    """(params in millions, multiply-adds of conv and linear layers for one image in millions).

    FLOPs are counted with forward hooks on one image, so the figure follows the network that is
    actually built rather than a separate formula that could drift from it.
    """
    macs = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal macs
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs += out.numel() * k

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal macs
        macs += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_channels, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return params / 1e6, macs / 1e6
