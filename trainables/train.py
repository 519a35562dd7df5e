"""The one training engine, and the Ray Tune trainable built on it.

``TrainEngine`` trains one architecture of a search space under one recipe, an epoch at a time. It
is used by the live trainable (``TrainArch``, one Tune trial = one architecture) and by the
benchmark builder (``trainables.builder``, many architectures per Ray task), so the numbers in a
benchmark and the numbers of a live search come from the same code.

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
    from the same weights as one trained alone;
  * the skeleton (C, N) and the recipe are not key columns of the store, so rows of another
    skeleton or recipe under the same key would be skipped as already present: writers call
    ``check_store`` before training (``stored`` rows of a different procedure are refused, never
    silently kept in place of the new ones).
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from spaces.errors import UserError
from trainables.data import Dataset, Split, iterate_batches, load_dataset
from trainables.recipes import Recipe, get_recipe

# Eval tensors larger than this (floats) are streamed per evaluation instead of cached.
_EVAL_CACHE_MAX_FLOATS = 1 << 25
METRICS = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
           "epoch_time_s", "eval_time_s")


def get_space(name: Any):
    """The space object for a name (or the object itself)."""
    if not isinstance(name, str):
        return name
    import spaces

    return spaces.get_space(name)


@functools.lru_cache(maxsize=4)
def cached_dataset(name: str, data_dir: str | None = None, device: str = "cpu") -> Dataset:
    """One loaded copy of a dataset per process (builder workers train thousands of nets on it)."""
    return load_dataset(name, data_dir, device=device)


def default_N(space: Any) -> int:
    """Cells per stage when none is given: NATS-Bench's 5 for tss, the size space's only 1 for sss."""
    return 1 if get_space(space).name == "sss" else 5


def skeleton(space: Any, C: int, N: int) -> dict[str, int]:
    """The skeleton a file records: {"C", "N"}; only {"N"} for sss, whose channels are the
    architecture (C is ignored there), as the importer records NATS-Bench's sss files."""
    return {"N": int(N)} if get_space(space).name == "sss" else {"C": int(C), "N": int(N)}


def _seed_of(seed: int, stream: int) -> int:
    """Independent 63-bit seeds for the separate random streams of one run."""
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1, np.uint64)[0] >> 1)


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
            torch.manual_seed(_seed_of(seed, 0))
            self.model = self.space.build(self.arch_index, dataset.num_classes, C=self.C, N=self.N,
                                          in_channels=dataset.in_channels)
        # channels_last: oneDNN's convolutions on few channels run ~1.5x faster in NHWC.
        self.model = self.model.to(self.device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
            nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
        # Batches and augmentation draw from this generator only; it lives on the data's device.
        self.generator = torch.Generator(device=dataset.train.images.device)
        self.generator.manual_seed(_seed_of(seed, 1))
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
        # Once a loss is not finite the weights are garbage; every later epoch is marked too.
        self.diverged = self.diverged or not math.isfinite(train_loss)
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


# --- rows for the store -------------------------------------------------------------------------------
def epoch_row(engine: TrainEngine, epoch: int, metrics: Mapping[str, float], *,
              arch_index: int | None = None, status: str | None = None) -> dict[str, Any]:
    """One ``epochs`` row; ``arch_index``/``status`` override them for iso copies."""
    return {
        "space": engine.space.name, "dataset": engine.dataset.name, "hp": engine.recipe.hp,
        "arch_index": engine.arch_index if arch_index is None else arch_index,
        "seed": engine.seed, "epoch": epoch, **{m: metrics[m] for m in METRICS},
        "status": status or ("diverged" if engine.diverged else "ok"),
    }


def arch_row(space: Any, arch_index: int, dataset: Dataset, *, C: int, N: int, iso_class: int,
             latency_ms: float | None) -> dict[str, Any]:
    """One ``archs`` row: costs from the space's counter, latency as measured by the caller."""
    space = get_space(space)
    cost = space.cost(arch_index, dataset.num_classes, input_size=dataset.image_size, C=C, N=N,
                      in_channels=dataset.in_channels)
    return {"space": space.name, "dataset": dataset.name, "arch_index": arch_index,
            "arch": space.to_str(arch_index), "iso_class": iso_class, "nats_index": None,
            "params_m": cost["params_m"], "flops_m": cost["flops_m"], "latency_ms": latency_ms}


def store_metadata(table: str, recipe: Recipe, dataset: Dataset, *, C: int, N: int,
                   extra: Mapping[str, Any] | None = None, space: Any = None) -> dict[str, str]:
    """Provenance of a fragment: recipe (with its hash), skeleton, data fingerprint, code."""
    from benchmark_data import schema

    return schema.provenance(
        table, recipe={**recipe.to_dict(), "hash": recipe.hash},
        skeleton=skeleton(space, C, N) if space is not None else {"C": C, "N": N},
        dataset_fingerprint=dataset.fingerprint,
        extra={k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
               for k, v in (extra or {}).items()})


def stored_epochs(root: str | Path, space: str, dataset: str, hp: int,
                  arch_index: int | None = None) -> pd.DataFrame:
    """(arch_index, seed, epoch) of every row already in one ``epochs`` partition of a store.

    Reads three int columns of each fragment only; corrupt fragments are skipped (the reader and
    ``compact`` report them), so a bad file makes its rows count as missing, not the build fail.
    """
    from benchmark_data import schema
    from benchmark_data.writer import read_fragment

    folder = schema.partition_path(root, "epochs", {"space": space, "dataset": dataset, "hp": hp})
    parts = []
    for path in schema.list_fragments(folder):
        try:
            tbl = read_fragment(path, "epochs", columns=["arch_index", "seed", "epoch"])
        except (FileNotFoundError, UserError):
            continue
        df = tbl.to_pandas()
        parts.append(df if arch_index is None else df[df["arch_index"] == arch_index])
    if not parts:
        return pd.DataFrame({"arch_index": pd.Series(dtype="int32"),
                             "seed": pd.Series(dtype="int32"), "epoch": pd.Series(dtype="int16")})
    return pd.concat(parts, ignore_index=True)


def stored_archs(root: str | Path, space: str, dataset: str) -> set[int]:
    """arch_index values already in the ``archs`` partition of (space, dataset)."""
    from benchmark_data import schema
    from benchmark_data.writer import read_fragment

    folder = schema.partition_path(root, "archs", {"space": space, "dataset": dataset})
    out: set[int] = set()
    for path in schema.list_fragments(folder):
        try:
            out.update(read_fragment(path, "archs", columns=["arch_index"])["arch_index"].to_pylist())
        except (FileNotFoundError, UserError):
            continue
    return out


def check_store(root: str | Path, space: Any, dataset: str, recipe: Recipe, *, C: int, N: int,
                flag: str = "--store") -> None:
    """UserError when the store holds rows this run's rows must not be mixed with.

    Refused: an ``archs`` or ``epochs`` file of (space, dataset) recording another skeleton (the
    costs and the curves of one key would come from two networks), and an ``epochs`` file of
    (space, dataset, hp) recording another recipe hash (a run with another schedule of the same
    length). Neither is a key column, so the writers would skip the new rows of every key already
    present and keep the old ones. Reads file footers only; files recording no skeleton or hash
    (imported tables, rows written without provenance) and unreadable files (the reader reports
    those) are not judged.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmark_data import schema

    space = get_space(space)
    mine = skeleton(space, C, N)
    root = Path(root)
    for table, values in (("archs", {"space": space.name, "dataset": dataset}),
                          ("epochs", {"space": space.name, "dataset": dataset, "hp": recipe.hp})):
        for path in schema.list_fragments(schema.partition_path(root, table, values)):
            try:
                meta = pq.read_schema(path).metadata or {}
            except (OSError, pa.ArrowException):  # gone (compacted meanwhile) or corrupt
                continue
            theirs = _recorded_skeleton(meta.get(b"skeleton"), space)
            if theirs is not None and theirs != mine:
                raise UserError(
                    f"{flag} {root} holds {space.name}/{dataset} rows of skeleton "
                    f"{_skeleton_text(theirs)} ({path.relative_to(root)}), this run trains "
                    f"{_skeleton_text(mine)}; the skeleton is not part of the store's key, so the "
                    f"two could not be told apart and rows already there would be kept instead "
                    f"of the new ones: give another {flag} (or train {_skeleton_text(theirs)})")
            if table == "epochs":
                _check_recipe(meta.get(b"recipe"), recipe, root, path, flag)


def _recorded_skeleton(raw: bytes | None, space: Any) -> dict[str, int] | None:
    """A file's skeleton in ``skeleton()``'s form, or None when it records none."""
    try:
        sk = json.loads(raw) if raw else {}
        if space.name == "sss":  # files written before skeleton() also recorded the unused C
            return {"N": int(sk["N"])} if "N" in sk else None
        return {"C": int(sk["C"]), "N": int(sk["N"])} if {"C", "N"} <= set(sk) else None
    except (ValueError, TypeError):
        return None


def _skeleton_text(sk: Mapping[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(sk.items()))


def _check_recipe(raw: bytes | None, recipe: Recipe, root: Path, path: Path, flag: str) -> None:
    from trainables.recipes import recorded_recipe

    try:
        spec = json.loads(raw) if raw else {}
    except ValueError:
        return
    theirs = spec.get("hash") if isinstance(spec, dict) else None
    if theirs is None or theirs == recipe.hash:
        return
    hint = ""
    try:
        old = recorded_recipe(spec)
        if old.lr_schedule_step != recipe.lr_schedule_step and \
                get_recipe(old, lr_schedule_step=recipe.lr_schedule_step).hash == recipe.hash:
            hint = (f"; the two differ only in lr_schedule_step: the store's rows were trained with "
                    f"the cosine stepped per {old.lr_schedule_step}, this run steps it per "
                    f"{recipe.lr_schedule_step}")
    except UserError:
        pass
    raise UserError(
        f"{flag} {root} holds rows of hp={recipe.hp} trained with another recipe (hash {theirs}, "
        f"{path.relative_to(root)}) than this run's {recipe.name!r} (hash {recipe.hash}){hint}. "
        f"The recipe is not part of the store's key, so rows already there would be kept instead "
        f"of the new ones: give another {flag}, or train with the store's recipe")


# --- the Ray Tune trainable ------------------------------------------------------------------------
class _Config:
    """A TrainArch config resolved and checked once (UserError naming the bad key otherwise)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.space = get_space(config.get("space", "tss"))
        if "arch" in config:
            self.arch_index = self.space.resolve(config["arch"])
        else:  # a searcher's config: one value per decision of the space
            names = self.space.hparams.names
            if not all(n in config for n in names):
                raise UserError(f"TrainArch config needs 'arch' (index or string) or the decisions "
                                f"{list(names)}; got keys {sorted(config)}")
            self.arch_index = self.space.config_to_index({n: config[n] for n in names})
        self.dataset_name = str(config.get("dataset", "digits"))
        data_dir = config.get("data_dir")
        self.data_dir = None if data_dir is None else str(_absolute(data_dir))
        self.recipe = get_recipe(config.get("recipe", "h0"))
        self.seed = int(config.get("seed", 0))
        self.C = int(config.get("C", 16))
        self.N = int(config.get("N", default_N(self.space)))
        store = config.get("store")
        self.store = None if store is None else _absolute(store)
        fidelity = config.get("fidelity")
        self.epochs = self.recipe.epochs if fidelity is None else int(fidelity)
        if not 1 <= self.epochs <= self.recipe.epochs:
            raise UserError(f"fidelity {fidelity!r} must be between 1 and the recipe's "
                            f"{self.recipe.epochs} epochs")
        self.threads = int(config.get("threads", 1))
        self.device = config.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")


def _absolute(path: Any) -> Path:
    # Tune runs trainables inside their trial folder: relative paths mean the launch folder.
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(os.environ.get("TUNE_ORIG_WORKING_DIR", os.getcwd())) / p


def __getattr__(name: str):
    # ``TrainArch`` is created on first access so that importing the engine (tests, the builder's
    # workers) does not pay ~1 s for importing ray.tune.
    if name == "TrainArch":
        return _train_arch_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.lru_cache(maxsize=1)
def _train_arch_class():
    from ray import tune

    cls = type("TrainArch", (_TrainArchMixin, tune.Trainable), {
        "__module__": __name__, "__qualname__": "TrainArch", "__doc__": _TrainArchMixin.__doc__})
    globals()["TrainArch"] = cls  # later lookups (and pickling by reference) find it directly
    return cls


class _TrainArchMixin:
    """One Tune trial = one architecture trained under a recipe; one ``step()`` = one epoch.

    Config keys: space ("tss"), arch (index or canonical string; or the space's decisions as a
    searcher proposes them), dataset ("digits"), data_dir, recipe (name or {"name", overrides}),
    seed (0), C (16), N (5; sss: 1, its only value), store (root folder or None), fidelity (epochs to train within the
    recipe's schedule; default all), threads (torch threads, 1), device (cuda if available).

    Rows reach the store as one fragment per trial: they are kept in memory (and in every
    checkpoint) and written when the trial finishes, is stopped, or its actor is reused. Before
    writing, the epochs already in the store for this (space, dataset, hp, arch, seed) are skipped,
    so a trial paused, restored and flushed again never duplicates a key, and a trial restored on a
    new actor after a crash still writes the rows its checkpoint holds.
    """

    def setup(self, config: dict) -> None:
        self.cfg = _Config(config)
        if self.cfg.store is not None:  # before any training: rows that could not be kept
            check_store(self.cfg.store, self.cfg.space, self.cfg.dataset_name, self.cfg.recipe,
                        C=self.cfg.C, N=self.cfg.N, flag="store")
        torch.set_num_threads(max(1, self.cfg.threads))
        dataset = cached_dataset(self.cfg.dataset_name, self.cfg.data_dir,
                                 "cpu" if self.cfg.device == "cpu" else self.cfg.device)
        self.engine = TrainEngine(self.cfg.space, self.cfg.arch_index, dataset, self.cfg.recipe,
                                  self.cfg.seed, C=self.cfg.C, N=self.cfg.N, device=self.cfg.device)
        self.rows: list[dict[str, Any]] = []
        self.flushed: set[int] = set()

    def step(self) -> dict:
        metrics = self.engine.run_epoch()
        epoch = self.engine.epoch
        self.rows.append(epoch_row(self.engine, epoch, metrics))
        done = epoch >= self.cfg.epochs
        if done:
            self.flush()
        return {**metrics, "epoch": epoch, "arch_index": self.engine.arch_index,
                "hp": self.cfg.recipe.hp, "status": self.rows[-1]["status"], "done": done}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save({"engine": self.engine.state_dict(), "rows": self.rows,
                    "flushed": sorted(self.flushed)}, os.path.join(checkpoint_dir, "state.pt"))

    def load_checkpoint(self, checkpoint: str | dict) -> None:
        path = checkpoint if isinstance(checkpoint, str) else checkpoint["path"]
        state = torch.load(os.path.join(path, "state.pt"), weights_only=False)
        self.engine.load_state_dict(state["engine"])
        self.rows, self.flushed = list(state["rows"]), set(state["flushed"])

    def reset_config(self, new_config: dict) -> bool:
        self.flush()
        self.setup(new_config)
        self.config = new_config
        return True

    def cleanup(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Write the rows not yet in the store as one fragment (and the archs row if missing)."""
        cfg, engine = self.cfg, self.engine
        pending = [r for r in self.rows if r["epoch"] not in self.flushed]
        if cfg.store is None or not pending:
            self.flushed.update(r["epoch"] for r in pending)
            return
        from benchmark_data.writer import write_fragment

        space, dataset = engine.space.name, engine.dataset.name
        stored = stored_epochs(cfg.store, space, dataset, cfg.recipe.hp, engine.arch_index)
        have = set(stored.loc[stored["seed"] == engine.seed, "epoch"].tolist())
        rows = [r for r in pending if r["epoch"] not in have]
        if engine.arch_index not in stored_archs(cfg.store, space, dataset):
            iso = int(engine.space.iso_class_ids()[engine.arch_index])
            row = arch_row(engine.space, engine.arch_index, engine.dataset, C=cfg.C, N=cfg.N,
                           iso_class=iso, latency_ms=engine.latency_ms(cfg.recipe.batch_size))
            write_fragment(cfg.store, "archs", pd.DataFrame([row]), metadata=store_metadata(
                "archs", cfg.recipe, engine.dataset, C=cfg.C, N=cfg.N, space=engine.space))
        if rows:
            write_fragment(cfg.store, "epochs", pd.DataFrame(rows), metadata=store_metadata(
                "epochs", cfg.recipe, engine.dataset, C=cfg.C, N=cfg.N,
                extra={"seeds": [engine.seed], "writer": "TrainArch"}, space=engine.space))
        self.flushed.update(r["epoch"] for r in pending)
