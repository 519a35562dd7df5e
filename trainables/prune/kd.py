"""Knowledge distillation from the unpruned network (thesis Eq. 3.16-3.17; TAS, Dong & Yang 2019, Eq. 8-9).

With z the pruned network's logits, z_t the unpruned (teacher's) and T the temperature,

    L_match = - sum_i softmax(z_t / T)_i log softmax(z / T)_i                      (Eq. 3.16)
    L_KD    = lambda * CE(z, y) + (1 - lambda) * T^2 * L_match                     (Eq. 3.17)

averaged over the batch; lambda 0.9 and T 4 on CIFAR (the thesis' setting). At lambda 1 it is the
cross-entropy. (xautodl's code writes the KL divergence in place of L_match: the two differ by the
teacher's entropy, a constant in the student's weights, so their gradients agree.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spaces.errors import UserError

KD_LAMBDA, KD_TEMPERATURE = 0.9, 4.0


def kd_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
            lam: float = KD_LAMBDA, temperature: float = KD_TEMPERATURE) -> torch.Tensor:
    """Eq. 3.17 (module docstring); the teacher's logits carry no gradient."""
    if not 0 <= lam <= 1:
        raise UserError(f"the KD weight lambda must lie in [0, 1], got {lam!r}")
    if not temperature > 0:
        raise UserError(f"the KD temperature must be positive, got {temperature!r}")
    ce = F.cross_entropy(logits, labels)
    if lam == 1:
        return ce
    soft = F.softmax(teacher_logits.detach() / temperature, dim=1)
    match = -(soft * F.log_softmax(logits / temperature, dim=1)).sum(1).mean()
    return lam * ce + (1 - lam) * temperature ** 2 * match
