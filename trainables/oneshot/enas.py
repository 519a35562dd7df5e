"""ENAS (Pham et al., 2018) on the topology space: an LSTM controller trained with REINFORCE.

The controller emits the six edge ops in order, each conditioned (through the LSTM state) on the
ops before it; logits are squashed as in ENAS (tanh_constant * tanh(logits / temperature)). The
shared weights train on the paths it samples. Each architecture step samples one path, rewards it
with the shared weights' accuracy (a fraction) on the next batch of 512 clean (unaugmented)
validation images, and takes one Adam step on -(reward - baseline) * log p(path) -
entropy_weight * entropy with the gradient clipped at norm 5, using the bias-corrected moving-
average baseline of the multi-trial REINFORCE searcher. As NATS-Bench's search-cell.py: the
reward batch (``train_controller`` reads ``valid_loader``: test_batch_size 512, test transform),
the clip (``clip_grad_norm_(..., 5.0)``) and Adam with lr 1e-3, betas (0.5, 0.999), eps 1e-3, no
weight decay (its ``a_optimizer`` and the ENAS command lines at the top of the script; the older
NAS-Bench-201 ENAS.config says betas (0, 0.999)). Knobs: ``controller_lr``, ``controller_beta1``
(0.5), ``controller_grad_clip`` (5.0; None: no clip), ``entropy_weight``, ``baseline_momentum``.

Departures from NATS-Bench's ENAS, on purpose: NATS-Bench alternates a whole epoch of weight
steps with a block of 50 controller steps (each averaging 20 samples) — here the two alternate
every batch with one sample per step, like the other strategies (one schedule for all six); and
the entropy bonus is its own differentiable term rather than part of the reward the baseline
tracks (the baseline tracks accuracy only). Derivation samples candidates from the controller and
keeps the one the shared weights rate best.

The controller lives on the CPU whatever the supernet's device: it is tiny and sequential.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from spaces.baseline import MovingAverageBaseline

from .strategy import Strategy
from .supernet import NUM_EDGES, NUM_OPS, ArchSample


class Controller(nn.Module):
    def __init__(self, hidden: int = 32, layers: int = 2, temperature: float = 5.0, tanh_constant: float = 2.5):
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, 1, hidden))
        self.lstm = nn.LSTM(hidden, hidden, layers)
        self.embed = nn.Embedding(NUM_OPS, hidden)
        self.head = nn.Linear(hidden, NUM_OPS)
        self.temperature, self.tanh_constant = temperature, tanh_constant
        for p in self.parameters():  # ENAS' uniform(-0.1, 0.1) initialisation
            nn.init.uniform_(p, -0.1, 0.1)

    def sample(self, generator: torch.Generator) -> tuple[tuple[int, ...], torch.Tensor, torch.Tensor]:
        """(ops, log p(ops), entropy summed over the decisions)."""
        inputs, state, ops, log_p, entropy = self.start, None, [], 0.0, 0.0
        for _ in range(NUM_EDGES):
            out, state = self.lstm(inputs, state)
            logits = self.tanh_constant * torch.tanh(self.head(out[-1, 0]) / self.temperature)
            logp = F.log_softmax(logits, dim=0)
            op = int(torch.multinomial(logp.detach().exp(), 1, generator=generator))
            ops.append(op)
            log_p = log_p + logp[op]
            entropy = entropy - (logp.exp() * logp).sum()
            inputs = self.embed.weight[op].view(1, 1, -1)
        return tuple(ops), log_p, entropy


class ENAS(Strategy):
    name = "enas"
    learns_alpha = False

    def __init__(self, *args, controller_lr: float = 1e-3, controller_beta1: float = 0.5,
                 controller_grad_clip: float | None = 5.0, entropy_weight: float = 1e-4,
                 baseline_momentum: float = 0.99, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        with torch.random.fork_rng(devices=[]):  # its init comes from the strategy's generator
            torch.manual_seed(int(torch.randint(2 ** 62, (1,), generator=self.generator)))
            self.controller = Controller()
        self.controller_optimizer = torch.optim.Adam(self.controller.parameters(), lr=controller_lr,
                                                     betas=(float(controller_beta1), 0.999), eps=1e-3)
        self.controller_grad_clip = None if controller_grad_clip is None else float(controller_grad_clip)
        self.entropy_weight = float(entropy_weight)
        self.baseline = MovingAverageBaseline(baseline_momentum)
        self.last_entropy = math.log(NUM_OPS)

    def weight_sample(self) -> ArchSample:
        with torch.no_grad():
            ops, _, _ = self.controller.sample(self.generator)
        return ArchSample.single_path(ops, self.net_dtype_like())

    def arch_step(self, train, valid, search) -> None:
        ops, log_p, entropy = self.controller.sample(self.generator)
        reward = search.batch_accuracy(search.clean_valid_batch(), ops) / 100.0
        self.baseline.update(reward)
        loss = -(reward - self.baseline.value()) * log_p - self.entropy_weight * entropy
        self.controller_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.controller_grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.controller.parameters(), self.controller_grad_clip)
        self.controller_optimizer.step()
        self.last_entropy = float(entropy.detach()) / NUM_EDGES

    def derive(self, search) -> tuple[int, ...]:
        with torch.no_grad():
            return search.best_of([self.controller.sample(self.generator)[0] for _ in range(self.candidates)])

    def entropy(self) -> float:
        """Mean per-decision entropy of the controller's last training sample."""
        return self.last_entropy

    def state_dict(self) -> dict:
        return {"controller": self.controller.state_dict(),
                "controller_optimizer": self.controller_optimizer.state_dict(),
                "baseline": self.baseline.state_dict(), "last_entropy": self.last_entropy}

    def load_state_dict(self, state: dict) -> None:
        self.controller.load_state_dict(state["controller"])
        self.controller_optimizer.load_state_dict(state["controller_optimizer"])
        self.baseline.load_state_dict(state["baseline"])
        self.last_entropy = state["last_entropy"]
