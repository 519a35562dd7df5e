"""A synthetic partial size-space table for surrogate tests: curves that are a smooth, known
function of the channel counts plus seeded noise, as a real table would be (but known)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spaces import get_space

SSS = get_space("sss")
HP = 4


def synthetic_rows(n_archs: int, seed: int = 0, hp: int = HP) -> pd.DataFrame:
    """Trained rows of ``n_archs`` sampled size-space networks: wider networks learn faster and
    take longer, plus noise, as a real table would (but known)."""
    rng = np.random.default_rng(seed)
    archs = np.sort(rng.choice(SSS.size, n_archs, replace=False))
    width = np.array([sum(SSS.channels(int(a))) for a in archs], np.float64) / 320.0  # 0.125 .. 1
    e = np.arange(1, hp + 1)
    acc = 100 - 80 * np.exp(-np.outer(0.1 + 0.5 * width, e))  # [archs, epochs]
    noise = rng.normal(0, 0.3, acc.shape)
    a = np.repeat(archs, hp)
    valid = (acc + noise).ravel()
    return pd.DataFrame({
        "space": "sss", "dataset": "digits", "hp": hp, "arch_index": a, "seed": 0, "epoch": np.tile(e, n_archs),
        "train_loss": (3 - acc / 40).ravel(), "train_acc": (acc + 1).ravel(), "valid_loss": (3 - valid / 40),
        "valid_acc": valid, "test_loss": (3 - acc / 40).ravel(), "test_acc": (acc + noise[:, ::-1]).ravel(),
        "epoch_time_s": np.repeat(0.1 + width, hp), "eval_time_s": np.repeat(0.01 + width / 10, hp),
        "status": "ok"})
