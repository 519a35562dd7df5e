"""Shared pytest fixtures.

``epoch_rows`` builds small, deterministic rows of the store's ``epochs`` table so that writer,
reader and CLI tests describe their data in one line instead of re-deriving the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest


def make_epoch_rows(space: str = "tss", dataset: str = "digits", hp: int = 12,
                    archs: Sequence[int] = (0, 1, 2), seeds: Sequence[int] = (0,),
                    epochs: int | None = None, offset: float = 0.0) -> pd.DataFrame:
    """Rows whose values encode their key, so a test can predict every number it reads back:
    valid_acc = arch + seed/10 + epoch/1000 + offset, epoch_time_s = 1 + arch/100,
    eval_time_s = 0.5, test_acc = valid_acc + 1."""
    n_epochs = hp if epochs is None else epochs
    a, s, e = np.meshgrid(np.asarray(archs), np.asarray(seeds), np.arange(1, n_epochs + 1),
                          indexing="ij")
    a, s, e = a.ravel(), s.ravel(), e.ravel()
    valid = a + s / 10 + e / 1000 + offset
    return pd.DataFrame({
        "space": space, "dataset": dataset, "hp": hp, "arch_index": a, "seed": s, "epoch": e,
        "train_loss": 1.0 / e, "train_acc": valid + 2, "valid_loss": 2.0 / e, "valid_acc": valid,
        "test_loss": 3.0 / e, "test_acc": valid + 1, "epoch_time_s": 1 + a / 100,
        "eval_time_s": 0.5, "status": "ok",
    })


@pytest.fixture
def epoch_rows() -> Callable[..., pd.DataFrame]:
    return make_epoch_rows


@pytest.fixture
def no_home_ray_results(tmp_path, monkeypatch):
    """A Ray Tune Trainable built outside Tune makes its log folder under ~/ray_results; keep it in tmp_path."""
    monkeypatch.setattr("ray.tune.trainable.trainable.DEFAULT_STORAGE_PATH", str(tmp_path / "ray_results"))
