"""The FLOPs (multiply-adds, millions) of a CIFAR ResNet as a function of its width and depth distributions.

``resnet_flops(widths, depths, ...)``: ``widths`` gives per conv (the stem, then conv a and conv b
of every block of the unpruned network) its candidate widths and their probabilities, ``depths``
per stage the probabilities of keeping 1..n blocks. Block j of a stage runs with probability
P(depth > j); a stage's output width is the conv-b width of its last kept block. Every conv term
is (input width) x (output width) x k^2 x (output resolution)^2, the classifier's (last width) x
classes — the terms ``spaces.nats_network.count_params_flops`` counts on the built network, with
the shortcuts of ``spaces.cifar_resnet`` (a 1x1 conv after the 2x2 pool of a downsampling block;
a 1x1 conv where a stride-1 block's input and output widths differ).

With one-hot probabilities this is exactly the FLOPs of that network (the derived network's
F_cost; tests/test_prune.py checks it against the counter). With soft probabilities it is TAS'
expected cost E_cost (Eq. 3.14), differentiable in them: products of independent widths'
expectations, as xautodl's ``get_flop``; the one approximation is the stride-1 projection,
weighted by P(widths differ) times the product of the widths' means.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from spaces.cifar_resnet import STAGE_CHANNELS

Widths = tuple[Sequence[int], torch.Tensor]  # (candidate widths, their probabilities)


def _mean(w: Widths) -> torch.Tensor:
    values, probs = w
    return (torch.as_tensor(values, dtype=probs.dtype, device=probs.device) * probs).sum()


def _differ(a: Widths, b: Widths) -> torch.Tensor:
    """P(width a != width b) for independent a and b."""
    (va, pa), (vb, pb) = a, b
    same = (torch.as_tensor(va)[:, None] == torch.as_tensor(vb)[None, :]).to(pa)
    return 1.0 - pa @ same @ pb


def stage_sizes(input_size: int) -> tuple[int, ...]:
    """The resolution of each stage: the input's, then halved (rounded up) per stage."""
    sizes = [input_size]
    for _ in STAGE_CHANNELS[1:]:
        sizes.append(-(-sizes[-1] // 2))
    return tuple(sizes)


def resnet_flops(widths: Sequence[Widths], depths: Sequence[torch.Tensor], *, in_channels: int,
                 num_classes: int, input_size: int) -> torch.Tensor:
    """Expected (or, one-hot, exact) MFLOPs; see the module docstring."""
    n = len(depths[0])
    if len(widths) != 1 + 2 * n * len(STAGE_CHANNELS):
        raise ValueError(f"{len(widths)} width distributions for {1 + 2 * n * len(STAGE_CHANNELS)} convs")
    sizes = stage_sizes(input_size)
    stem = widths[0]
    total = in_channels * _mean(stem) * 9 * sizes[0] ** 2
    entering, k = _mean(stem), 1
    for s, q in enumerate(depths):
        area = sizes[s] ** 2
        kept = q.flip(0).cumsum(0).flip(0)  # kept[j] = P(depth > j)
        out = 0.0
        prev = stem
        for j in range(n):
            a, b = widths[k], widths[k + 1]
            k += 2
            c_in = entering if j == 0 else _mean(prev)
            block = c_in * _mean(a) * 9 + _mean(a) * _mean(b) * 9
            if s > 0 and j == 0:
                block = block + c_in * _mean(b)
            elif j > 0 or s == 0:
                block = block + _differ(prev, b) * c_in * _mean(b)
            total = total + kept[j] * block * area
            out = out + q[j] * _mean(b)
            prev = b
        entering = out
    return (total + entering * num_classes) / 1e6


def one_hot(values: Sequence[int], chosen: int) -> Widths:
    """The distribution that keeps ``chosen`` of ``values`` surely."""
    probs = torch.zeros(len(values), dtype=torch.float64)
    probs[list(values).index(chosen)] = 1.0
    return values, probs


def depth_one_hot(n: int, depth: int) -> torch.Tensor:
    q = torch.zeros(n, dtype=torch.float64)
    q[depth - 1] = 1.0
    return q
