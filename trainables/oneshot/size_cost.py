"""What every network of the size space costs, as tables a search can differentiate through.

A NATS size network is a chain: the stem and the first cell depend on the first layer's width
only, each later block on the widths going in and coming out (a reduction maps c0 -> c1, the next
cell c1 -> c2, ...), and the head (BN, pool, classifier) on the last width. So the FLOPs and the
parameters of every configuration are a sum of terms of one or two adjacent layers:

    cost(c) = sum_l unary[l, c_l] + sum_l pair[l, c_l, c_(l+1)]

(not a polynomial in the widths: a cell whose input and output widths agree has an identity
skip, a 1x1 convolution otherwise). The tables are measured, not derived: ``size_costs`` builds
the real networks (``spaces.nats_size.SPACE.build``) for the 64 configurations (a, b, a, b, a) —
which between them put every (input, output) width pair through every block — and counts each
block with the space's own counter (``spaces.nats_network.count_params_flops``), so the sum is
``space.cost`` of the built network by construction (tests/test_size_oneshot.py checks it).

With independent per-layer distributions P [layers, widths] (the strategies' softmax), the
expected cost is exact, pair terms included: sum_l P_l . unary_l + sum_l P_l^T pair_l P_(l+1).
Every configuration's cost at once (``every``) is a broadcast sum in project-index order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spaces.nats_network import count_params_flops
from spaces.nats_size import CHANNELS, NUM_LAYERS
from spaces.nats_size import SPACE as SSS

METRICS = ("flops_m", "params_m")


@dataclass(frozen=True)
class CostTable:
    """One metric (millions) of every size network: ``unary`` [layers, widths], ``pair`` [layers-1, widths, widths]."""

    unary: np.ndarray
    pair: np.ndarray

    def of(self, choices) -> float:
        """The cost of one configuration (width indices, one per layer)."""
        c = [int(k) for k in choices]
        return float(sum(self.unary[layer, k] for layer, k in enumerate(c))
                     + sum(self.pair[layer, c[layer], c[layer + 1]] for layer in range(NUM_LAYERS - 1)))

    def expected(self, probs: torch.Tensor) -> torch.Tensor:
        """The expected cost under independent per-layer distributions ``probs`` [layers, widths]
        (differentiable in ``probs``)."""
        unary = torch.as_tensor(self.unary, dtype=probs.dtype, device=probs.device)
        pair = torch.as_tensor(self.pair, dtype=probs.dtype, device=probs.device)
        return (probs * unary).sum() + torch.einsum("la,lab,lb->", probs[:-1], pair, probs[1:])

    @functools.cached_property
    def every(self) -> np.ndarray:
        """float64 [32768]: the cost of every configuration, by project index."""
        widths = len(CHANNELS)
        total = np.zeros((widths,) * NUM_LAYERS)
        for layer in range(NUM_LAYERS):
            shape = [1] * NUM_LAYERS
            shape[layer] = widths
            total = total + self.unary[layer].reshape(shape)
            if layer < NUM_LAYERS - 1:
                shape[layer + 1] = widths
                total = total + self.pair[layer].reshape(shape)
        return total.reshape(-1)  # C order: the first layer is the most significant digit


@dataclass(frozen=True)
class SizeCosts:
    """FLOPs and parameters (millions) of every size network for one data shape."""

    flops_m: CostTable
    params_m: CostTable

    def table(self, metric: str) -> CostTable:
        return getattr(self, metric)

    def of(self, choices) -> dict[str, float]:
        return {m: self.table(m).of(choices) for m in METRICS}


@functools.cache
def size_costs(num_classes: int, in_channels: int, input_size: int) -> SizeCosts:
    """The cost tables of the size space's networks on images of this shape (module docstring)."""
    widths = len(CHANNELS)
    unary = {m: np.zeros((NUM_LAYERS, widths)) for m in METRICS}
    pair = {m: np.zeros((NUM_LAYERS - 1, widths, widths)) for m in METRICS}
    threads = torch.get_num_threads()
    # One thread: these networks see one image each, and on a busy machine more threads made the
    # 64 builds 50x slower (0.6 s -> 33 s measured). fork_rng: building initialises weights, so the
    # caller's random stream stays untouched.
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            for a in range(widths):
                for b in range(widths):
                    blocks = _block_costs(SSS.index_of_choices((a, b, a, b, a)), num_classes, in_channels,
                                          input_size)
                    for m, (stem, cell0, red1, cell2, red3, cell4, head) in blocks.items():
                        # layer widths (a, b, a, b, a): block l -> l+1 sees (width l, width l+1)
                        pair[m][0, a, b], pair[m][1, b, a], pair[m][2, a, b], pair[m][3, b, a] = (
                            red1, cell2, red3, cell4)
                        if b == 0:  # the first and last layers' terms depend on a alone
                            unary[m][0, a], unary[m][4, a] = stem + cell0, head
    finally:
        torch.set_num_threads(threads)
    return SizeCosts(*(CostTable(unary[m], pair[m]) for m in METRICS))


def _block_costs(index: int, num_classes: int, in_channels: int, input_size: int) -> dict[str, list[float]]:
    """{metric: [stem, the five blocks, head]} of one built network, each block counted on the
    input shape it gets inside the network."""
    net = SSS.build(index, num_classes, in_channels=in_channels)
    head = nn.Sequential(net.lastact, net.pool, nn.Flatten(), net.classifier)
    parts = [net.stem, *net.cells, head]
    shapes: dict[int, tuple[int, int]] = {}
    hooks = [m.register_forward_pre_hook(lambda m, args, i=i: shapes.__setitem__(i, tuple(args[0].shape[1:3])))
             for i, m in enumerate(parts)]
    with torch.no_grad():
        head(net.cells(net.stem(torch.zeros(1, in_channels, input_size, input_size))))
    for h in hooks:
        h.remove()
    counted = [count_params_flops(m, *shapes[i]) for i, m in enumerate(parts)]
    return {"params_m": [p for p, _ in counted], "flops_m": [f for _, f in counted]}
