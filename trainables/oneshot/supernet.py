"""The topology supernet shared by every one-shot strategy.

The NATS skeleton (``spaces.nats_network.NATSNetwork``) with a searchable cell: each of the six
edges holds all five candidate ops. ``forward(x, sample)`` takes an :class:`ArchSample` — the
per-edge op weights and, optionally, one hard op index per edge — and never a mode string, so
DARTS (a softmax mixture), GDAS (one Gumbel-sampled op) and uniform single-path training (SETN,
ENAS, RSPS) differ only in the sample their strategy hands in (NASLib's ``MixedOp`` template).
``forward`` also takes one sample per search cell (a sequence), for RSPS, whose NATS-Bench form
draws the ops of every cell separately.

Weight-sharing defaults follow the thesis' advice: candidate ops have no learnable BN affine, and
every BN in the supernet normalises with the statistics of the current batch, in training and in
evaluation alike (running statistics averaged over many different sub-networks describe none of
them). The architecture is shared by all cells, as in NATS-Bench, except where a strategy hands
in one sample per cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from spaces.nats_network import NATSNetwork, make_op, stage_layers
from spaces.nats_topology import EDGES, OPS

NUM_EDGES, NUM_OPS = len(EDGES), len(OPS)


@dataclass(frozen=True)
class ArchSample:
    """What one forward pass computes on every edge.

    ``weights`` [edges, ops]: each candidate's multiplier. ``index``: one op per edge, or None.
    With ``index`` only the chosen op runs, scaled by its weight (1 for plain single-path
    training; GDAS's straight-through weight, whose value is 1 but whose gradient reaches every
    logit); without it every op runs and the edge is the weighted sum.
    ``add_unchosen`` (with ``index``): the edge also adds the weights of the ops it did not run,
    as scalars. GDAS's are exactly 0 in value (hard one-hot minus p plus p), so the output is
    unchanged, but each unchosen op's weight receives the summed upstream gradient: NATS-Bench's
    ``forward_gdas`` (xautodl/models/cell_searchs/search_cells.py, ~line 81).
    """

    weights: torch.Tensor
    index: tuple[int, ...] | None = None
    add_unchosen: bool = False

    @classmethod
    def single_path(cls, index: tuple[int, ...] | list[int], like: torch.Tensor | None = None) -> ArchSample:
        """One op per edge with weight 1: a plain sub-network of the supernet."""
        kw = {} if like is None else {"dtype": like.dtype, "device": like.device}
        return cls(torch.ones(NUM_EDGES, NUM_OPS, **kw), tuple(int(i) for i in index))


class SearchCell(nn.Module):
    """A NATS cell whose every edge holds all candidate ops (``edges[e][k]``: op k on edge e)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(op, c_in if src == 0 else c_out, c_out, affine=False) for op in OPS)
            for _, src in EDGES)

    def forward(self, x: torch.Tensor, sample: ArchSample) -> torch.Tensor:
        nodes = [x]
        for e, (target, src) in enumerate(EDGES):
            if target == len(nodes):  # first edge into a new node
                nodes.append(0)
            ops, w = self.edges[e], sample.weights[e]
            if sample.index is not None:
                k = sample.index[e]
                term = ops[k](nodes[src]) * w[k]
                if sample.add_unchosen:  # value + 0, gradient to every unchosen weight
                    term = term + torch.cat([w[:k], w[k + 1:]]).sum()
            else:
                term = sum(w[k] * op(nodes[src]) for k, op in enumerate(ops))
            nodes[target] = nodes[target] + term
        return nodes[-1]


class TopologySupernet(NATSNetwork):
    """The NATS topology skeleton (stem C, stages of N cells at C, 2C, 4C) with search cells."""

    def __init__(self, num_classes: int, *, C: int, N: int, in_channels: int = 3):
        super().__init__(None, C, stage_layers((C, 2 * C, 4 * C), N), num_classes, in_channels,
                         make_cell=SearchCell)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):  # batch statistics always (module docstring)
                m.track_running_stats = False
                m.register_buffer("running_mean", None)
                m.register_buffer("running_var", None)
                m.register_buffer("num_batches_tracked", None)

    def search_cells(self) -> int:
        """How many search cells the skeleton holds (3 * N)."""
        return sum(isinstance(block, SearchCell) for block in self.cells)

    def forward(self, x: torch.Tensor, sample: ArchSample | Sequence[ArchSample]) -> torch.Tensor:  # type: ignore[override]
        """``sample``: one for every search cell, or a sequence of one per search cell, in order."""
        per_cell = None if isinstance(sample, ArchSample) else iter(sample)
        if per_cell is not None and len(sample) != self.search_cells():
            raise ValueError(f"{len(sample)} cell samples for {self.search_cells()} search cells")
        h = self.stem(x)
        for block in self.cells:
            if isinstance(block, SearchCell):
                h = block(h, sample if per_cell is None else next(per_cell))
            else:
                h = block(h)
        return self.classifier(self.pool(self.lastact(h)).flatten(1))
