"""Training a fixed CIFAR ResNet (the pipeline's steps 1 and 3), and the Ray Tune trainable of every step.

``NetTrainer`` trains one network an epoch at a time: SGD lr 0.1, Nesterov momentum 0.9, wd 5e-4,
cosine to 0 per epoch, random crop and flip, cross-entropy — or, with ``transfer="kd"``, the KD
loss of ``kd`` against the unpruned network (``teacher``: the file step 1 wrote), and with
``transfer="init"`` the kept channels of the unpruned weights (``transfer.init_from``). After
every epoch: the test accuracy (the valid split where there is no test split). ``state_dict``
holds everything a restored trainer needs to continue bit for bit on the CPU.

``PruneStep`` (Tune trainable; one trial = one step of one seed, one ``step()`` = one epoch, a
checkpoint per epoch through ``trainables.tune_host.EngineHost``). Config keys: ``step``
("train" | "search"), ``dataset``, ``data_dir``, ``subset`` ({train, valid, test, size} or
None), ``model``, ``seed``, ``epochs``, ``threads``, ``device`` (or all of them under the key
``case``); for "train" ``arch`` (a ``ResNetArch`` string), ``transfer`` and ``teacher``; for
"search" ``flops_target``, ``mode`` and ``ratios``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from spaces.cifar_resnet import CifarResNet, ResNetArch, build, full_arch
from spaces.errors import UserError
from trainables.data import Dataset, iterate_batches
from trainables.recipes import cosine_lr
from trainables.seeding import seed_of
from trainables.tune_host import EngineHost, absolute_path, module_getattr, tune_class

from .kd import KD_LAMBDA, KD_TEMPERATURE, kd_loss
from .state import load_parts, save_parts
from .transfer import init_from

TRANSFERS = ("none", "init", "kd")
EVAL_BATCH = 512


def load_teacher(path: str, model: str, dataset: Dataset) -> CifarResNet:
    """The unpruned network step 1 saved (its ``state_dict`` in a torch file)."""
    net = build(full_arch(model), dataset.num_classes, in_channels=dataset.in_channels)
    net.load_state_dict(torch.load(path, weights_only=True))
    return net.eval()


def sgd_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor,
             tally: list) -> None:
    """One optimizer step on ``loss``; adds the batch's loss sum, correct count and size to ``tally``."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    tally[0] += float(loss.detach()) * len(labels)
    tally[1] += int((logits.detach().argmax(1) == labels).sum())
    tally[2] += len(labels)


class NetTrainer:
    def __init__(self, arch: str | ResNetArch, dataset: Dataset, *, model: str, epochs: int, seed: int,
                 transfer: str = "none", teacher: str | None = None, batch_size: int = 128, lr: float = 0.1,
                 weight_decay: float = 5e-4, kd_lambda: float = KD_LAMBDA, kd_temperature: float = KD_TEMPERATURE,
                 device: str | torch.device = "cpu") -> None:
        if transfer not in TRANSFERS:
            raise UserError(f"transfer {transfer!r}: choose one of {', '.join(TRANSFERS)}")
        if transfer != "none" and teacher is None:
            raise UserError(f"transfer {transfer!r} needs the unpruned network (step 1's weights)")
        self.arch = arch if isinstance(arch, ResNetArch) else ResNetArch.parse(arch)
        self.dataset, self.epochs, self.seed, self.batch_size, self.lr = dataset, int(epochs), int(seed), batch_size, lr
        self.transfer, self.kd = transfer, (kd_lambda, kd_temperature)
        self.device = torch.device(device)
        self.config = {"arch": self.arch.to_str(), "model": model, "epochs": epochs, "seed": seed, "transfer": transfer,
                       "batch_size": batch_size, "dataset": dataset.fingerprint}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of(seed, 0))
            self.net = build(self.arch, dataset.num_classes, in_channels=dataset.in_channels)
        self.teacher = None
        if transfer != "none":
            unpruned = load_teacher(str(teacher), model, dataset)
            if transfer == "init":
                init_from(self.net, unpruned)
            else:
                self.teacher = unpruned.to(self.device)
        self.net.to(self.device)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=lr, momentum=0.9, nesterov=True,
                                         weight_decay=weight_decay)
        self.generator = torch.Generator(device=dataset.train.images.device).manual_seed(seed_of(seed, 1))
        self.epoch = 0

    def run_epoch(self) -> dict[str, Any]:
        if self.epoch >= self.epochs:
            raise UserError(f"all {self.epochs} epochs ran")
        started = time.perf_counter()
        for g in self.optimizer.param_groups:
            g["lr"] = cosine_lr(self.lr, self.epoch, self.epochs)
        self.net.train()
        tally = [0.0, 0, 0]  # loss sum, correct, seen
        for x, y in iterate_batches(self.dataset.train, self.batch_size, shuffle=True, augment=True,
                                    dataset=self.dataset, generator=self.generator, drop_last=True):
            x, y = x.to(self.device), y.to(self.device)
            logits = self.net(x)
            if self.teacher is None:
                loss = F.cross_entropy(logits, y)
            else:
                with torch.no_grad():
                    teacher_logits = self.teacher(x)
                loss = kd_loss(logits, teacher_logits, y, lam=self.kd[0], temperature=self.kd[1])
            sgd_step(self.optimizer, loss, logits, y, tally)
        self.epoch += 1
        loss_sum, correct, seen = tally
        return {"epoch": self.epoch, "train_loss": loss_sum / max(1, seen), "train_acc": 100.0 * correct / max(1, seen),
                "test_acc": self.accuracy(), "epoch_time_s": time.perf_counter() - started}

    @torch.no_grad()
    def accuracy(self) -> float:
        split = self.dataset.test if self.dataset.test is not None else self.dataset.valid
        self.net.eval()
        correct = 0
        for x, y in iterate_batches(split, EVAL_BATCH, shuffle=False, augment=False, dataset=self.dataset,
                                    generator=None):
            correct += int((self.net(x.to(self.device)).argmax(1) == y.to(self.device)).sum())
        self.net.train()
        return 100.0 * correct / len(split)

    def parts(self) -> dict[str, Any]:
        return {"net": self.net, "optimizer": self.optimizer, "generator": self.generator}

    def state_dict(self) -> dict[str, Any]:
        return save_parts(self.config, self.epoch, self.parts())

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch = load_parts(state, self.config, self.parts(), "training")


def step_dataset(config: Mapping[str, Any], device: str = "cpu") -> Dataset:
    from .data import load_subset

    data_dir = config.get("data_dir")
    return load_subset(str(config["dataset"]), None if data_dir is None else str(absolute_path(data_dir)),
                       **(config.get("subset") or {}), device=device)


def make_engine(config: Mapping[str, Any]):
    """The engine of one step's config (module docstring)."""
    device = config.get("device") or "cpu"
    dataset = step_dataset(config, device)
    if config["step"] == "search":
        from .search import PruneSearch
        from .supernet import RATIOS

        return PruneSearch(config["model"], dataset, epochs=int(config["epochs"]), seed=int(config["seed"]),
                           flops_target=config["flops_target"], mode=config.get("mode", "tas"),
                           ratios=tuple(config.get("ratios") or RATIOS), device=device)
    teacher = config.get("teacher")
    return NetTrainer(config["arch"], dataset, model=config["model"], epochs=int(config["epochs"]),
                      seed=int(config["seed"]), transfer=config.get("transfer", "none"),
                      teacher=None if teacher is None else str(absolute_path(teacher)), device=device)


class _PruneStepMixin(EngineHost):
    """One Tune trial = one pipeline step of one seed; one ``step()`` = one epoch (module docstring)."""

    CHECKPOINT_FILE = "prune.pt"

    def setup(self, config: dict) -> None:
        config = dict(config.get("case", config))  # the pipeline grids over whole configs
        torch.set_num_threads(max(1, int(config.get("threads", 1))))
        self.engine = make_engine(config)

    def step(self) -> dict:
        result = self.engine.run_epoch()
        result["done"] = self.engine.epoch >= self.engine.epochs
        return result


def prune_trainable() -> type:
    """The ``PruneStep`` Tune trainable class (built on first use)."""
    return tune_class(_PruneStepMixin, "PruneStep")


__getattr__ = module_getattr(__name__, {"PruneStep": _PruneStepMixin})
