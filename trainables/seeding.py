"""Independent seeds for the separate random streams of one training or search run.

The training engine and the one-shot search engine each draw from several streams (initial
weights, batches and augmentation, architecture sampling); deriving each stream's seed from the
run seed and a stream number keeps them independent and makes a run depend on its seed alone.
"""

from __future__ import annotations

import numpy as np


def seed_of(seed: int, stream: int) -> int:
    """A 63-bit seed for stream ``stream`` of the run seeded ``seed`` (fits torch.manual_seed)."""
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1, np.uint64)[0] >> 1)
