"""GDAS (Dong & Yang, 2019): differentiable architecture sampling with the Gumbel-max trick.

Every step draws one op per edge by Gumbel-max on log softmax(alpha) at temperature tau; only that
op is computed, forward and backward (the thesis' acceleration over DARTS' full mixture). The
chosen op is scaled by the straight-through weight onehot - p.detach() + p, whose value is 1 and
whose gradient is the softmax relaxation's, so alpha learns from the validation loss of the one
sampled network. tau decays linearly from 10 to 0.1 over the search; weight steps train the same
kind of sample on the train split.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .strategy import Strategy
from .supernet import ArchSample


class GDAS(Strategy):
    name = "gdas"

    def __init__(self, *args, tau_max: float = 10.0, tau_min: float = 0.1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tau_max, self.tau_min = float(tau_max), float(tau_min)

    def tau(self) -> float:
        return self.tau_max - (self.tau_max - self.tau_min) * self.epoch / max(1, self.epochs - 1)

    def gumbel_sample(self) -> ArchSample:
        # An exponential draw of exactly 0 would give infinite noise and NaN probabilities.
        draw = torch.empty(self.alpha.shape).exponential_(generator=self.generator)
        noise = -draw.clamp_min(torch.finfo(draw.dtype).tiny).log()
        probs = F.softmax((F.log_softmax(self.alpha, dim=1) + noise.to(self.alpha)) / self.tau(), dim=1)
        index = probs.detach().argmax(dim=1)
        hard = F.one_hot(index, probs.shape[1]).to(probs)
        return ArchSample(hard - probs.detach() + probs, tuple(index.tolist()))

    def weight_sample(self) -> ArchSample:
        with torch.no_grad():
            return self.gumbel_sample()

    def arch_step(self, train, valid, search) -> None:
        self.alpha_step(self.loss(valid, self.gumbel_sample()))
