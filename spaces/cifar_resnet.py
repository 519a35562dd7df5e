"""CIFAR ResNets (He et al., 2016, Section 4.2): ResNet-20/32/56/110, and every pruned variant of them.

Three stages of n basic blocks (depth 6n + 2) at 16, 32 and 64 channels, a 3x3 stem at 16 channels,
global average pooling and a linear classifier; stages 2 and 3 halve the resolution in their first
block. Any input size, channel count and class count (the pooling is global).

A network is a :class:`ResNetArch`: the stem's width and, per stage, the (first conv, second conv)
widths of every block it keeps, so the unpruned ResNet-20 is ``16/16-16,16-16,16-16/32-32,...`` and
a pruned one may keep fewer blocks per stage (depth) and fewer channels per conv (width), which is
what TAS searches (thesis Section 3.3.4, Tables 3.5-3.7). As xautodl's ``InferCifarResNet``
(models/shape_infers/InferCifarResNet.py), which builds TAS' derived networks:

  * a block is conv3x3-BN-ReLU, conv3x3-BN, plus the shortcut, then ReLU;
  * the shortcut of a block that halves the resolution is a 2x2 average pool and a 1x1 conv (no
    BN; the pool rounds up, as the stride-2 conv does, so odd sizes work too); that of a block whose
    input and output widths differ, a 1x1 conv and BN; else identity.

With the full widths that is He et al.'s ResNet with projection shortcuts only where the resolution
changes: ResNet-20 has 0.27 M parameters and 40.8 M FLOPs (multiply-adds) on 32x32x3 with 10
classes, the published figures (tests/test_prune.py). Costs are counted on the built network with
the project's one counter (``spaces.nats_network.count_params_flops``: conv and linear MACs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .errors import UserError
from .nats_network import count_params_flops

# model name -> blocks per stage (depth 6n + 2)
MODELS: dict[str, int] = {"resnet20": 3, "resnet32": 5, "resnet56": 9, "resnet110": 18}
STAGE_CHANNELS: tuple[int, ...] = (16, 32, 64)
STEM_CHANNELS = 16


def check_model(name: str) -> int:
    """Blocks per stage of ``name``; UserError naming the models for any other."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


@dataclass(frozen=True)
class ResNetArch:
    """A (pruned) CIFAR ResNet: the stem's width and per stage the (conv a, conv b) widths of its blocks."""

    stem: int
    stages: tuple[tuple[tuple[int, int], ...], ...]

    def __post_init__(self) -> None:
        if len(self.stages) != len(STAGE_CHANNELS):
            raise UserError(f"a CIFAR ResNet has {len(STAGE_CHANNELS)} stages, got {len(self.stages)}")
        widths = [self.stem, *(c for stage in self.stages for block in stage for c in block)]
        if any(not isinstance(c, int) or c < 1 for c in widths):
            raise UserError(f"every width must be a positive integer, got {widths}")
        if any(len(stage) < 1 for stage in self.stages):
            raise UserError("every stage keeps at least one block")

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.stages)

    @property
    def out_width(self) -> int:
        return self.stages[-1][-1][1]

    def to_str(self) -> str:
        """``stem/a-b,a-b,.../...``: stages separated by '/', blocks by ','."""
        return "/".join([str(self.stem), *(",".join(f"{a}-{b}" for a, b in stage) for stage in self.stages)])

    @classmethod
    def parse(cls, text: str) -> ResNetArch:
        parts = text.strip().split("/")
        if len(parts) != 1 + len(STAGE_CHANNELS) or not all(re.fullmatch(r"\d+(-\d+)?(,\d+-\d+)*", p) for p in parts):
            raise UserError(f"ResNet architecture {text!r}: write stem/a-b,a-b,.../.../... (e.g. "
                            f"{full_arch('resnet20').to_str()})")
        stages = tuple(tuple(tuple(int(c) for c in block.split("-")) for block in p.split(",")) for p in parts[1:])
        return cls(int(parts[0]), stages)  # type: ignore[arg-type]


def full_arch(model: str) -> ResNetArch:
    """The unpruned network of ``model``."""
    n = check_model(model)
    return ResNetArch(STEM_CHANNELS, tuple(((c, c),) * n for c in STAGE_CHANNELS))


def scaled_arch(model: str, ratios: Sequence[float], depths: Sequence[int] | None = None) -> ResNetArch:
    """``model`` with conv l at round(ratios[l] * its channels) (at least 1) and the first
    ``depths[s]`` blocks of stage s. ``ratios`` has one entry per conv of the unpruned network
    (the stem, then two per block), or one for all."""
    full = full_arch(model)
    base = [full.stem, *(c for stage in full.stages for block in stage for c in block)]
    ratios = list(ratios) * len(base) if len(ratios) == 1 else list(ratios)
    if len(ratios) != len(base):
        raise UserError(f"{model} has {len(base)} convs to scale, got {len(ratios)} ratios")
    for r in ratios:
        if not (isinstance(r, (int, float)) and 0 < r <= 1):
            raise UserError(f"width ratio {r!r} is outside (0, 1]: a pruned layer keeps a share of its channels")
    widths = [max(1, round(r * c)) for r, c in zip(ratios, base)]
    depths = full.depths if depths is None else tuple(depths)
    if len(depths) != len(STAGE_CHANNELS) or any(not 1 <= d <= n for d, n in zip(depths, full.depths)):
        raise UserError(f"depths {list(depths)}: one per stage, each from 1 to {full.depths[0]} blocks")
    it, stages = iter(widths[1:]), []
    for s, n in enumerate(full.depths):
        blocks = [(next(it), next(it)) for _ in range(n)]
        stages.append(tuple(blocks[: depths[s]]))
    return ResNetArch(widths[0], tuple(stages))


class ConvBN(nn.Module):
    """[2x2 avg pool] conv [BN] [ReLU] (xautodl's ConvBNReLU)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, *, avg: bool = False, bn: bool = True,
                 relu: bool = False) -> None:
        super().__init__()
        self.avg = nn.AvgPool2d(2, 2, ceil_mode=True) if avg else None  # odd sizes: as the stride-2 conv
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=1 if avg else stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out) if bn else None
        self.relu = nn.ReLU(inplace=False) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.avg is not None:
            x = self.avg(x)
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return x if self.relu is None else self.relu(x)


def shortcut(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    """The block's shortcut (module docstring); None for the identity."""
    if stride == 2:
        return ConvBN(c_in, c_out, 1, 2, avg=True, bn=False)
    if c_in != c_out:
        return ConvBN(c_in, c_out, 1, 1)
    return None


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_a: int, c_b: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ConvBN(c_in, c_a, 3, stride, relu=True)
        self.conv_b = ConvBN(c_a, c_b, 3, 1)
        self.downsample = shortcut(c_in, c_b, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.conv_b(self.conv_a(x)) + residual)


class CifarResNet(nn.Module):
    """The network of one :class:`ResNetArch`: ``stem``, ``stages`` (ModuleList of Sequentials), ``classifier``."""

    def __init__(self, arch: ResNetArch, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.arch = arch
        self.stem = ConvBN(in_channels, arch.stem, 3, 1, relu=True)
        c, stages = arch.stem, []
        for s, stage in enumerate(arch.stages):
            blocks = []
            for b, (c_a, c_b) in enumerate(stage):
                blocks.append(BasicBlock(c, c_a, c_b, 2 if (s > 0 and b == 0) else 1))
                c = c_b
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)
        for m in self.modules():  # He et al.'s initialisation (xautodl's initialize_resnet)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for stage in self.stages:
            h = stage(h)
        return self.classifier(self.pool(h).flatten(1))


def build(arch: ResNetArch | str, num_classes: int = 10, *, in_channels: int = 3) -> CifarResNet:
    """The network of ``arch`` (a :class:`ResNetArch`, a model name or an architecture string)."""
    if isinstance(arch, str):
        arch = full_arch(arch) if arch in MODELS else ResNetArch.parse(arch)
    return CifarResNet(arch, num_classes, in_channels)


def cost(arch: ResNetArch | str, num_classes: int = 10, *, in_channels: int = 3,
         input_size: int = 32) -> dict[str, float]:
    """{"params_m", "flops_m"} of the built network, counted on one image (module docstring)."""
    with torch.random.fork_rng(devices=[]):  # building initialises weights: leave the caller's stream alone
        net = build(arch, num_classes, in_channels=in_channels)
    params, flops = count_params_flops(net, in_channels, input_size)
    return {"params_m": params, "flops_m": flops}
