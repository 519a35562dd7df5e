"""The one-shot search loop, its exact checkpoints, and the Ray Tune trainable that hosts it.

One engine for both spaces: the algorithm's strategy names its space (``Strategy.space``), and
``SUPERNETS`` builds that space's supernet (the topology supernet with C and N; the size space's
channel supernet, N=1, no C; AutoHAS's MBConv supernet for ``mbconv``). Everything below holds
for both. A strategy may replace the whole iteration (``BaseStrategy.search_step``, whose default
is the weight step below then the architecture step): AutoHAS does, for its combined update.

The trainable is the shared Tune plumbing of ``trainables.tune_host``; the benchmark figures of a
derived architecture come from ``lookup.ArchLookup`` (re-exported here).

``SearchEngine`` owns the supernet, the weight optimizer, the data and the random streams; the
strategy (``strategy.Strategy`` subclass) decides which sub-network each step trains, how the
architecture parameters learn and what to derive. One ``run_epoch()`` = one search epoch: for each
train batch, one weight step (SGD, Nesterov momentum 0.9, wd 5e-4, batch 64, no gradient clipping,
cosine lr 0.025 -> 0.001 stepped per epoch: NATS-Bench's weight-sharing.config with
search-cell.py), then one architecture step on the next batch of the validation split (a fresh
permutation every epoch, restarted when it runs out; batches are full-sized, the remainder of a
split is dropped for the epoch, so no architecture or weight step learns from a handful of
images); after the epoch, ``derive`` names the recommended architecture. Weights step before the
architecture on each batch, as in NATS-Bench's search scripts (the original DARTS steps the
architecture first). Gradients are zeroed, not dropped, between weight steps, so — as in
NATS-Bench, written for PyTorch 1.x — ops a single-path strategy did not sample still decay and
coast on momentum.

The cosine follows xautodl's ``CosineAnnealingLR.get_lr`` (procedures/optimizers.py): the lr of
epoch e (0-based) of E is 0.001 + 0.024 * (1 + cos(pi * e / E)) / 2 for every batch of the epoch
(search-cell.py's per-batch ``update(None, step / len)`` only matters during a warmup, which the
one-shot config has none of), so the last epoch trains at slightly above 0.001, never at it.

Engine knobs (in ``knobs`` with the strategy's): ``grad_clip`` (None): clip the weight gradient
at this norm before each weight step; NATS-Bench does not clip (the original DARTS code clips at 5).

Exact resumption (on the CPU): ``state_dict()`` holds the supernet, both optimizers, the strategy's
own state, the data and architecture generators and torch's global RNG, and every epoch starts
its iterators afresh from those generators, so a search restored after epoch k continues exactly
as the uninterrupted one.

Candidates are ranked on one large evaluation batch (the first 512 images of the validation
split, unaugmented; all of them on digits), as the thesis recommends: small batches with batch
statistics make the shared-weight ranking noisy. (NATS-Bench's ``get_best_arch`` scores each
candidate on the next random 512-image batch instead; one batch for all is a fairer comparison.)
Strategies that need fresh clean validation batches (ENAS' reward) draw them with
``clean_valid_batch``: a new permutation per epoch, 512 unaugmented images each.

For CIFAR-100 and ImageNet16-120 the trainable loads the dataset with NATS-Bench's own split file
(``trainables.data.splits``): the search fits and ranks on the benchmark's x-valid half only, never
on the half the benchmark scores.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spaces.errors import UserError
from trainables.data import Dataset, iterate_batches
from trainables.recipes import Recipe
from trainables.seeding import seed_of
from trainables.tune_host import EngineHost, absolute_path, module_getattr, tune_class

from . import strategy_class
from .lookup import ArchLookup, peak_rss_mib
from .supernet import TopologySupernet

__all__ = ["ENGINE_KNOBS", "RANK_BATCH", "SUPERNETS", "ArchLookup", "SearchEngine", "oneshot_trainable",
           "peak_rss_mib", "search_recipe"]

RANK_BATCH = 512
# Knobs the engine reads itself (the rest go to the strategy); see the module docstring.
ENGINE_KNOBS = {"grad_clip": None}


def search_recipe(epochs: int, batch_size: int = 64) -> Recipe:
    """NATS-Bench's one-shot weight setting as a Recipe (lr, lr_min, batch; the per-epoch cosine
    itself is ``SearchEngine.epoch_lr``, not the recipe's per-iteration ``lr_at``)."""
    if not isinstance(epochs, int) or epochs < 1:
        raise UserError(f"the search needs at least 1 epoch, got {epochs!r}")
    return Recipe(name="oneshot", epochs=epochs, batch_size=batch_size, lr=0.025, lr_min=0.001,
                  eval_batch_size=RANK_BATCH)


def _size_supernet(dataset: Dataset, C: int | None, N: int):
    from .size_supernet import SizeSupernet

    if C is not None:
        raise UserError(f"C={C}: the size space's channels are the architecture, it has no C; drop C for "
                        "the size strategies")
    return SizeSupernet(dataset.num_classes, N=N, in_channels=dataset.in_channels, input_size=dataset.image_size)


def _mbconv_supernet(dataset: Dataset, C: int | None, N: int):
    from .autohas_supernet import MBConvSupernet

    return MBConvSupernet(dataset.num_classes, C=16 if C is None else C, N=N, in_channels=dataset.in_channels)


# space -> supernet(dataset, C, N), as the strategies of that space expect it
SUPERNETS = {
    "tss": lambda dataset, C, N: TopologySupernet(dataset.num_classes, C=C, N=N, in_channels=dataset.in_channels),
    "sss": _size_supernet,
    "mbconv": _mbconv_supernet,
}


class SearchEngine:
    """One one-shot search (one algorithm, one seed) on the algorithm's space (``C`` None for sss)."""

    def __init__(self, algorithm: str, dataset: Dataset, *, epochs: int, seed: int, C: int | None, N: int,
                 device: str | torch.device = "cpu", batch_size: int = 64,
                 knobs: Mapping[str, Any] | None = None) -> None:
        cls = strategy_class(algorithm)
        self.algorithm, self.dataset, self.seed = algorithm, dataset, int(seed)
        self.C, self.N = (None if C is None else int(C)), int(N)
        self.knobs = _checked_knobs(cls, algorithm, knobs or {})
        engine_knobs = {**ENGINE_KNOBS, **{k: v for k, v in self.knobs.items() if k in ENGINE_KNOBS}}
        strategy_knobs = {k: v for k, v in self.knobs.items() if k not in ENGINE_KNOBS}
        clip = engine_knobs["grad_clip"]
        if clip is not None and not (isinstance(clip, (int, float)) and clip > 0):
            raise UserError(f"knob grad_clip must be a positive number or None, got {clip!r}")
        self.grad_clip = None if clip is None else float(clip)
        self.recipe = search_recipe(epochs, batch_size)
        self.space = cls.search_space(self.N)
        self.device = torch.device(device)
        if dataset.valid is None:
            raise UserError(f"dataset {dataset.name!r} has no validation split: one-shot search "
                            "trains the weights on train and the architecture on valid")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of(seed, 0))
            net = SUPERNETS[cls.space](dataset, self.C, self.N)
        self.net = net.to(self.device, memory_format=torch.channels_last)
        self.weight_optimizer = torch.optim.SGD(
            self.net.parameters(), lr=self.recipe.lr, momentum=self.recipe.momentum,
            nesterov=self.recipe.nesterov, weight_decay=self.recipe.weight_decay)
        for p in self.net.parameters():  # zero, never None: every op decays (module docstring), and a
            p.grad = torch.zeros_like(p)  # restored search matches an uninterrupted one
        self.data_generator = torch.Generator(device=dataset.train.images.device)
        self.data_generator.manual_seed(seed_of(seed, 1))
        self.arch_generator = torch.Generator().manual_seed(seed_of(seed, 2))
        self.strategy = cls(self.net, self.arch_generator, epochs, **strategy_knobs)
        self.epoch = 0
        self._clean_valid = None
        self.iters_per_epoch = len(dataset.train) // self.recipe.batch_size
        for name in ("train", "valid"):
            if len(getattr(dataset, name)) < self.recipe.batch_size:
                raise UserError(f"the {name} split of {dataset.name!r} has {len(getattr(dataset, name))} "
                                f"images, fewer than one search batch ({self.recipe.batch_size})")
        self.strategy.bind(self)
        x, y = next(iter(iterate_batches(dataset.valid, RANK_BATCH, shuffle=False, augment=False,
                                         dataset=dataset, generator=None)))
        self.rank_batch = (self._to_device(x), y.to(self.device))

    # --- one search epoch ---------------------------------------------------------------------------
    def run_epoch(self) -> dict[str, Any]:
        if self.epoch >= self.recipe.epochs:
            raise UserError(f"all {self.recipe.epochs} search epochs ran; start a longer search to go on")
        recipe, opt, strategy = self.recipe, self.weight_optimizer, self.strategy
        strategy.epoch = self.epoch
        started = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        valid = self._valid_batches()
        self._clean_valid = None  # started on first use this epoch (see clean_valid_batch)
        lr = self.epoch_lr(self.epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        batches = iterate_batches(self.dataset.train, recipe.batch_size, shuffle=True, augment=recipe.augment,
                                  dataset=self.dataset, generator=self.data_generator, drop_last=True)
        for x, y in batches:
            train = (self._to_device(x), y.to(self.device))
            loss, logits = strategy.search_step(train, valid, self)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.detach().argmax(1) == train[1]).sum())
            seen += len(y)
        self._sync()
        epoch_time = time.perf_counter() - started
        self.epoch += 1
        started = time.perf_counter()
        ops = strategy.derive(self)
        derive_time = time.perf_counter() - started
        arch_index = self.space.index_of_choices(ops)
        return {"epoch": self.epoch, "arch_index": arch_index, "arch": self.space.to_str(arch_index),
                "search_loss": loss_sum / seen, "search_acc": 100.0 * correct / seen,
                "supernet_valid_acc": self.batch_accuracy(self.rank_batch, ops),
                "arch_entropy": strategy.entropy(), **strategy.report(ops),
                "epoch_time_s": epoch_time, "derive_time_s": derive_time}

    def weight_step(self, train: tuple[torch.Tensor, torch.Tensor], sample) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step of the weights on ``train`` through ``sample``; (loss, logits)."""
        logits = self.net(train[0], sample)
        loss = F.cross_entropy(logits, train[1])
        self.weight_optimizer.zero_grad(set_to_none=False)  # see the module docstring
        loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
        self.weight_optimizer.step()
        return loss, logits

    def epoch_lr(self, epoch: int) -> float:
        """The weight lr of search epoch ``epoch`` (0-based): cosine per epoch (module docstring)."""
        r = self.recipe
        return r.lr_min + (r.lr - r.lr_min) * 0.5 * (1.0 + math.cos(math.pi * epoch / r.epochs))

    def clean_valid_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch of RANK_BATCH (512) unaugmented validation images (all of them where the
        split is smaller); a new permutation every epoch, restarted when it runs out."""
        if self._clean_valid is None:
            self._clean_valid = self._valid_batches(min(RANK_BATCH, len(self.dataset.valid)), augment=False)
        return next(self._clean_valid)

    def _valid_batches(self, batch_size: int | None = None, augment: bool | None = None):
        """Validation batches for the architecture steps: a new permutation per pass, as many passes as needed."""
        while True:
            for x, y in iterate_batches(self.dataset.valid, batch_size or self.recipe.batch_size, shuffle=True,
                                        augment=self.recipe.augment if augment is None else augment,
                                        dataset=self.dataset,
                                        generator=self.data_generator, drop_last=True):
                yield self._to_device(x), y.to(self.device)

    # --- ranking with the shared weights ----------------------------------------------------------
    @torch.no_grad()
    def batch_accuracy(self, batch, ops: tuple[int, ...]) -> float:
        """Accuracy (percent) of the sub-network ``ops`` on one batch, with the shared weights."""
        x, y = batch
        logits = self.net(x, self.strategy.path_sample(ops, x))
        return 100.0 * float((logits.argmax(1) == y).float().mean())

    def best_of(self, candidates: list[tuple[int, ...]]) -> tuple[int, ...]:
        """The candidate the shared weights rate best on the ranking batch (first one on ties)."""
        unique = list(dict.fromkeys(tuple(c) for c in candidates))
        scores = [self.batch_accuracy(self.rank_batch, c) for c in unique]
        return unique[int(np.argmax(scores))]

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, memory_format=torch.channels_last, non_blocking=True)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # --- exact resumption ---------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """Everything a checkpoint must agree on to continue this search."""
        return {"algorithm": self.algorithm, "seed": self.seed, "epochs": self.recipe.epochs,
                "batch_size": self.recipe.batch_size, "dataset": self.dataset.fingerprint,
                "C": self.C, "N": self.N, "knobs": dict(sorted(self.knobs.items()))}

    def state_dict(self) -> dict[str, Any]:
        """References to the live tensors (as torch's own state_dicts): serialise it right away."""
        return {"identity": self.identity(), "epoch": self.epoch, "net": self.net.state_dict(),
                "weight_optimizer": self.weight_optimizer.state_dict(),
                "strategy": self.strategy.state_dict(),
                "data_generator": self.data_generator.get_state(),
                "arch_generator": self.arch_generator.get_state(), "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("identity") != self.identity():
            raise UserError(f"checkpoint is for the search {state.get('identity')}, this search is "
                            f"{self.identity()}; restore it into a search with the same configuration")
        self.net.load_state_dict(state["net"])
        self.weight_optimizer.load_state_dict(state["weight_optimizer"])
        self.strategy.load_state_dict(state["strategy"])
        self.data_generator.set_state(state["data_generator"])
        self.arch_generator.set_state(state["arch_generator"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch = int(state["epoch"])


def _checked_knobs(cls, algorithm: str, knobs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword knobs ``cls`` (and its bases) accept; UserError naming unknown ones."""
    valid = set(ENGINE_KNOBS)
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            valid |= {p for p, spec in inspect.signature(klass.__init__).parameters.items()
                      if spec.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(knobs) - valid)
    if unknown:
        raise UserError(f"{algorithm} has no knob(s) {unknown}; its knobs are {sorted(valid)}")
    return dict(knobs)


# --- the Ray Tune trainable -----------------------------------------------------------------------
class _OneShotMixin(EngineHost):
    """One Tune trial = one one-shot search; one ``step()`` = one search epoch.

    Config keys: algorithm, dataset ("digits"), data_dir (relative: from the launch folder), seed
    (0), epochs, C (None for the size space), N, threads (1), device ("cpu"; "cuda" only where the
    trial reserved a GPU), knobs (dict of strategy knobs). ``lookup`` (an ArchLookup, passed with
    ``tune.with_parameters``) adds the derived architecture's benchmark figures to each result.
    A checkpoint per epoch holds the engine's whole state (see the module docstring).
    """

    CHECKPOINT_FILE = "search.pt"

    def setup(self, config: dict, lookup: ArchLookup | None = None) -> None:
        from trainables.data.splits import search_dataset

        torch.set_num_threads(max(1, int(config.get("threads", 1))))
        device = config.get("device") or "cpu"  # the driver asks for cuda only with GPUs reserved
        data_dir = config.get("data_dir")
        dataset = search_dataset(str(config.get("dataset", "digits")),
                                 None if data_dir is None else str(absolute_path(data_dir)), device)
        self.engine = SearchEngine(config["algorithm"], dataset, epochs=int(config["epochs"]),
                                   seed=int(config.get("seed", 0)),
                                   C=None if config.get("C") is None else int(config["C"]), N=int(config["N"]),
                                   device=device, knobs=config.get("knobs"))
        self.lookup = lookup
        self.search_time = 0.0

    def step(self) -> dict:
        result = self.engine.run_epoch()
        self.search_time += result["epoch_time_s"] + result["derive_time_s"]
        result["search_time_s"] = self.search_time
        result["peak_rss_mib"] = peak_rss_mib()
        if self.lookup is not None:
            result.update(self.lookup.figures(result["arch_index"]))
        result["done"] = self.engine.epoch >= self.engine.recipe.epochs
        return result

    def extra_state(self) -> dict[str, Any]:
        return {"search_time": self.search_time}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.search_time = state["search_time"]


def oneshot_trainable() -> type:
    """The ``OneShotSearch`` Tune trainable class (built on first use: importing ray.tune costs ~1 s)."""
    return tune_class(_OneShotMixin, "OneShotSearch")


# ``OneShotSearch`` is created on first access (see trainables.tune_host).
__getattr__ = module_getattr(__name__, {"OneShotSearch": _OneShotMixin})
