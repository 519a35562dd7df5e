"""What the benchmark says about the architecture a one-shot search derived.

No torch here: the driver builds the lookup from the store and hands it to every trial
(``tune.with_parameters``); each result then carries the derived architecture's figures.
"""

from __future__ import annotations

import functools
import resource
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArchLookup:
    """Benchmark figures of every architecture, as arrays indexed by the project arch index.

    ``final``: test accuracy under ``final_hp`` (the longest recipe covering every architecture;
    hp=200 for NATS-Bench data); ``search_valid``: validation accuracy under ``search_hp`` (12).
    ``rank``: 1 for the best ``final`` value; ties share the better rank; NaN where unknown.
    """

    final: np.ndarray
    search_valid: np.ndarray
    final_hp: int
    search_hp: int
    dataset: str

    @classmethod
    def from_task(cls, task) -> ArchLookup:
        """The lookup of a benchmark task view (``benchmark_data.task.Task``, from
        ``Benchmark.task(space, dataset, hp=...)``): its ``final`` values under ``final_hp`` and
        ranks, and its feedback at the search recipe's last epoch (``search_valid``)."""
        lookup = cls(final=np.asarray(task.final, dtype=np.float64),
                     search_valid=np.asarray(task.search_valid, dtype=np.float64),
                     final_hp=int(task.final_hp), search_hp=int(task.feedback_hp), dataset=task.dataset)
        lookup.__dict__["rank"] = task.final_rank  # the task's ranks, not computed again
        return lookup

    @functools.cached_property
    def rank(self) -> np.ndarray:
        from benchmark_data.task import rank_descending  # the task view's one ranking rule

        return rank_descending(self.final)

    def figures(self, arch_index: int) -> dict[str, float]:
        return {"test_acc": float(self.final[arch_index]), "valid_acc_search_hp": float(self.search_valid[arch_index]),
                "rank": float(self.rank[arch_index]), "final_hp": self.final_hp, "search_hp": self.search_hp}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
