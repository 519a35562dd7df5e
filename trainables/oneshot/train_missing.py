"""``--train-missing``: train what a one-shot search derived but its benchmark table lacks, into that table.

A derived configuration whose value in a table is a surrogate prediction or a gap is trained with
that table's own recipe (its files' ``recipe`` metadata), skeleton and training seeds, and its rows
are appended to the store, so the table grows with use and the next search finds them trained.
The work is the benchmark builder's: its plan of what is still missing (``trainables.builder.plan``)
and its chunk runner (``run_chunk``: one ``epochs`` and one ``archs`` fragment, each written
atomically), so the rows are exactly those ``python -m benchmark_data build`` would write. It runs
in the calling process, one training after the other. No torch at import.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from spaces.errors import UserError


def train_missing(root: str | Path, space: str, tables: Iterable[tuple[str, int]], archs: Iterable[int], *,
                  data_dir: str | None = None) -> dict[str, float]:
    """Train every arch of ``archs`` lacking trained rows in each (dataset, hp) table of ``tables``.

    Returns {"trained": trainings done, "train_s": seconds}. UserError when a table does not record
    the recipe or skeleton it was trained with (an imported table): nothing could match it.
    """
    from benchmark_data.reader import Benchmark
    from spaces import get_space
    from trainables.builder import plan, run_chunk
    from trainables.recipes import recorded_recipe
    from trainables.store_io import check_store, stored_archs, stored_epochs

    root = Path(root)
    space_obj = get_space(space)
    wanted = np.array(sorted({int(a) for a in archs}), dtype=np.int64)
    trained = Benchmark.open(root, surrogate=False)  # what was trained, never the predictions
    done, seconds = 0, 0.0
    for dataset, hp in dict.fromkeys(tables):  # each table once, in order
        if not wanted.size:
            break
        meta = trained.metadata(space, dataset, hp)
        try:
            recipe = recorded_recipe(meta.get("recipe") or "{}")
            skeleton = json.loads(meta.get("skeleton") or "{}")
            N, C = int(skeleton["N"]), int(skeleton.get("C", 16))  # sss records no C (its channels are the arch)
        except (UserError, KeyError, ValueError, TypeError):
            raise UserError(f"--train-missing: the {space}/{dataset} hp={hp} table of {root} does not record the "
                            "recipe and skeleton it was trained with (an imported table?), so nothing trained "
                            "now could match its rows; drop --train-missing") from None
        seeds = [s for s in trained.seeds(space, dataset, hp) if s >= 0]
        check_store(root, space_obj, dataset, recipe, C=C, N=N, flag="--store")
        units = plan(space_obj, wanted, False, seeds, hp, stored_epochs(root, space, dataset, hp),
                     stored_archs(root, space, dataset))
        if not units:
            continue
        spec = {"space": space, "dataset": dataset, "data_dir": data_dir, "recipe": recipe.to_dict(), "C": C,
                "N": N, "out": str(root), "seeds": seeds, "archs": "oneshot --train-missing"}
        started = time.perf_counter()
        stats = run_chunk(spec, units)
        done, seconds = done + stats["trained"], seconds + time.perf_counter() - started
    return {"trained": done, "train_s": seconds}
