"""GDAS (Dong & Yang, 2019): differentiable architecture sampling with the Gumbel-max trick.

Every step draws one op per edge by Gumbel-max on log softmax(alpha) at temperature tau (one draw
per forward pass, shared by all cells); only that op is computed, forward and backward (the
thesis' acceleration over DARTS' full mixture). The weights are the straight-through
onehot - p.detach() + p: value 1 on the chosen op and exactly 0 on the others, gradient the
softmax relaxation's. As in NATS-Bench's ``forward_gdas`` (xautodl/models/cell_searchs/
search_cells.py ~line 81; the author explains it in AutoDL-Projects issue #36) the edge adds the
zero-valued weights of the unchosen ops to its output, so the forward value is the chosen op's
output and every op weight of the edge receives gradient — even on an edge that drew ``none``.
Knob ``unchosen_gradient=False`` back-propagates through the chosen op's weight only (the
reference's ``gdas_v1``, AutoDL-Projects issue #119). tau decays linearly from 10 to 0.1 over
the search; weight steps train the same kind of sample on the train split.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .strategy import Strategy, linear_tau
from .supernet import ArchSample


class GDAS(Strategy):
    name = "gdas"

    def __init__(self, *args, tau_max: float = 10.0, tau_min: float = 0.1, unchosen_gradient: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tau_max, self.tau_min = float(tau_max), float(tau_min)
        self.unchosen_gradient = bool(unchosen_gradient)

    def tau(self) -> float:
        return linear_tau(self.tau_max, self.tau_min, self.epoch, self.epochs)

    def gumbel_sample(self, for_alpha: bool = True) -> ArchSample:
        """One Gumbel draw; ``for_alpha=False`` (weight steps, no gradient to alpha) skips adding
        the unchosen weights, which are exactly 0 in value."""
        # An exponential draw of exactly 0 would give infinite noise and NaN probabilities.
        draw = torch.empty(self.alpha.shape).exponential_(generator=self.generator)
        noise = -draw.clamp_min(torch.finfo(draw.dtype).tiny).log()
        probs = F.softmax((F.log_softmax(self.alpha, dim=1) + noise.to(self.alpha)) / self.tau(), dim=1)
        index = probs.detach().argmax(dim=1)
        hard = F.one_hot(index, probs.shape[1]).to(probs)
        return ArchSample(hard - probs.detach() + probs, tuple(index.tolist()),
                          add_unchosen=for_alpha and self.unchosen_gradient)

    def weight_sample(self) -> ArchSample:
        with torch.no_grad():
            return self.gumbel_sample(for_alpha=False)

    def arch_step(self, train, valid, search) -> None:
        self.alpha_step(self.loss(valid, self.gumbel_sample()))
