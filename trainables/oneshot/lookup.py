"""What the benchmark says about the architecture a one-shot search derived.

No torch here: the driver builds the lookup from the store and hands it to every trial
(``tune.with_parameters``); each result then carries the derived architecture's figures, and
says which of them are a surrogate model's predictions rather than trained values.
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
    ``surrogate_final`` / ``surrogate_feedback`` (bool [archs], None: none): the values that are
    a surrogate model's predictions (``surrogate_model``), not trained rows.
    """

    final: np.ndarray
    search_valid: np.ndarray
    final_hp: int
    search_hp: int
    dataset: str
    surrogate_final: np.ndarray | None = None
    surrogate_feedback: np.ndarray | None = None
    surrogate_model: str | None = None

    @classmethod
    def from_task(cls, task) -> ArchLookup:
        """The lookup of a benchmark task view (``benchmark_data.task.Task``, from
        ``Benchmark.task(space, dataset, hp=...)``): its ``final`` values under ``final_hp`` and
        ranks, its feedback at the search recipe's last epoch (``search_valid``), and its
        surrogate masks."""
        lookup = cls(final=np.asarray(task.final, dtype=np.float64),
                     search_valid=np.asarray(task.search_valid, dtype=np.float64),
                     final_hp=int(task.final_hp), search_hp=int(task.feedback_hp), dataset=task.dataset,
                     surrogate_final=np.asarray(task.surrogate_final, dtype=bool),
                     surrogate_feedback=np.asarray(task.surrogate_feedback, dtype=bool),
                     surrogate_model=task.surrogate_model)
        lookup.__dict__["rank"] = task.final_rank  # the task's ranks, not computed again
        return lookup

    @functools.cached_property
    def rank(self) -> np.ndarray:
        from benchmark_data.task import rank_descending  # the task view's one ranking rule

        return rank_descending(self.final)

    def untrained(self, arch_index: int) -> bool:
        """Whether the table lacks a trained value of ``arch_index`` (a gap or a prediction) for the
        final value or the feedback: what ``--train-missing`` trains."""
        predicted = any(mask is not None and bool(mask[arch_index])
                        for mask in (self.surrogate_final, self.surrogate_feedback))
        return predicted or bool(np.isnan(self.final[arch_index]) or np.isnan(self.search_valid[arch_index]))

    def figures(self, arch_index: int) -> dict[str, float | bool]:
        def predicted(mask):
            return mask is not None and bool(mask[arch_index])

        return {"test_acc": float(self.final[arch_index]), "valid_acc_search_hp": float(self.search_valid[arch_index]),
                "rank": float(self.rank[arch_index]), "final_hp": self.final_hp, "search_hp": self.search_hp,
                "test_acc_surrogate": predicted(self.surrogate_final),
                "feedback_surrogate": predicted(self.surrogate_feedback)}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
