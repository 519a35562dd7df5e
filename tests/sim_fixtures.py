"""Small deterministic benchmark tables for simulator tests (no store needed)."""

from __future__ import annotations

import numpy as np

from benchmark_data.task import Task
from spaces import get_space


def synthetic_table(seeds: int = 2, epochs: int = 12, dataset: str = "digits") -> Task:
    """A tss table whose accuracy rises with conv ops and training, with seed noise and real-looking times.

    The structure (convs help, 'none' hurts, learning curves saturate) gives model-based searchers
    something to learn, like real NATS-Bench data does.
    """
    space = get_space("tss")
    rng = np.random.default_rng(123)
    ops = space.all_choice_indices()  # [archs, 6]
    quality = (np.isin(ops, (2, 3)).sum(1) * 6.0 + (ops == 3).sum(1) * 2.0 - (ops == 0).sum(1) * 4.0)
    quality = 50 + quality + rng.normal(0, 3, size=space.size)
    t = np.arange(1, epochs + 1) / epochs
    curve = 1 - np.exp(-3 * t)  # [epochs]
    feedback = (quality[:, None, None] * curve[None, None, :]
                + rng.normal(0, 1.0, size=(space.size, seeds, epochs))).astype(np.float32)
    per_epoch = 5.0 + np.isin(ops, (2, 3)).sum(1) * 1.5  # conv cells train slower
    train_time = np.broadcast_to(per_epoch[:, None, None], (space.size, seeds, epochs)).astype(np.float32).copy()
    eval_time = np.full((space.size, seeds, epochs), 0.5, dtype=np.float32)
    final = (quality + rng.normal(0, 0.5, size=space.size)).astype(np.float32)
    return Task(space, dataset, feedback, train_time, eval_time, final, final_hp=epochs)
