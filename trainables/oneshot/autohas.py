"""AutoHAS (thesis Chapter 4, Algorithm 3): hyperparameters and architecture searched together by
weight sharing.

Encodings: the architecture's alpha [decisions, choices] (``BaseStrategy``); per continuous
hyperparameter logits over its basis — the learning rate one row per training step (knob
``lr_per="step"``; "epoch" shares a row per epoch), the L2 weight one row — and, with knob
``optimizers``, logits over the optimizers. All of them are relaxed by Gumbel-softmax at a fixed
temperature ``tau`` (10) and trained by one Adam at ``encoding_lr`` (0.002), the meta-settings the
thesis uses for every experiment.

One iteration (``search_step``), for the training step t:
  1. one sample of every encoding (Eq. 4.2-4.3); with the default ``relax="gumbel-hard"`` its value
     is the one-hot of the Gumbel-max choice and its gradient the relaxation's (straight-through,
     written ``hard + (soft - soft.detach())`` so the value is exactly one-hot);
  2. the training loss of the sampled architecture and its weight gradient g;
  3. the SuperModel's next weights W' = sum over the basis of p(value) * (W after one step with that
     value) (Eq. 4.5). Every optimizer's step is linear in the learning rate, so the combination
     over the lr basis is the step with sum_k p_k lr_k; SGD's is linear in the L2 weight too; Adam's
     and RMSProp's are not and are combined over the L2 basis value by value. With a hard sample
     W' is exactly the step under the one sampled value of every hyperparameter, while
     dW'/dp reaches every basis value;
  4. the validation loss of W' (``torch.func.functional_call``) on the next validation batch with
     the same architecture sample; its gradient trains every encoding (first order: g is held
     fixed, so the hyperparameter gradient is exact, as the finite-difference test checks);
  5. W <- W' and the optimizer states (momentum, Adam's moments, RMSProp's average) advance with the
     gradient under the sampled L2 weight (every optimizer's state, so a later switch finds it warm).
The engine's own SGD is not used (its state stays as built); the engine's ``grad_clip`` clips g.

Derivation (Eq. 4.10, knob ``rule="expectation"``): a continuous value is the expectation over its
basis under softmax(logits) — per step for the learning rate, a schedule — and a categorical one
(the architecture, the optimizer) the argmax; ``rule="argmax"`` takes the most likely basis value
(Eq. 4.6). Variants for Table 4.2: ``relax`` "softmax" (no noise, soft), "gumbel-soft" or
"gumbel-hard", each with either rule; ``search`` "joint" (AutoHAS), "hp" (AutoHAS (HP): the
architecture fixed to ``fixed_arch``, default NATS-Bench's ResNet cell / MobileNet-V2's k3e6 block)
or "arch" (GDAS-style: the hyperparameters fixed at their defaults ``lr`` and ``weight_decay``,
hard samples of alpha at the fixed tau).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.func import functional_call

from spaces.errors import UserError
from spaces.joint import DEFAULT_LR, DEFAULT_MULTIPLIERS, DEFAULT_WD, RULES, autohas_hparams

from ..recipes import ADAM_BETAS, OPTIMIZER_EPS, RMSPROP_ALPHA
from .strategy import BaseStrategy, Strategy, gumbel_noise
from .supernet import ArchSample

RELAXATIONS = ("softmax", "gumbel-soft", "gumbel-hard")
SEARCHES = ("joint", "hp", "arch")
LR_PER = ("step", "epoch")
RESNET_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def relaxed(logits: torch.Tensor, relax: str, tau: float, generator: torch.Generator) -> torch.Tensor:
    """One relaxed sample of categorical distributions (last dimension): softmax(logits), a
    Gumbel-softmax sample at ``tau``, or its hard one-hot with the soft sample's gradient."""
    if relax == "softmax":
        return F.softmax(logits, dim=-1)
    soft = F.softmax((logits + gumbel_noise(tuple(logits.shape), generator).to(logits)) / tau, dim=-1)
    if relax == "gumbel-soft":
        return soft
    hard = F.one_hot(soft.detach().argmax(-1), soft.shape[-1]).to(soft)
    return hard + (soft - soft.detach())  # value exactly one-hot, gradient the soft sample's


def derive_value(logits: torch.Tensor, values: torch.Tensor, rule: str) -> torch.Tensor:
    """Eq. 4.10 (``expectation``: sum softmax(logits) * values) or Eq. 4.6 (``argmax``), row-wise."""
    if rule == "argmax":
        return values[logits.argmax(-1)]
    return F.softmax(logits, dim=-1) @ values


class AutoHASCore:
    """What both architecture halves share (mixed into a topology or MBConv strategy)."""

    name = "autohas"

    def __init__(self, net, generator, epochs, *, lr: float = DEFAULT_LR, weight_decay: float = DEFAULT_WD,
                 multipliers: tuple = DEFAULT_MULTIPLIERS, optimizers: tuple | None = None, momentum: float = 0.9,
                 tau: float = 10.0, encoding_lr: float = 0.002, relax: str = "gumbel-hard",
                 rule: str = "expectation", search: str = "joint", fixed_arch: str | None = None,
                 lr_per: str = "step") -> None:
        for knob, value, allowed in (("relax", relax, RELAXATIONS), ("rule", rule, RULES),
                                     ("search", search, SEARCHES), ("lr_per", lr_per, LR_PER)):
            if value not in allowed:
                raise UserError(f"autohas knob {knob}={value!r}: choose one of {', '.join(allowed)}")
        if not (tau > 0 and encoding_lr > 0 and 0 <= momentum < 1):
            raise UserError(f"autohas needs tau > 0, encoding_lr > 0 and 0 <= momentum < 1; got tau={tau}, "
                            f"encoding_lr={encoding_lr}, momentum={momentum}")
        hp = autohas_hparams(lr=lr, weight_decay=weight_decay, multipliers=multipliers, optimizers=optimizers)
        super().__init__(net, generator, epochs, arch_lr=encoding_lr, arch_weight_decay=0.0)
        self.lr, self.weight_decay, self.momentum, self.tau = float(lr), float(weight_decay), float(momentum), tau
        self.encoding_lr, self.relax, self.rule, self.search, self.lr_per = encoding_lr, relax, rule, search, lr_per
        like = self.net_dtype_like()
        self.lr_values = torch.tensor(hp[0].basis, dtype=like.dtype, device=like.device)
        self.wd_values = torch.tensor(hp[1].basis, dtype=like.dtype, device=like.device)
        self.optimizers = tuple(hp[2].choices) if len(hp) > 2 else ("sgd",)
        space = self.arch_space()
        self.fixed = tuple(space.choice_indices(space.resolve(fixed_arch if fixed_arch is not None
                                                              else self.default_arch(space))))
        self.steps_done = 0
        self.lr_logits = self.wd_logits = self.opt_logits = None

    def default_arch(self, space) -> str | int:
        raise NotImplementedError

    def arch_space(self):
        return self.search_space(0)

    # --- the engine's hooks -------------------------------------------------------------------------
    def bind(self, search) -> None:
        """Size the learning-rate encoding (one row per training step or epoch), build the encodings'
        Adam and the optimizer states."""
        self.iters_per_epoch = search.iters_per_epoch
        rows = self.epochs * self.iters_per_epoch if self.lr_per == "step" else self.epochs
        like = self.net_dtype_like()
        zeros = lambda *shape: torch.nn.Parameter(torch.zeros(*shape, dtype=like.dtype, device=like.device))  # noqa: E731
        self.lr_logits, self.wd_logits = zeros(rows, len(self.lr_values)), zeros(len(self.wd_values))
        self.opt_logits = zeros(len(self.optimizers)) if len(self.optimizers) > 1 else None
        self.arch_optimizer = torch.optim.Adam(self.encodings(), lr=self.encoding_lr)
        self.states = {name: {"buf": torch.zeros_like(p), "m": torch.zeros_like(p), "v": torch.zeros_like(p),
                              "sq": torch.zeros_like(p)} for name, p in self.net.named_parameters()}
        self.adam_t = 0

    def encodings(self) -> list[torch.Tensor]:
        """The encodings this variant learns."""
        out = [] if self.search == "hp" else [self.alpha]
        if self.search != "arch":
            out += [self.lr_logits, self.wd_logits] + ([self.opt_logits] if self.opt_logits is not None else [])
        return out

    def lr_row(self, step: int) -> int:
        return step if self.lr_per == "step" else step // self.iters_per_epoch

    # --- samples ------------------------------------------------------------------------------------
    def arch_sample(self) -> ArchSample:
        like = self.alpha
        if self.search == "hp":
            return self.path_sample(self.fixed, like)
        w = relaxed(self.alpha, self.relax, self.tau, self.generator)
        if self.relax != "gumbel-hard":
            return ArchSample(w)
        return ArchSample(w, tuple(w.detach().argmax(1).tolist()), add_unchosen=True)

    def hp_sample(self, step: int) -> dict[str, torch.Tensor]:
        """The relaxed weights of every hyperparameter for training step ``step`` (arch search: the
        defaults, as plain numbers)."""
        if self.search == "arch":
            return {}
        out = {"lr": relaxed(self.lr_logits[self.lr_row(step)], self.relax, self.tau, self.generator),
               "weight_decay": relaxed(self.wd_logits, self.relax, self.tau, self.generator)}
        if self.opt_logits is not None:
            out["optimizer"] = relaxed(self.opt_logits, self.relax, self.tau, self.generator)
        return out

    # --- one iteration ------------------------------------------------------------------------------
    def search_step(self, train, valid, search):
        arch = self.arch_sample()
        hp = self.hp_sample(self.steps_done)
        loss, logits, new = self.combined_step(train, arch, hp, grad_clip=search.grad_clip)
        val_loss = self.validation_loss(next(valid), arch, new)
        encodings = self.encodings()
        grads = torch.autograd.grad(val_loss, encodings, allow_unused=True)
        for e, g in zip(encodings, grads):
            e.grad = torch.zeros_like(e) if g is None else g
        self.arch_optimizer.step()
        self.commit(new, hp)
        return loss, logits

    def combined_step(self, train, arch: ArchSample, hp: dict[str, torch.Tensor], *, grad_clip=None):
        """(training loss, logits, W' of Eq. 4.5 as {name: tensor}, differentiable in ``hp``)."""
        x, y = train
        named = dict(self.net.named_parameters())
        logits = self.net(x, arch)
        loss = F.cross_entropy(logits, y)
        got = torch.autograd.grad(loss, list(named.values()), allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(got, named.values())]
        if grad_clip is not None:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            scale = (grad_clip / (norm + 1e-6)).clamp(max=1.0)
            grads = [g * scale for g in grads]
        self._grads = grads
        lr = hp["lr"] @ self.lr_values if "lr" in hp else self.lr
        new = {}
        for (name, p), g in zip(named.items(), grads):
            new[name] = p.detach() - lr * self.direction(p.detach(), g, self.states[name], hp)
        return loss.detach(), logits.detach(), new

    def direction(self, w: torch.Tensor, g: torch.Tensor, state: dict, hp: dict[str, torch.Tensor]) -> torch.Tensor:
        """The hp-weighted step direction (the update is W - lr * direction)."""
        q = hp.get("weight_decay")
        wd = self.weight_decay if q is None else q @ self.wd_values
        shape = (-1,) + (1,) * w.dim()
        per_opt = []
        for name in self.optimizers:
            if name == "sgd":  # linear in the L2 weight: the combination is the mixed L2 weight
                per_opt.append(self.momentum * state["buf"] + g + wd * w)
                continue
            gs = g + (self.wd_values.view(shape) if q is not None else torch.tensor(wd).to(w).view(1)) * w
            if name == "adam":
                t = self.adam_t + 1
                m = ADAM_BETAS[0] * state["m"] + (1 - ADAM_BETAS[0]) * gs
                v = ADAM_BETAS[1] * state["v"] + (1 - ADAM_BETAS[1]) * gs * gs
                d = (m / (1 - ADAM_BETAS[0] ** t)) / ((v / (1 - ADAM_BETAS[1] ** t)).sqrt() + OPTIMIZER_EPS)
            else:  # rmsprop
                d = gs / ((RMSPROP_ALPHA * state["sq"] + (1 - RMSPROP_ALPHA) * gs * gs).sqrt() + OPTIMIZER_EPS)
            per_opt.append(d[0] if q is None else torch.tensordot(q, d, dims=1))
        r = hp.get("optimizer")
        if r is None:
            return per_opt[0]
        return sum(r[o] * d for o, d in enumerate(per_opt))

    def validation_loss(self, valid, arch: ArchSample, new: dict[str, torch.Tensor]) -> torch.Tensor:
        x, y = valid
        return F.cross_entropy(functional_call(self.net, new, (x, arch)), y)

    @torch.no_grad()
    def commit(self, new: dict[str, torch.Tensor], hp: dict[str, torch.Tensor]) -> None:
        """W <- W' and the optimizer states advance under the sampled L2 weight."""
        wd = self.weight_decay if "weight_decay" not in hp else float(hp["weight_decay"] @ self.wd_values)
        for (name, p), g in zip(self.net.named_parameters(), self._grads):
            st, gw = self.states[name], g + wd * p
            st["buf"].mul_(self.momentum).add_(gw)
            st["m"].mul_(ADAM_BETAS[0]).add_(gw, alpha=1 - ADAM_BETAS[0])
            st["v"].mul_(ADAM_BETAS[1]).addcmul_(gw, gw, value=1 - ADAM_BETAS[1])
            st["sq"].mul_(RMSPROP_ALPHA).addcmul_(gw, gw, value=1 - RMSPROP_ALPHA)
            p.copy_(new[name])
        self.adam_t += 1
        self.steps_done += 1
        self._grads = None

    # --- derivation ---------------------------------------------------------------------------------
    def derive(self, search) -> tuple[int, ...]:
        return self.fixed if self.search == "hp" else self.most_likely()

    def derived_hparams(self) -> dict[str, Any]:
        """Eq. 4.10 (or 4.6): the learning-rate schedule (one value per row), the L2 weight, the optimizer."""
        if self.search == "arch":
            rows = self.lr_logits.shape[0]
            return {"lr": [self.lr] * rows, "weight_decay": self.weight_decay, "optimizer": self.optimizers[0]}
        with torch.no_grad():
            lr = derive_value(self.lr_logits, self.lr_values, self.rule).tolist()
            wd = float(derive_value(self.wd_logits, self.wd_values, self.rule))
        opt = self.optimizers[0] if self.opt_logits is None else self.optimizers[int(self.opt_logits.argmax())]
        return {"lr": lr, "weight_decay": wd, "optimizer": opt}

    def lr_per_step(self) -> list[float]:
        """The derived learning rate of every training step of the search."""
        lr = self.derived_hparams()["lr"]
        if self.lr_per == "step":
            return lr
        return [lr[e] for e in range(self.epochs) for _ in range(self.iters_per_epoch)]

    def report(self, choices) -> dict[str, Any]:
        hp = self.derived_hparams()
        steps = self.lr_per_step()[self.epoch * self.iters_per_epoch:(self.epoch + 1) * self.iters_per_epoch]
        out = {**super().report(choices), "lr": sum(steps) / len(steps), "weight_decay": hp["weight_decay"],
               "optimizer": hp["optimizer"]}
        if self.epoch == self.epochs - 1:  # the whole schedule once, with the last epoch's result
            out["lr_schedule"] = self.lr_per_step()
        return out

    # --- checkpoints --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        enc = {"lr_logits": self.lr_logits, "wd_logits": self.wd_logits, "opt_logits": self.opt_logits}
        return {**super().state_dict(), **{k: None if v is None else v.detach().clone() for k, v in enc.items()},
                "states": {n: {k: t.clone() for k, t in s.items()} for n, s in self.states.items()},
                "adam_t": self.adam_t, "steps_done": self.steps_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for key in ("lr_logits", "wd_logits", "opt_logits"):
                if getattr(self, key) is not None:
                    getattr(self, key).copy_(state[key])
            for n, s in state["states"].items():
                for k, t in s.items():
                    self.states[n][k].copy_(t)
        super().load_state_dict(state)
        self.adam_t, self.steps_done = int(state["adam_t"]), int(state["steps_done"])


class AutoHAS(AutoHASCore, Strategy):
    """AutoHAS on the NATS topology cell (joint space NATS cell x lr x L2, as JAHS-Bench-201)."""

    def default_arch(self, space) -> str:
        return RESNET_CELL


class AutoHASMBConv(AutoHASCore, BaseStrategy):
    """AutoHAS on the MobileNet-V2-like MBConv network (``spaces.mbconv``)."""

    name = "autohas-mbconv"
    space = "mbconv"

    def __init__(self, net, generator, epochs, **knobs) -> None:
        from spaces.mbconv import CHOICES

        self.shape = (len(net.blocks), len(CHOICES))
        super().__init__(net, generator, epochs, **knobs)

    @classmethod
    def search_space(cls, N: int):
        from spaces.mbconv import MBConvSpace

        return MBConvSpace(N)

    def default_arch(self, space) -> int:
        return space.default_index

    def arch_space(self):
        return self.search_space(len(self.net.blocks) // 3)

    def path_sample(self, choices, like: torch.Tensor) -> ArchSample:
        return ArchSample(torch.ones(self.shape, dtype=like.dtype, device=like.device), tuple(int(c) for c in choices))


__all__ = ["AutoHAS", "AutoHASMBConv", "RELAXATIONS", "SEARCHES", "derive_value", "relaxed"]
