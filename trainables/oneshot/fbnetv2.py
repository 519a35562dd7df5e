"""FBNet-V2's channel masking (Wan et al., 2020) on the size space (NATS-Bench's ``mask_gumbel``).

Every aligned output multiplies the layer's 64 channels by a soft mask: the hard masks of the
eight widths (the first c channels 1, the rest 0), weighted by a Gumbel-softmax draw over the
widths, softmax((alpha[layer] + g) / tau) (``torch.nn.functional.gumbel_softmax`` as in
xautodl's ``GenericNAS301Model``; computed from log softmax(alpha), which differs from alpha by a
constant per row, so the softmax is the same); channel j is kept with the total weight of the
widths above j.
Weight and architecture steps use such draws alike; tau 10 -> 0.1 linearly; derivation: the most
probable width of every layer.
"""

from __future__ import annotations

import torch.nn.functional as F

from .size_strategy import GumbelSizeStrategy
from .size_supernet import ALIGNED_LAYERS, Mask, width_masks


class FBNetV2(GumbelSizeStrategy):
    name = "fbnetv2"

    def search_sample(self) -> list[Mask]:
        masks = width_masks(self.alpha)
        return [Mask(F.softmax(self.gumbel_logits(layer), dim=0) @ masks) for layer in ALIGNED_LAYERS]
