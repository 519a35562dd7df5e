"""What the size space's strategies (TAS, FBNet-V2, TuNAS) share, on top of ``strategy.BaseStrategy``.

alpha [5 layers, 8 widths] is the per-layer distribution over the widths (softmax); the derived
configuration is the most probable width of every layer (NATS-Bench's ``genotype``). Each of the
six aligned outputs of the supernet (the stem and the five layers, ``size_supernet.ALIGNED_LAYERS``)
draws its own sample from its layer's row, as in NATS-Bench's ``GenericNAS301Model``.

Knobs shared by the three (every one off the NATS-Bench path is None / off by default):
  * ``warmup_ratio`` (None): NATS-Bench's filter warm-up (``search-size.py --warmup_ratio``).
    During the first ``warmup_ratio`` share of the search epochs the architecture does not learn,
    and every aligned output of a weight step keeps all 64 channels with probability
    1 - epoch / (epochs * warmup_ratio), else the channels of a uniformly drawn width, so the
    filters are trained for every width before the strategies start to choose (the reference
    still runs, without stepping, the architecture forward of those epochs; it is skipped here).
  * ``flops_target`` / ``params_target`` (None): TAS' cost loss (``cost_loss``), added to the
    architecture loss with weight ``cost_weight`` (lambda_cost, 2), band ``cost_band``
    (``xautodl`` | ``thesis``) and tolerance ``cost_tolerance`` (5 %); the expected cost is exact
    under the softmax of alpha (``size_cost``), the derived cost that of the argmax configuration.
  * ``arch_lr`` (3e-4) and ``arch_weight_decay`` (1e-3): the architecture Adam of NATS-Bench's
    ``search-size.py`` (betas (0.5, 0.999)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spaces.errors import UserError
from spaces.nats_size import NUM_LAYERS

from .cost_loss import BANDS, resolve_target
from .size_supernet import ALIGNED_LAYERS, NUM_WIDTHS, Align, Mask, path_sample, width_masks
from .strategy import BaseStrategy, gumbel_noise, linear_tau


def perturbed_logits(row: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """(log softmax(row) + Gumbel noise) / tau: one Gumbel-perturbed row of logits."""
    noise = gumbel_noise(tuple(row.shape), generator).to(row)
    return (F.log_softmax(row, dim=0) + noise) / tau


class SizeStrategy(BaseStrategy):
    """Base of the size strategies: warm-up, cost targets, derivation and the per-epoch report."""

    space = "sss"
    shape = (NUM_LAYERS, NUM_WIDTHS)

    def __init__(self, net: nn.Module, generator: torch.Generator, epochs: int, *,
                 arch_lr: float = 3e-4, arch_weight_decay: float = 1e-3, warmup_ratio: float | None = None,
                 flops_target: float | str | None = None, params_target: float | str | None = None,
                 cost_weight: float = 2.0, cost_tolerance: float = 0.05, cost_band: str = "xautodl") -> None:
        super().__init__(net, generator, epochs, arch_lr=arch_lr, arch_weight_decay=arch_weight_decay)
        if warmup_ratio is not None and not (isinstance(warmup_ratio, (int, float)) and 0 < warmup_ratio < 1):
            raise UserError(f"warmup_ratio must be a share of the search epochs between 0 and 1, or None; "
                            f"got {warmup_ratio!r}")
        if cost_band not in BANDS:
            raise UserError(f"cost_band {cost_band!r}: choose one of {', '.join(BANDS)}")
        if not (isinstance(cost_weight, (int, float)) and cost_weight >= 0):
            raise UserError(f"cost_weight must be a number >= 0, got {cost_weight!r}")
        self.warmup_ratio = None if warmup_ratio is None else float(warmup_ratio)
        self.cost_weight = float(cost_weight)
        given = {"flops_m": flops_target, "params_m": params_target}
        self.targets = [resolve_target(metric, value, net.costs.table(metric).every, tolerance=cost_tolerance,
                                       band=cost_band, flag=f"{metric.removesuffix('_m')}_target")
                        for metric, value in given.items() if value is not None]

    # --- the schedule -------------------------------------------------------------------------------
    def warming_up(self) -> bool:
        """In the warm-up epochs (``warmup_ratio``): the architecture rests, widths are drawn as above."""
        return self.warmup_ratio is not None and self.epoch / self.epochs < self.warmup_ratio

    def warmup_sample(self) -> list[Mask]:
        keep_all = 1.0 - self.epoch / self.epochs / self.warmup_ratio
        masks = width_masks(self.net_dtype_like())
        sample = []
        for _ in ALIGNED_LAYERS:
            if float(torch.rand((), generator=self.generator)) < keep_all:
                k = NUM_WIDTHS - 1
            else:
                k = int(torch.randint(NUM_WIDTHS, (), generator=self.generator))
            sample.append(Mask(masks[k]))
        return sample

    # --- the three questions ------------------------------------------------------------------------
    def weight_sample(self) -> list[Align]:
        if self.warming_up():
            return self.warmup_sample()
        with torch.no_grad():
            return self.search_sample()

    def arch_step(self, train, valid, search) -> None:
        if not self.warming_up():
            self.alpha_step(self.arch_loss(valid) + self.cost_loss())

    def search_sample(self) -> list[Align]:
        """The strategy's sample of the six aligned outputs (with gradient to alpha outside no_grad)."""
        raise NotImplementedError

    def arch_loss(self, valid) -> torch.Tensor:
        """Default (TAS, FBNet-V2): the validation loss of a fresh sample, differentiable in alpha."""
        return self.loss(valid, self.search_sample())

    def cost_loss(self) -> torch.Tensor | float:
        """lambda_cost * the cost loss of every target (0 without targets)."""
        if not self.targets:
            return 0.0
        probs = F.softmax(self.alpha, dim=1)
        derived = self.most_likely()
        costs = self.net.costs
        return self.cost_weight * sum(t.loss(costs.table(t.metric).expected(probs), costs.table(t.metric).of(derived))
                                      for t in self.targets)

    def path_sample(self, choices: tuple[int, ...], like: torch.Tensor) -> list[Mask]:
        return path_sample(choices, like)

    def report(self, choices: tuple[int, ...]) -> dict[str, float]:
        return {**super().report(choices), **self.net.costs.of(choices)}


class GumbelSizeStrategy(SizeStrategy):
    """TAS and FBNet-V2: Gumbel-softmax samples at a temperature tau that decays linearly from
    ``tau_max`` (10) to ``tau_min`` (0.1) over the search (``search-size.py``'s schedule, warm-up
    epochs included, as GDAS's)."""

    def __init__(self, *args, tau_max: float = 10.0, tau_min: float = 0.1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tau_max, self.tau_min = float(tau_max), float(tau_min)

    def tau(self) -> float:
        return linear_tau(self.tau_max, self.tau_min, self.epoch, self.epochs)

    def gumbel_logits(self, layer: int) -> torch.Tensor:
        """(log softmax(alpha[layer]) + Gumbel noise) / tau: one perturbed row."""
        return perturbed_logits(self.alpha[layer], self.tau(), self.generator)
