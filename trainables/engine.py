"""The one training engine: one architecture of a search space under one recipe, an epoch at a time.

``TrainEngine`` is used by the live trainable (``trainables.train.TrainArch``, one Tune trial = one
architecture) and by the benchmark builder (``trainables.builder``, many architectures per Ray
task), so the numbers in a benchmark and the numbers of a live search come from the same code.
The rows it produces reach a store through ``trainables.store_io``.

Why the engine looks the way it does:
  * per-architecture overhead matters (the builder trains ~6.5K tiny networks): the data is held
    as tensors, evaluation runs over whole splits in large batches with the normalised eval
    tensors built once per process, and nothing is rebuilt per epoch;
  * exact resumption: ``state_dict()`` holds the model, the optimizer, the position in the
    schedule and every RNG stream the engine draws from (its own batch/augmentation generator and
    torch's global generator), so on the CPU a run restored after epoch k reproduces the
    uninterrupted run bit for bit (the learning rate is a pure function of the position,
    ``Recipe.lr_at``);
  * the initial weights come from ``seed`` alone (torch's global RNG is forked and seeded around
    the network build), so an architecture trained in a builder process after 500 others starts
    from the same weights as one trained alone.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmark_data.schema import EPOCH_METRICS
from spaces.errors import UserError
from trainables.data import Dataset, Split, iterate_batches, load_dataset
from trainables.recipes import ADAM_BETAS, OPTIMIZER_EPS, RMSPROP_ALPHA, Recipe
from trainables.seeding import seed_of
from trainables.skeleton import get_space

# A training loss this many times the chance-level cross-entropy (ln K for K classes: 2.30 on ten
# classes) is a diverged training, as a non-finite one is: a network that learns never averages
# a hundred times worse than guessing over an epoch (at lr 1e3 the loss reaches ~1e13).
DIVERGED_LOSS_FACTOR = 100.0


def diverged_loss(loss: float, num_classes: int) -> bool:
    """Whether an epoch's mean training loss says the training diverged (``DIVERGED_LOSS_FACTOR``)."""
    return not math.isfinite(loss) or loss > DIVERGED_LOSS_FACTOR * math.log(max(2, num_classes))

# Eval tensors larger than this (floats) are streamed per evaluation instead of cached.
_EVAL_CACHE_MAX_FLOATS = 1 << 25
# What run_epoch reports: exactly the metric columns of the store's epochs table.
METRICS = EPOCH_METRICS


@functools.lru_cache(maxsize=4)
def cached_dataset(name: str, data_dir: str | None = None, device: str = "cpu") -> Dataset:
    """One loaded copy of a dataset per process (builder workers train thousands of nets on it)."""
    return load_dataset(name, data_dir, device=device)


def build_optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimizer; the lr is set per batch from ``recipe.lr_at``."""
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, betas=ADAM_BETAS, eps=OPTIMIZER_EPS,
                                weight_decay=recipe.weight_decay)
    if recipe.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=recipe.lr, alpha=RMSPROP_ALPHA, eps=OPTIMIZER_EPS,
                                   weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                           weight_decay=recipe.weight_decay)


class TrainEngine:
    """Trains one architecture, one epoch per ``run_epoch()`` call (see the module docstring)."""

    def __init__(self, space: Any, arch: int | str, dataset: Dataset, recipe: Recipe, seed: int,
                 *, C: int, N: int, device: str | torch.device = "cpu") -> None:
        self.space = get_space(space)
        self.arch_index = self.space.resolve(arch)
        self.dataset, self.recipe, self.seed = dataset, recipe, int(seed)
        self.C, self.N = int(C), int(N)
        self.device = torch.device(device)
        for name in ("valid", "test"):
            if getattr(dataset, name) is None:
                raise UserError(f"dataset {dataset.name!r} has no {name} split; the engine reports "
                                "train, valid and test metrics every epoch")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of(seed, 0))
            self.model = self.space.build(self.arch_index, dataset.num_classes, C=self.C, N=self.N,
                                          in_channels=dataset.in_channels)
        # channels_last: oneDNN's convolutions on few channels run ~1.5x faster in NHWC.
        self.model = self.model.to(self.device, memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model.parameters(), recipe)
        # Batches and augmentation draw from this generator only; it lives on the data's device.
        self.generator = torch.Generator(device=dataset.train.images.device)
        self.generator.manual_seed(seed_of(seed, 1))
        self.epoch = 0                     # epochs completed
        self.diverged = False
        self.iters_per_epoch = math.ceil(len(dataset.train) / recipe.batch_size)

    # --- training ---------------------------------------------------------------------------------
    def run_epoch(self) -> dict[str, float]:
        """Train one epoch, then evaluate on valid and test; metrics in percent and seconds."""
        if self.epoch >= self.recipe.epochs:
            raise UserError(f"the recipe {self.recipe.name!r} has {self.recipe.epochs} epochs and "
                            "all of them ran; start a new run (or a longer recipe) to train more")
        model, opt, recipe = self.model, self.optimizer, self.recipe
        model.train()
        self._sync()
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        seen = 0
        batches = iterate_batches(self.dataset.train, recipe.batch_size, shuffle=True,
                                  augment=recipe.augment, dataset=self.dataset,
                                  generator=self.generator)
        for i, (x, y) in enumerate(batches):
            lr = recipe.lr_at(self.epoch, i, self.iters_per_epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            x = x.to(self.device, memory_format=torch.channels_last, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
        self._sync()
        epoch_time = time.perf_counter() - start
        train_loss = loss_sum.item() / seen
        metrics = {"train_loss": train_loss, "train_acc": 100.0 * correct.item() / seen}
        start = time.perf_counter()
        metrics["valid_loss"], metrics["valid_acc"] = self.evaluate("valid")
        self._sync()
        eval_time = time.perf_counter() - start
        metrics["test_loss"], metrics["test_acc"] = self.evaluate("test")
        metrics["epoch_time_s"], metrics["eval_time_s"] = epoch_time, eval_time
        self.epoch += 1
        # Once a loss is not finite, or far above chance, the weights are garbage; every later
        # epoch is marked too (the trainable stops there: ``diverged_loss``).
        self.diverged = self.diverged or diverged_loss(train_loss, self.dataset.num_classes)
        return metrics

    @torch.no_grad()
    def evaluate(self, split: str) -> tuple[float, float]:
        """(mean cross-entropy, top-1 accuracy in percent) on a whole split, in eval mode."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        n = 0
        for x, y in _eval_batches(self.dataset, split, self.recipe.eval_batch_size,
                                   str(self.device)):
            logits = self.model(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            n += len(y)
        return loss_sum.item() / n, 100.0 * correct.item() / n

    @torch.no_grad()
    def latency_ms(self, batch_size: int = 256, repeats: int = 3) -> float:
        """Median eval-mode forward time of one batch of ``batch_size`` images, milliseconds.

        One warm-up call first (the first call allocates); the median resists a busy machine.
        """
        self.model.eval()
        d = self.dataset
        x = torch.zeros(batch_size, d.in_channels, d.image_size, d.image_size, device=self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        self.model(x)  # warm-up: first calls allocate
        times = []
        for _ in range(repeats):
            self._sync()
            t0 = time.perf_counter()
            self.model(x)
            self._sync()
            times.append(time.perf_counter() - t0)
        return 1000.0 * float(np.median(times))

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # --- exact resumption ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "arch_index": self.arch_index, "seed": self.seed, "recipe_hash": self.recipe.hash,
            "epoch": self.epoch, "diverged": self.diverged,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        mine = (self.arch_index, self.seed, self.recipe.hash)
        theirs = (state["arch_index"], state["seed"], state["recipe_hash"])
        if mine != theirs:
            raise UserError(f"checkpoint is for (arch, seed, recipe hash) {theirs}, this run is "
                            f"{mine}; restore it into a run with the same configuration")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.diverged = int(state["epoch"]), bool(state["diverged"])


_EVAL_CACHE: dict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = {}


def _eval_batches(dataset: Dataset, split: str, batch_size: int, device: str):
    """Normalised eval batches of a split, built once per process when small (digits: always)."""
    data: Split = getattr(dataset, split)
    key = (dataset.fingerprint, split, batch_size, device)
    if key in _EVAL_CACHE:
        return _EVAL_CACHE[key]
    batches = ((x.to(device, memory_format=torch.channels_last), y.to(device)) for x, y in iterate_batches(
        data, batch_size, shuffle=False, augment=False, dataset=dataset, generator=None))
    if data.images.numel() > _EVAL_CACHE_MAX_FLOATS:
        return batches
    _EVAL_CACHE[key] = list(batches)
    return _EVAL_CACHE[key]
