"""One-shot searches: the derived architecture after every search epoch (the thesis' Figure 5.7).

A one-shot search writes one ``runs`` row per epoch (clock ``wall``): the architecture derived
after it, its test accuracy in the benchmark under the final recipe (the search never sees it),
its rank among all cells, and the supernet's own view of it. Panels and labels are the searches'
(``searches.panel_of``), so a one-shot algorithm lands in the final table beside the multi-trial
searchers of the same space and dataset.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .searches import bands

COLUMNS = ["panel", "label", "run_seed", "epoch", "test_acc", "rank", "supernet_valid_acc", "arch_entropy",
           "wall_time_s"]


def epochs(runs: pd.DataFrame, experiments) -> pd.DataFrame:
    """Per one-shot run and search epoch: the derived architecture's figures (``COLUMNS``)."""
    out = []
    labels = runs.set_index(["experiment", "searcher", "run_seed"])["label"]
    for exp in experiments:
        if not exp.oneshot:
            continue
        rows = exp.rows
        key = list(zip(rows["experiment"], rows["searcher"], rows["run_seed"]))
        panel = runs.loc[runs["experiment"] == exp.name, "panel"].iloc[0]
        out.append(pd.DataFrame({
            "panel": panel, "label": labels.loc[key].to_numpy(), "run_seed": rows["run_seed"].to_numpy(),
            "epoch": rows["event"].to_numpy(np.int64) + 1,
            "test_acc": rows["best_test_acc"].to_numpy(np.float64), "rank": rows["best_rank"].to_numpy(np.float64),
            "supernet_valid_acc": rows["supernet_valid_acc"].to_numpy(np.float64),
            "arch_entropy": rows["arch_entropy"].to_numpy(np.float64),
            "wall_time_s": rows["wall_time_s"].to_numpy(np.float64)}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=COLUMNS)


def epoch_bands(per_epoch: pd.DataFrame) -> pd.DataFrame:
    """The derived architectures' test accuracy per epoch over the runs: mean and band."""
    return bands(per_epoch, x="epoch", y="test_acc")
