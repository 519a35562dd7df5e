"""TAS, Transformable Architecture Search (Dong & Yang, 2019; thesis Section 3.3), on the size space.

Every aligned output samples a subset I of ``sampled_widths`` (|I| = 2) widths from its layer's
distribution and sums their feature maps, each aligned to the widest of them by channel-wise
interpolation, with Gumbel-softmax weights re-normalised over I (thesis Eq. 3.11-3.12). As
xautodl's ``select2withP`` (models/shape_searchs/SoftSelect.py): the Gumbel-perturbed logits
(log softmax(alpha) + g) / tau give the probabilities I is drawn from, multinomially without
replacement (plus 1e-7, as there), and the weights are the softmax of those same logits over I.
With |I| = 1 the one weight is exactly 1 and alpha learns nothing (thesis Table 3.6); with 2 the
loss sees how the two widths compare. Weight steps train the same kind of sample. tau 10 -> 0.1
linearly; derivation: the most probable width of every layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spaces.errors import UserError
from spaces.nats_size import CHANNELS

from .size_strategy import GumbelSizeStrategy
from .size_supernet import ALIGNED_LAYERS, NUM_WIDTHS, Interpolate


class TAS(GumbelSizeStrategy):
    name = "tas"

    def __init__(self, *args, sampled_widths: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not (isinstance(sampled_widths, int) and 1 <= sampled_widths <= NUM_WIDTHS):
            raise UserError(f"sampled_widths (|I|) must be an integer from 1 to {NUM_WIDTHS}, got {sampled_widths!r}")
        self.sampled_widths = sampled_widths

    def search_sample(self) -> list[Interpolate]:
        sample = []
        for layer in ALIGNED_LAYERS:
            logits = self.gumbel_logits(layer)
            chosen = torch.multinomial(F.softmax(logits.detach(), dim=0).cpu() + 1e-7, self.sampled_widths,
                                       replacement=False, generator=self.generator)
            weights = F.softmax(logits[chosen.to(logits.device)], dim=0)
            sample.append(Interpolate(tuple(CHANNELS[k] for k in chosen.tolist()), weights))
        return sample
