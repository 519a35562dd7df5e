"""TuNAS-style masking + sampling (Bender et al., 2020) on the size space (NATS-Bench's ``mask_rl``).

alpha is a policy: every aligned output draws one width from softmax(alpha[layer]) and keeps the
layer's first that-many channels (a hard mask: a single path). Weight steps train such samples.
An architecture step samples a path, scores it by its accuracy on the validation batch (percent,
with the shared weights, as xautodl's ``search-size.py``) and takes one REINFORCE step on
-(reward - baseline) * log p(path), the baseline the bias-corrected moving average of the rewards
(``spaces.baseline.MovingAverageBaseline``, momentum ``baseline_momentum`` 0.95 as there; the
multi-trial REINFORCE searcher and ENAS share it). NATS-Bench's TuNAS runs use no architecture
weight decay (``--arch_weight_decay 0`` in scripts-search/NATS/search-size.sh): the default here.
A cost target adds its loss to the policy loss. Derivation: the most probable width per layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spaces.baseline import MovingAverageBaseline

from .size_strategy import SizeStrategy
from .size_supernet import ALIGNED_LAYERS, Mask, width_masks


class TuNAS(SizeStrategy):
    name = "tunas"

    def __init__(self, *args, arch_weight_decay: float = 0.0, baseline_momentum: float = 0.95, **kwargs) -> None:
        super().__init__(*args, arch_weight_decay=arch_weight_decay, **kwargs)
        self.baseline = MovingAverageBaseline(baseline_momentum)

    def policy_sample(self) -> tuple[list[Mask], torch.Tensor]:
        """One path drawn from the policy and its log-probability (differentiable in alpha)."""
        logp = F.log_softmax(self.alpha, dim=1)
        masks = width_masks(self.alpha)
        widths = [int(torch.multinomial(logp[layer].detach().exp().cpu(), 1, generator=self.generator))
                  for layer in ALIGNED_LAYERS]
        log_p = sum(logp[layer, k] for layer, k in zip(ALIGNED_LAYERS, widths))
        return [Mask(masks[k]) for k in widths], log_p

    def search_sample(self) -> list[Mask]:
        return self.policy_sample()[0]

    def arch_loss(self, valid) -> torch.Tensor:
        sample, log_p = self.policy_sample()
        x, y = valid
        with torch.no_grad():
            reward = 100.0 * float((self.net(x, sample).argmax(1) == y).float().mean())
        self.baseline.update(reward)
        return -(reward - self.baseline.value()) * log_p

    def state_dict(self) -> dict:
        return {**super().state_dict(), "baseline": self.baseline.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.baseline.load_state_dict(state["baseline"])
