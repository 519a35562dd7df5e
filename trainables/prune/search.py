"""TAS' width and depth search of a CIFAR ResNet under a FLOPs target (thesis Section 3.3, Algorithm 2 step 2).

Per searched conv a distribution alpha over its width candidates (``supernet.RATIOS`` of its
channels), per stage a distribution beta over the depths 1..n. Each step:

  * weights: one SGD step on a train batch through a TAS sample (``trainables.oneshot.tas.tas_select``:
    |I| = ``sampled_widths`` (2) widths per conv, Gumbel-softmax weights, CWI) and the depth
    weights softmax(beta) (Eq. 3.13), no gradient to the architecture;
  * architecture: one Adam step (lr 1e-3 constant, wd 1e-3, betas (0.5, 0.999) as the size search)
    on a validation batch through a fresh sample, plus lambda_cost (2) times the cost loss of
    ``trainables.oneshot.cost_loss`` (tolerance 5 %): E_cost the expected FLOPs under softmax(alpha)
    and softmax(beta) (``cost.resnet_flops``), F_cost the FLOPs of the network derived now.

Weights: SGD lr 0.1, Nesterov momentum 0.9, wd 5e-4, cosine to 0 over the search (per epoch).
tau decays linearly 10 -> 0.1. ``mode``: "tas" searches both, "width" (TAS (W)) only the widths
(every stage at full depth), "depth" (TAS (D)) only the depths (every conv at full width).
Derivation: the most probable width of every conv and depth of every stage.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spaces.cifar_resnet import ResNetArch
from spaces.errors import UserError
from trainables.data import Dataset, iterate_batches
from trainables.oneshot.cost_loss import CostTarget, resolve_target
from trainables.oneshot.size_strategy import perturbed_logits
from trainables.oneshot.strategy import linear_tau
from trainables.oneshot.tas import tas_select
from trainables.recipes import cosine_lr
from trainables.seeding import seed_of

from .cost import depth_one_hot, resnet_flops
from .engine import sgd_step
from .state import load_parts, save_parts
from .supernet import RATIOS, SearchableResNet, check_ratios, full_widths, width_candidates

MODES = ("tas", "width", "depth")


class PruneSpace:
    """The candidates of one model on one data shape: per conv its widths, per stage its depths."""

    def __init__(self, model: str, *, num_classes: int, in_channels: int, input_size: int,
                 ratios=RATIOS, mode: str = "tas") -> None:
        if mode not in MODES:
            raise UserError(f"search mode {mode!r}: choose one of {', '.join(MODES)}")
        self.model, self.mode, self.ratios = model, mode, check_ratios(ratios)
        self.shape = {"num_classes": num_classes, "in_channels": in_channels, "input_size": input_size}
        with torch.random.fork_rng(devices=[]):
            self.channels = SearchableResNet(model, num_classes, in_channels=in_channels).conv_channels
        from spaces.cifar_resnet import check_model

        self.n = check_model(model)
        self.candidates = [width_candidates(c, self.ratios) if mode != "depth" else (c,) for c in self.channels]
        self.depths = tuple(range(1, self.n + 1)) if mode != "width" else (self.n,)

    def flops(self, width_probs: list[torch.Tensor], depth_probs: list[torch.Tensor]) -> torch.Tensor:
        """Expected MFLOPs (exact for one-hot probabilities), full depth where depths are not searched."""
        if self.mode == "width":
            depth_probs = [depth_one_hot(self.n, self.n).to(width_probs[0]) for _ in range(3)]
        return resnet_flops(list(zip(self.candidates, width_probs)), depth_probs, **self.shape)

    def arch(self, width_choice: list[int], depth_choice: list[int]) -> ResNetArch:
        """The network of candidate indices per conv and per stage."""
        widths = [cands[i] for cands, i in zip(self.candidates, width_choice)]
        depths = [self.depths[i] for i in depth_choice] if self.mode != "width" else [self.n] * 3
        it, stages = iter(widths[1:]), []
        for d in depths:
            blocks = [(next(it), next(it)) for _ in range(self.n)]
            stages.append(tuple(blocks[:d]))
        return ResNetArch(widths[0], tuple(stages))

    def choice_flops(self, width_choice: list[int], depth_choice: list[int]) -> float:
        w = [F.one_hot(torch.tensor(i), len(c)).double() for c, i in zip(self.candidates, width_choice)]
        d = [depth_one_hot(self.n, self.depths[i]) for i in depth_choice] if self.mode != "width" else None
        return float(self.flops(w, d or []))

    def flops_range(self) -> tuple[float, float]:
        """(smallest, unpruned) MFLOPs this space can reach."""
        low = self.choice_flops([0] * len(self.candidates), [0] * 3)
        high = self.choice_flops([len(c) - 1 for c in self.candidates], [len(self.depths) - 1] * 3)
        return low, high

    def target(self, given: float | str, *, tolerance: float = 0.05, flag: str = "--flops-target") -> CostTarget:
        """The FLOPs target (MFLOPs, or "50%" of the unpruned network) checked against the reachable range."""
        low, high = self.flops_range()
        return resolve_target("flops_m", given, np.array([low, high]), tolerance=tolerance,
                              flag=flag, dense=True, space=f"pruned {self.model}")


class PruneSearch:
    """One search (one seed): an epoch per ``run_epoch()``; exact ``state_dict`` for resume."""

    def __init__(self, model: str, dataset: Dataset, *, epochs: int, seed: int, flops_target: float | str,
                 mode: str = "tas", ratios=RATIOS, sampled_widths: int = 2, batch_size: int = 64,
                 lr: float = 0.1, weight_decay: float = 5e-4, arch_lr: float = 1e-3, arch_weight_decay: float = 1e-3,
                 tau_max: float = 10.0, tau_min: float = 0.1, cost_weight: float = 2.0, cost_tolerance: float = 0.05,
                 device: str | torch.device = "cpu") -> None:
        if dataset.valid is None:
            raise UserError(f"dataset {dataset.name!r} has no validation split: the search trains the "
                            "architecture on it")
        self.space = PruneSpace(model, num_classes=dataset.num_classes, in_channels=dataset.in_channels,
                                input_size=dataset.image_size, ratios=ratios, mode=mode)
        if not (isinstance(sampled_widths, int) and 1 <= sampled_widths <= len(self.space.ratios)):
            raise UserError(f"sampled_widths (|I|) must be an integer from 1 to {len(self.space.ratios)}")
        self.target = self.space.target(flops_target, tolerance=cost_tolerance)
        self.dataset, self.epochs, self.seed, self.batch_size = dataset, int(epochs), int(seed), int(batch_size)
        self.sampled, self.cost_weight, self.tau_max, self.tau_min = sampled_widths, cost_weight, tau_max, tau_min
        self.lr, self.device = lr, torch.device(device)
        self.config = {"model": model, "epochs": epochs, "seed": seed, "flops_target": str(flops_target), "mode": mode,
                       "ratios": list(self.space.ratios), "sampled_widths": sampled_widths, "batch_size": batch_size,
                       "dataset": dataset.fingerprint}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of(seed, 0))
            self.net = SearchableResNet(model, dataset.num_classes, in_channels=dataset.in_channels,
                                        input_size=dataset.image_size).to(self.device)
        self.alpha = nn.ParameterList(torch.zeros(len(c), device=self.device) for c in self.space.candidates)
        self.beta = nn.ParameterList(torch.zeros(len(self.space.depths), device=self.device) for _ in range(3))
        self.weight_optimizer = torch.optim.SGD(self.net.parameters(), lr=lr, momentum=0.9, nesterov=True,
                                                weight_decay=weight_decay)
        self.arch_optimizer = torch.optim.Adam([*self.alpha, *self.beta], lr=arch_lr, betas=(0.5, 0.999),
                                               weight_decay=arch_weight_decay)
        self.data_generator = torch.Generator(device=dataset.train.images.device).manual_seed(seed_of(seed, 1))
        self.arch_generator = torch.Generator().manual_seed(seed_of(seed, 2))
        self.epoch = 0

    # --- samples ------------------------------------------------------------------------------------
    def tau(self) -> float:
        return linear_tau(self.tau_max, self.tau_min, self.epoch, self.epochs)

    def sample(self):
        """(one Interpolate per conv, the depth weights per stage or None)."""
        if self.space.mode == "depth":
            widths = [full_widths(c) for c in self.space.channels]
        else:
            widths = [tas_select(perturbed_logits(a, self.tau(), self.arch_generator), cands,
                                 min(self.sampled, len(cands)), self.arch_generator)
                      for a, cands in zip(self.alpha, self.space.candidates)]
        depths = None if self.space.mode == "width" else [F.softmax(b, dim=0) for b in self.beta]
        return widths, depths

    def derived_choice(self) -> tuple[list[int], list[int]]:
        return [int(a.argmax()) for a in self.alpha], [int(b.argmax()) for b in self.beta]

    def derive(self) -> ResNetArch:
        return self.space.arch(*self.derived_choice())

    def expected_flops(self) -> torch.Tensor:
        return self.space.flops([F.softmax(a, dim=0) for a in self.alpha], [F.softmax(b, dim=0) for b in self.beta])

    # --- one epoch ----------------------------------------------------------------------------------
    def run_epoch(self) -> dict[str, Any]:
        if self.epoch >= self.epochs:
            raise UserError(f"all {self.epochs} search epochs ran")
        started = time.perf_counter()
        lr = cosine_lr(self.lr, self.epoch, self.epochs)
        for g in self.weight_optimizer.param_groups:
            g["lr"] = lr
        self.net.train()
        valid = self._valid()
        tally = [0.0, 0, 0]  # loss sum, correct, seen
        for x, y in iterate_batches(self.dataset.train, self.batch_size, shuffle=True, augment=True,
                                    dataset=self.dataset, generator=self.data_generator, drop_last=True):
            x, y = x.to(self.device), y.to(self.device)
            with torch.no_grad():
                widths, depths = self.sample()
            logits = self.net(x, widths, depths)
            sgd_step(self.weight_optimizer, F.cross_entropy(logits, y), logits, y, tally)
            self.arch_step(*next(valid))
        self.epoch += 1
        arch, (loss_sum, correct, seen) = self.derive(), tally
        return {"epoch": self.epoch, "arch": arch.to_str(), "search_loss": loss_sum / max(1, seen),
                "search_acc": 100.0 * correct / max(1, seen), "derived_flops_m": self.space.choice_flops(
                    *self.derived_choice()), "expected_flops_m": float(self.expected_flops().detach()),
                "epoch_time_s": time.perf_counter() - started}

    def arch_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        widths, depths = self.sample()
        loss = F.cross_entropy(self.net(x, widths, depths), y)
        derived = self.space.choice_flops(*self.derived_choice())
        loss = loss + self.cost_weight * self.target.loss(self.expected_flops(), derived)
        self.arch_optimizer.zero_grad()
        self.weight_optimizer.zero_grad()
        loss.backward()
        self.arch_optimizer.step()

    def _valid(self):
        while True:
            for x, y in iterate_batches(self.dataset.valid, self.batch_size, shuffle=True, augment=True,
                                        dataset=self.dataset, generator=self.data_generator, drop_last=True):
                yield x.to(self.device), y.to(self.device)

    # --- exact resume -------------------------------------------------------------------------------
    def parts(self) -> dict[str, Any]:
        return {"net": self.net, "alpha": self.alpha, "beta": self.beta, "weight_optimizer": self.weight_optimizer,
                "arch_optimizer": self.arch_optimizer, "data_generator": self.data_generator,
                "arch_generator": self.arch_generator}

    def state_dict(self) -> dict[str, Any]:
        return save_parts(self.config, self.epoch, self.parts())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch = load_parts(state, self.config, self.parts(), "search")
