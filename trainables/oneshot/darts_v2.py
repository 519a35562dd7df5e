"""DARTS-V2: the second-order (unrolled) architecture gradient of DARTS.

The architecture step descends the validation loss after one virtual SGD step of the weights,
L_val(w', alpha) with w' = w - lr * (momentum * buf + dL_train/dw + wd * w). Its gradient is
dL_val/dalpha - lr * d2L_train/(dalpha dw) . dL_val/dw', and the mixed second derivative times a
vector is taken by central finite differences of dL_train/dalpha at w +- r * dL_val/dw'
(r = 0.01 / |dL_val/dw'|), as in the paper. Weight steps are DARTS-V1's. As in NATS-Bench's
scripts the architecture steps after the weights on each batch, so the virtual step sees the
momentum buffer of the step just taken.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .darts_v1 import DartsV1
from .supernet import ArchSample


def unrolled_hypergradient(net: nn.Module, alpha: torch.Tensor, train, valid, *, lr: float,
                           momentum: float = 0.0, weight_decay: float = 0.0,
                           buffers: Mapping[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """d L_val(w'(alpha), alpha) / d alpha for the virtual step above; the weights are left as found.

    ``buffers``: momentum buffer per parameter (the weight optimizer's state), where it has one.
    """
    params = [p for p in net.parameters() if p.requires_grad]
    buffers = [None if buffers is None else buffers.get(p) for p in params]

    def loss(batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(net(x, ArchSample(F.softmax(alpha, dim=1))), y)

    def grads(value, wrt) -> list[torch.Tensor]:
        got = torch.autograd.grad(value, wrt, allow_unused=True)
        return [torch.zeros_like(w) if g is None else g for g, w in zip(got, wrt)]

    backup = [p.detach().clone() for p in params]
    try:
        train_grads = grads(loss(train), params)
        with torch.no_grad():
            for p, g, buf in zip(params, train_grads, buffers):
                step = g + weight_decay * p
                if buf is not None and momentum:
                    step = step + momentum * buf
                p.sub_(lr * step)
        d_alpha, *d_w = grads(loss(valid), [alpha, *params])
        r = 0.01 / torch.cat([g.flatten() for g in d_w]).norm().clamp_min(1e-12)

        def alpha_grad_at(sign: float) -> torch.Tensor:
            with torch.no_grad():
                for p, w, g in zip(params, backup, d_w):
                    p.copy_(w + sign * r * g)
            return grads(loss(train), [alpha])[0]

        hessian_vector = (alpha_grad_at(1.0) - alpha_grad_at(-1.0)) / (2 * r)
    finally:
        with torch.no_grad():
            for p, w in zip(params, backup):
                p.copy_(w)
    return d_alpha - lr * hessian_vector


class DartsV2(DartsV1):
    name = "darts-v2"

    def arch_step(self, train, valid, search) -> None:
        opt = search.weight_optimizer
        group = opt.param_groups[0]
        buffers = {p: opt.state[p]["momentum_buffer"] for p in self.net.parameters()
                   if opt.state.get(p, {}).get("momentum_buffer") is not None}
        self.alpha.grad = unrolled_hypergradient(
            self.net, self.alpha, train, valid, lr=group["lr"], momentum=group["momentum"],
            weight_decay=group["weight_decay"], buffers=buffers)
        self.arch_optimizer.step()
