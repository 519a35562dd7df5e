"""DARTS-V1 (Liu et al., 2019), first order: alternate a weight step on the softmax mixture (train
split) with an architecture step on the mixture's validation loss, the weights held fixed."""

from __future__ import annotations

import torch.nn.functional as F

from .strategy import Strategy
from .supernet import ArchSample


class DartsV1(Strategy):
    name = "darts-v1"

    def weight_sample(self) -> ArchSample:
        return ArchSample(F.softmax(self.alpha.detach(), dim=1))

    def arch_step(self, train, valid, search) -> None:
        self.valid_mixture_step(valid)
