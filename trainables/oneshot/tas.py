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

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from spaces.errors import UserError
from spaces.nats_size import CHANNELS

from .size_strategy import GumbelSizeStrategy
from .size_supernet import ALIGNED_LAYERS, NUM_WIDTHS, Interpolate


def tas_select(logits: torch.Tensor, candidates: Sequence[int], sampled: int,
               generator: torch.Generator) -> Interpolate:
    """TAS' sample of one aligned output (module docstring): ``sampled`` of the ``candidates``
    widths drawn without replacement from softmax(``logits``) (+1e-7), their weights the softmax
    of ``logits`` over the drawn ones. Shared with the pruning search (``trainables.prune``)."""
    chosen = torch.multinomial(F.softmax(logits.detach(), dim=0).cpu() + 1e-7, sampled, replacement=False,
                               generator=generator)
    weights = F.softmax(logits[chosen.to(logits.device)], dim=0)
    return Interpolate(tuple(candidates[k] for k in chosen.tolist()), weights)


class TAS(GumbelSizeStrategy):
    name = "tas"

    def __init__(self, *args, sampled_widths: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not (isinstance(sampled_widths, int) and 1 <= sampled_widths <= NUM_WIDTHS):
            raise UserError(f"sampled_widths (|I|) must be an integer from 1 to {NUM_WIDTHS}, got {sampled_widths!r}")
        self.sampled_widths = sampled_widths

    def search_sample(self) -> list[Interpolate]:
        return [tas_select(self.gumbel_logits(layer), CHANNELS, self.sampled_widths, self.generator)
                for layer in ALIGNED_LAYERS]
