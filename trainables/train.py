"""The live trainable: one Ray Tune trial trains one architecture, one ``step()`` per epoch.

``TrainArch`` hosts the training engine (``trainables.engine.TrainEngine``) through the shared
Tune plumbing (``trainables.tune_host``: exact per-epoch checkpoints, the class built on first
use so that importing this module does not import Ray) and writes its rows through
``trainables.store_io``. The names other code has always imported from here (the engine, the
store helpers) are re-exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch

from benchmark_data.writer import write_new_rows
from spaces.errors import UserError
from trainables.engine import METRICS, TrainEngine, cached_dataset
from trainables.recipes import get_recipe
from trainables.skeleton import default_N, get_space, skeleton
from trainables.store_io import arch_row, check_store, epoch_row, store_metadata, stored_archs, stored_epochs
from trainables.tune_host import EngineHost, absolute_path, module_getattr

# Re-exported for the code that imports them from here (TrainArch itself is built on first access).
__all__ = ["METRICS", "TrainEngine", "arch_row", "cached_dataset", "check_store", "default_N",
           "epoch_row", "get_space", "skeleton", "store_metadata", "stored_archs", "stored_epochs"]


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
        self.data_dir = None if data_dir is None else str(absolute_path(data_dir))
        self.recipe = get_recipe(config.get("recipe", "h0"))
        self.seed = int(config.get("seed", 0))
        self.C = int(config.get("C", 16))
        self.N = int(config.get("N", default_N(self.space)))
        store = config.get("store")
        self.store = None if store is None else absolute_path(store)
        fidelity = config.get("fidelity")
        self.epochs = self.recipe.epochs if fidelity is None else int(fidelity)
        if not 1 <= self.epochs <= self.recipe.epochs:
            raise UserError(f"fidelity {fidelity!r} must be between 1 and the recipe's "
                            f"{self.recipe.epochs} epochs")
        self.threads = int(config.get("threads", 1))
        self.device = config.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")


class _TrainArchMixin(EngineHost):
    """One Tune trial = one architecture trained under a recipe; one ``step()`` = one epoch.

    Config keys: space ("tss"), arch (index or canonical string; or the space's decisions as a
    searcher proposes them), dataset ("digits"), data_dir, recipe (name or {"name", overrides}),
    seed (0), C (16), N (5; sss: 1, its only value), store (root folder or None), fidelity
    (epochs to train within the recipe's schedule; default all), threads (torch threads, 1),
    device (cuda if available). Relative paths mean the folder the run was launched from.

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
        diverged = self.engine.diverged
        done = epoch >= self.cfg.epochs or diverged
        if done:
            self.flush()
        result = {**metrics, "epoch": epoch, "arch_index": self.engine.arch_index,
                  "hp": self.cfg.recipe.hp, "status": self.rows[-1]["status"], "done": done}
        if diverged:  # the trial ends here, and the searcher is told a failure, not chance accuracy
            result.update({m: float("nan") for m in ("valid_acc", "valid_loss")})
        return result

    def extra_state(self) -> dict[str, Any]:
        return {"rows": self.rows, "flushed": sorted(self.flushed)}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
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
        # Checked and written under the partition's lock (write_new_rows): another trial, of this
        # search or of another one sharing the store, may be training the same architecture.
        if engine.arch_index not in stored_archs(cfg.store, engine.space.name, engine.dataset.name):
            iso = int(engine.space.iso_class_ids()[engine.arch_index])
            row = arch_row(engine.space, engine.arch_index, engine.dataset, C=cfg.C, N=cfg.N,
                           iso_class=iso, latency_ms=engine.latency_ms(cfg.recipe.batch_size))
            write_new_rows(cfg.store, "archs", pd.DataFrame([row]), metadata=store_metadata(
                "archs", cfg.recipe, engine.dataset, C=cfg.C, N=cfg.N, space=engine.space))
        write_new_rows(cfg.store, "epochs", pd.DataFrame(pending), metadata=store_metadata(
            "epochs", cfg.recipe, engine.dataset, C=cfg.C, N=cfg.N,
            extra={"seeds": [engine.seed], "writer": "TrainArch"}, space=engine.space))
        self.flushed.update(r["epoch"] for r in pending)


# ``TrainArch`` is created on first access (see trainables.tune_host).
__getattr__ = module_getattr(__name__, {"TrainArch": _TrainArchMixin})
