"""What every one-shot algorithm shares; each algorithm is a small subclass in its own file.

A strategy answers three questions about its space's supernet (``supernet.TopologySupernet`` for
the topology space, ``size_supernet.SizeSupernet`` for the size space):
  * ``weight_sample()`` — which sub-network(s) the next weight step trains (a softmax mixture, a
    Gumbel sample, a uniform or controller-sampled single path; for the size space masks or
    interpolated widths);
  * ``arch_step(train, valid, search)`` — how the architecture parameters learn from a pair of
    batches (nothing for RSPS);
  * ``derive(search)`` — which architecture the search currently recommends: argmax per decision
    for DARTS/GDAS and the size strategies, the best of 100 candidates ranked with the shared
    weights for SETN (the most probable ones), ENAS (controller samples) and RSPS (distinct
    uniform draws).
``path_sample(choices, like)`` is the supernet's input for one fixed architecture (what the
engine ranks and scores), and ``report(choices)`` the per-epoch figures a strategy adds.
The weight step itself, the data, the schedule and checkpoints live in ``search.SearchEngine``.

``BaseStrategy`` holds what does not depend on the space (alpha [decisions, choices] with DARTS'
Adam, entropy, confidence, checkpoints); ``Strategy`` is the topology space's base with its
helpers, ``size_strategy.SizeStrategy`` the size space's.

All randomness of a strategy comes from the one ``torch.Generator`` it is given (a CPU generator:
the samples are a few dozen numbers), so a restored search draws exactly what the uninterrupted
one would have drawn.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from spaces.nats_topology import EDGES, OPS

from .supernet import NUM_EDGES, NUM_OPS, ArchSample

NONE_OP = OPS.index("none")
NUM_ARCHS = NUM_OPS ** NUM_EDGES

if TYPE_CHECKING:  # only for type hints: search imports the strategies
    from .search import SearchEngine

Batch = tuple[torch.Tensor, torch.Tensor]


@functools.cache
def all_ops() -> torch.Tensor:
    """[NUM_ARCHS, edges] int64: row i is the op per edge of architecture index i (the space's
    ``index_of_choices`` order, first edge most significant)."""
    index = torch.arange(NUM_ARCHS)
    powers = NUM_OPS ** torch.arange(NUM_EDGES - 1, -1, -1)
    return (index[:, None] // powers) % NUM_OPS


def ops_of(index: int) -> tuple[int, ...]:
    return tuple(all_ops()[int(index)].tolist())


def linear_tau(tau_max: float, tau_min: float, epoch: int, epochs: int) -> float:
    """The Gumbel-softmax temperature of epoch ``epoch`` (0-based): linear from ``tau_max`` at the
    first epoch to ``tau_min`` at the last (GDAS's and TAS's schedule)."""
    return tau_max - (tau_max - tau_min) * epoch / max(1, epochs - 1)


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Standard Gumbel noise from ``generator`` (an exponential draw of exactly 0, which would give
    infinite noise and NaN probabilities, is clamped rather than redrawn)."""
    draw = torch.empty(shape).exponential_(generator=generator)
    return -draw.clamp_min(torch.finfo(draw.dtype).tiny).log()


class BaseStrategy:
    """What a strategy is on any space: architecture parameters alpha [decisions, choices] (shape
    ``shape``) with DARTS' Adam, the default argmax derivation, and checkpoints."""

    name: ClassVar[str]
    space: ClassVar[str]                # the space the strategy searches ("tss" | "sss")
    shape: ClassVar[tuple[int, int]]    # (decisions, choices per decision)
    learns_alpha: ClassVar[bool] = True  # False: no alpha, no architecture optimizer (RSPS, ENAS)

    def __init__(self, net: nn.Module, generator: torch.Generator, epochs: int, *,
                 arch_lr: float = 3e-4, arch_weight_decay: float = 1e-3) -> None:
        self.net, self.generator, self.epochs = net, generator, int(epochs)
        self.epoch = 0  # the search epoch in progress (0-based), set by the engine
        device = next(net.parameters()).device
        self.alpha = self.arch_optimizer = None
        if self.learns_alpha:
            # DARTS' initialisation and optimizer (Adam, betas (0.5, 0.999), lr 3e-4, wd 1e-3).
            init = 1e-3 * torch.randn(*self.shape, generator=generator)
            self.alpha = nn.Parameter(init.to(device))
            self.arch_optimizer = torch.optim.Adam([self.alpha], lr=arch_lr, betas=(0.5, 0.999),
                                                   weight_decay=arch_weight_decay)

    @classmethod
    def search_space(cls, N: int):
        """The architecture space the engine indexes and names the derived choices in."""
        from spaces import get_space

        return get_space(cls.space)

    def bind(self, search: SearchEngine) -> None:
        """Called once by the engine after it is built (AutoHAS sizes its per-step encodings here)."""

    def search_step(self, train: Batch, valid, search: SearchEngine) -> tuple[torch.Tensor, torch.Tensor]:
        """One search iteration: the engine's weight step on ``train`` with ``weight_sample()``, then
        ``arch_step`` on the next batch of ``valid`` (an iterator); (training loss, logits)."""
        loss, logits = search.weight_step(train, self.weight_sample())
        self.arch_step(train, next(valid), search)
        return loss, logits

    # --- the three questions ------------------------------------------------------------------------
    def weight_sample(self):
        raise NotImplementedError

    def arch_step(self, train: Batch, valid: Batch, search: SearchEngine) -> None:
        """Default: no architecture parameters to learn."""

    def derive(self, search: SearchEngine) -> tuple[int, ...]:
        """Default: the most likely choice of every decision (the thesis' rule for DARTS and GDAS)."""
        return self.most_likely()

    def most_likely(self) -> tuple[int, ...]:
        return tuple(self.alpha.detach().argmax(dim=1).tolist())

    def path_sample(self, choices: tuple[int, ...], like: torch.Tensor):
        """The supernet's input that computes exactly the architecture ``choices``."""
        raise NotImplementedError

    def report(self, choices: tuple[int, ...]) -> dict[str, float]:
        """Per-epoch figures of the strategy for the derived ``choices`` (added to the engine's result)."""
        return {"arch_confidence": self.confidence()}

    def entropy(self) -> float:
        """Mean entropy (nats) of the per-decision distribution; log(choices) is uniform."""
        if self.alpha is None:
            return math.log(self.shape[1])
        logp = F.log_softmax(self.alpha.detach(), dim=1)
        return float(-(logp.exp() * logp).sum(1).mean())

    def confidence(self) -> float:
        """Mean gap between the two most likely choices' probabilities per decision (the thesis'
        "discrepancy", Figure 3.5b/d); 0 is undecided, 1 committed. NaN without alpha."""
        if self.alpha is None:
            return math.nan
        top = F.softmax(self.alpha.detach(), dim=1).topk(2, dim=1).values
        return float((top[:, 0] - top[:, 1]).mean())

    # --- helpers ------------------------------------------------------------------------------------
    def alpha_step(self, loss: torch.Tensor) -> None:
        """One Adam step of alpha on ``loss`` (only alpha's gradient is computed)."""
        self.alpha.grad = torch.autograd.grad(loss, self.alpha)[0]
        self.arch_optimizer.step()

    def loss(self, batch: Batch, sample) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x, sample), y)

    def net_dtype_like(self) -> torch.Tensor:
        return next(self.net.parameters())

    # --- checkpoints --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.alpha is None:
            return {}
        return {"alpha": self.alpha.detach().clone(), "arch_optimizer": self.arch_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.alpha is not None:
            with torch.no_grad():
                self.alpha.copy_(state["alpha"])
            self.arch_optimizer.load_state_dict(state["arch_optimizer"])


class Strategy(BaseStrategy):
    """The topology space's base: alpha [edges, ops], candidate lists and the topology helpers."""

    space = "tss"
    shape = (NUM_EDGES, NUM_OPS)

    def __init__(self, net: nn.Module, generator: torch.Generator, epochs: int, *,
                 arch_lr: float = 3e-4, arch_weight_decay: float = 1e-3, candidates: int = 100) -> None:
        super().__init__(net, generator, epochs, arch_lr=arch_lr, arch_weight_decay=arch_weight_decay)
        self.candidates = int(candidates)

    def weight_sample(self) -> ArchSample:
        raise NotImplementedError

    def path_sample(self, choices: tuple[int, ...], like: torch.Tensor) -> ArchSample:
        return ArchSample.single_path(choices, like)

    # --- helpers the subclasses combine -------------------------------------------------------------
    def mixture(self) -> ArchSample:
        """Every op on every edge, weighted by softmax(alpha) (gradient flows to alpha)."""
        return ArchSample(F.softmax(self.alpha, dim=1))

    def uniform_path(self) -> ArchSample:
        return ArchSample.single_path(self.uniform_ops(), self.net_dtype_like())

    def uniform_ops(self) -> tuple[int, ...]:
        return tuple(torch.randint(NUM_OPS, (NUM_EDGES,), generator=self.generator).tolist())

    def distinct_uniform_ops(self, count: int) -> list[tuple[int, ...]]:
        """``count`` different architectures drawn uniformly from all 15,625 (without replacement),
        as NATS-Bench's ``return_topK(K, use_random=True)`` (``random.sample`` of every cell)."""
        chosen = torch.randperm(NUM_ARCHS, generator=self.generator)[:count]
        return [tuple(row) for row in all_ops()[chosen].tolist()]

    def node_constrained_ops(self) -> tuple[int, ...]:
        """One uniform op per edge, each node's incoming ops redrawn together until one of them
        is not ``none``: NATS-Bench's ``forward_urs`` (search_cells.py ~line 121), per cell."""
        ops = [0] * NUM_EDGES
        for target in sorted({t for t, _ in EDGES}):
            edges = [e for e, (t, _) in enumerate(EDGES) if t == target]
            while True:
                draw = torch.randint(NUM_OPS, (len(edges),), generator=self.generator).tolist()
                if any(op != NONE_OP for op in draw):
                    break
            for e, op in zip(edges, draw):
                ops[e] = op
        return tuple(ops)

    def top_ops(self, count: int) -> list[tuple[int, ...]]:
        """The ``count`` most probable architectures under softmax(alpha), most probable first;
        ties keep index order (NATS-Bench's ``return_topK(K)``: a stable sort by log p)."""
        logp = F.log_softmax(self.alpha.detach().double().cpu(), dim=1)
        table = all_ops()
        total = logp[torch.arange(NUM_EDGES), table].sum(dim=1)  # log p of every architecture
        order = torch.sort(total, descending=True, stable=True).indices[:count]
        return [tuple(row) for row in table[order].tolist()]

    def valid_mixture_step(self, valid: Batch) -> None:
        """DARTS' first-order architecture step: the mixture's validation loss, w held fixed."""
        self.alpha_step(self.loss(valid, self.mixture()))
