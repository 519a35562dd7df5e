"""The benchmark task view: one (space, dataset, recipe) of a store as a search reads it.

``Benchmark.task(space, dataset, hp)`` returns a ``Task``: dense arrays indexed by the project
arch index of what a searcher sees (``feedback``: the objective column under the search recipe,
per seed and epoch), what an evaluation costs (``cost``, by the one time-cost rule below), and
what a result is reported as (``final``: the final metric under the reporting recipe, the mean
over seeds). The simulator, one-shot scoring and the NATS-Bench facade all read through this
module, so that its rules exist once:

* the time-cost rule (``nats_time_cost``, NATS-Bench's);
* the feedback dataset (``feedback_dataset``: a ``cifar10`` search reads ``cifar10-valid``'s
  training, as NATS-Bench's ``simulate_train_eval``);
* dataset inference (``choose_dataset``);
* which columns play which role: the ``objective_column`` / ``time_column`` /
  ``fidelity_column`` that ``schema.provenance`` writes into every file
  (``Benchmark.roles``), ``schema.ROLE_COLUMNS`` where a file names none;
* coverage: a recipe that does not cover the whole space is refused with its coverage and the
  command that completes it (``python -m benchmark_data surrogate``), since a search on it would
  get no value for the missing cells and its summary would be NaN or silently biased towards the
  covered ones; ``allow_gaps=True`` (``--allow-gaps``) searches it anyway, with a note: a
  proposal without data is a failed evaluation that costs nothing;
* surrogate rows: where the reader merged a surrogate model's predictions in, the task says so
  (``surrogate_feedback`` / ``surrogate_final`` per architecture, ``surrogate_model``, a note
  with the counts and the cross-validation figures the model's files record).

This module imports only NumPy, ``spaces`` and ``schema``; the reader imports it (not the
other way round), and ``Task.from_benchmark`` takes the ``Benchmark`` it is given.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spaces import CategoricalSpace, get_space
from spaces.errors import UserError

from . import schema as S

# The dataset whose training NATS-Bench uses as a search's feedback: cifar10 is trained on all
# 50K training images and has no validation split, cifar10-valid on 25K, validated on the rest.
FEEDBACK_DATASET = {"cifar10": "cifar10-valid"}
FINAL_HP = {"tss": 200, "sss": 90}  # NATS-Bench's reporting recipes
SEARCH_HP = 12  # NATS-Bench's search recipe, used when a store has it and none is asked for
DEFAULT_DATASET = "cifar10"  # inferred in a store of several datasets, as NATS-Bench's scripts
EVAL_TIME_COLUMN = "eval_time_s"  # one validation pass; the time-cost rule averages it


def nats_time_cost(epoch_time_s: np.ndarray, eval_time_s: np.ndarray) -> np.ndarray:
    """The one time-cost rule (NATS-Bench's): seconds charged for training to epoch e and
    evaluating once, for arrays whose last axis is the epoch (1..n).

    nats_bench's ``simulate_train_eval`` charges ``train-all-time + valid-per-time``
    (api_utils.py, ``get_more_info``): the training times of epochs 1..e plus the validation
    pass's *mean* time over epochs 1..e (``valid_info["all_time"] / total``). The reader, the
    facade and the simulator all charge through this function. float64, since the simulator sums
    these; NaN where a time is missing.
    """
    train = np.cumsum(epoch_time_s, axis=-1, dtype=np.float64)
    evals = np.cumsum(eval_time_s, axis=-1, dtype=np.float64)
    return train + evals / np.arange(1, np.shape(epoch_time_s)[-1] + 1)


def feedback_dataset(dataset: str, available: Collection[str] | None = None) -> str:
    """The dataset whose training a search on ``dataset`` reads its feedback and times from.

    ``cifar10`` -> ``cifar10-valid`` (NATS-Bench's ``simulate_train_eval``); with ``available``
    (the datasets a store has results for), only when the twin is among them, else ``dataset``
    itself (e.g. an imported table of cifar10 test accuracies alone). Without ``available``: the
    mapping itself, e.g. which split a one-shot search on cifar10 trains on.
    """
    twin = FEEDBACK_DATASET.get(dataset)
    if twin is None or (available is not None and twin not in available):
        return dataset
    return twin


def is_feedback_twin(dataset: str) -> bool:
    """Whether ``dataset`` is another dataset's feedback twin (cifar10-valid): a split that a
    search on its partner reads, not a target of its own in NATS-Bench's API."""
    return dataset in FEEDBACK_DATASET.values()


def choose_dataset(datasets: Sequence[str], requested: str | None = None, *,
                   where: str = "the benchmark", space: str | None = None) -> str:
    """``requested`` if ``datasets`` has it; else ``cifar10`` when present (NATS-Bench's main
    dataset); else the only dataset, a feedback twin of a present dataset (cifar10-valid beside
    cifar10) not counting. UserError listing them when ``requested`` is absent or the choice is
    ambiguous."""
    of_space = f" for space {space}" if space else ""
    listed = ", ".join(datasets) or "none"
    if requested is not None:
        if requested in datasets:
            return requested
        raise UserError(f"{where} has no dataset {requested!r}{of_space}; it has: {listed}")
    twins = {FEEDBACK_DATASET[d] for d in datasets if d in FEEDBACK_DATASET}
    candidates = [d for d in datasets if d not in twins]
    if DEFAULT_DATASET in candidates:
        return DEFAULT_DATASET
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UserError(f"{where} has no dataset{of_space}; build or import one first")
    raise UserError(f"{where} holds several datasets{of_space} ({listed}); choose one with "
                    "--dataset (dataset= in Python)")


def roles_of(metas: Sequence[tuple[Any, dict[str, str]]], table: str = "epochs",
             what: str = "", keys: Collection[str] | None = None) -> dict[str, str]:
    """Which columns play the roles ``keys`` (default: objective / time / fidelity), from the
    files' metadata.

    ``metas``: (file, decoded key/value metadata) per file of one partition. A compacted file's
    ``provenance_variants`` counts variant by variant. A role no file names (old files, or
    rows written without provenance) falls back to ``schema.ROLE_COLUMNS``; files that name two
    different columns for one asked role are a UserError, since nothing says which to believe.
    """
    import json

    named: dict[str, dict[str, Any]] = {}
    for path, meta in metas:
        try:
            variants = json.loads(meta.get("provenance_variants", "[]")) or [meta]
        except ValueError:
            variants = [meta]
        for variant in variants:
            for key in S.ROLE_COLUMNS[table]:
                column = variant.get(key, "")
                if column:
                    named.setdefault(key, {}).setdefault(column, path)
    roles = {}
    for key, default in S.ROLE_COLUMNS[table].items():
        if keys is not None and key not in keys:
            continue
        columns = named.get(key, {})
        if len(columns) > 1:
            listed = "; ".join(f"{c} (e.g. {p})" for c, p in columns.items())
            raise UserError(f"the files of {what or table} disagree on {key}: {listed}; pass the "
                            "column explicitly (e.g. feedback=) or rebuild the odd files")
        roles[key] = next(iter(columns), default)
    return roles


@dataclass
class Task:
    """Everything a search on a tabular benchmark reads, as dense arrays indexed by the project
    arch index.

    ``feedback`` [archs, seeds, epochs] is what searchers see (the objective column, normally
    validation accuracy, under the search recipe ``feedback_hp`` of ``feedback_dataset``);
    ``train_time`` [archs, seeds, epochs] the recorded time of each epoch (the time column);
    ``eval_time`` [archs, seeds, epochs] the time of one evaluation; ``final`` [archs] the
    reported value (``final_source``, mean over seeds) under the final recipe ``final_hp`` of
    ``dataset``. NaN marks gaps: a proposal without data counts as a failed evaluation that costs
    nothing. ``surrogate_feedback`` / ``surrogate_final`` [archs] mark the architectures whose
    feedback (and times) / final value are a surrogate model's predictions (all False without
    surrogate rows); ``surrogate_model`` names the model, ``surrogate_cv`` holds the
    cross-validation figures its files record (decoded JSON). Derived arrays are computed in
    ``__post_init__``; call it again after editing the arrays in place (tests do).
    """

    space: CategoricalSpace
    dataset: str
    feedback: np.ndarray
    train_time: np.ndarray
    eval_time: np.ndarray
    final: np.ndarray
    feedback_source: str = "valid_acc"
    feedback_hp: int = SEARCH_HP
    final_source: str = "test_acc"
    final_hp: int = 200
    notes: list[str] = field(default_factory=list)
    has_time: bool = True
    feedback_dataset: str | None = None  # where feedback and times come from (None: ``dataset``)
    time_source: str = "epoch_time_s"
    fidelity_source: str = "epoch"  # the epochs axis: the only fidelity the dense arrays have
    surrogate_feedback: np.ndarray | None = None  # None: no surrogate rows (all False)
    surrogate_final: np.ndarray | None = None
    surrogate_model: str | None = None
    surrogate_cv: Any = None

    def __post_init__(self) -> None:
        for name in ("surrogate_feedback", "surrogate_final"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(self.space.size, bool))
        # What an evaluation to each epoch costs, precomputed with the one time-cost rule so
        # that the event loop does two scalar lookups. A missing time is charged nothing.
        self.cost = np.nan_to_num(nats_time_cost(self.train_time, self.eval_time), nan=0.0)
        self.feedback_dataset = self.feedback_dataset or self.dataset
        self.num_epochs = self.feedback.shape[2]
        self.num_seeds = self.feedback.shape[1]
        # Seeds an architecture was trained with, present ones first: a query draws among them
        # (a table where some cells lack a seed must not answer with that seed's gap).
        present = ~np.isnan(self.feedback).all(axis=2)
        self.seeds_present = present.sum(axis=1).astype(np.int64)
        self.seed_order = np.argsort(~present, axis=1, kind="stable")
        # Epochs with any recorded feedback: the fidelities a multi-fidelity searcher may ask for.
        self.recorded_epochs = np.flatnonzero(~np.isnan(self.feedback).all(axis=(0, 1))) + 1
        if not self.recorded_epochs.size:
            raise UserError(f"the {self.space.name}/{self.dataset} table has no {self.feedback_source} "
                            "value at all; a search needs feedback")
        if np.isnan(self.final).all():
            raise UserError(f"the {self.space.name}/{self.dataset} table has no {self.final_source} value "
                            f"at hp={self.final_hp}; nothing to report")
        best = int(np.nanargmax(self.final))
        self.best_arch, self.best_final = best, float(self.final[best])
        self._derived: dict[str, Any] = {}  # lazily computed from the arrays above

    @property
    def uses_surrogate(self) -> bool:
        """Whether any feedback or final value of this task is a surrogate prediction."""
        return bool(self.surrogate_feedback.any() or self.surrogate_final.any())

    @property
    def min_fidelity(self) -> int:
        """The shortest recorded training a searcher may ask for (1 on a table with every epoch;
        the recipe's length where only the last epoch was recorded, e.g. an imported table)."""
        return int(self.recorded_epochs[0])

    @property
    def has_curves(self) -> bool:
        """Whether per-epoch learning curves are recorded (more than one epoch with feedback):
        what a stopping scheduler (ASHA, HyperBand) needs to stop a training early."""
        return self.recorded_epochs.size > 1

    def draw_seed(self, arch: int, rng: np.random.Generator) -> int | None:
        """A seed position among those ``arch`` was trained with; None when it has none."""
        if self.num_seeds == 1:
            return 0 if self.seeds_present[arch] else None
        n = int(self.seeds_present[arch])
        return int(self.seed_order[arch, rng.integers(n)]) if n else None

    def evaluate(self, arch: int, epoch: int, seed: int) -> tuple[float, float]:
        """(feedback, simulated cost in seconds) of training ``arch`` to ``epoch`` (1-based)."""
        e = min(max(epoch, 1), self.num_epochs) - 1
        return float(self.feedback[arch, seed, e]), float(self.cost[arch, seed, e])

    # --- what one-shot scoring and the regret floor read ---------------------------------------
    @property
    def search_valid(self) -> np.ndarray:
        """[archs] the feedback at the search recipe's last epoch, mean over the seeds each arch
        was trained with (NaN where it has none): the architecture's value as searchers see it."""
        if "search_valid" not in self._derived:
            with warnings.catch_warnings():  # an arch without feedback stays NaN, silently
                warnings.simplefilter("ignore", RuntimeWarning)
                self._derived["search_valid"] = np.nanmean(self.feedback[:, :, -1], axis=1)
        return self._derived["search_valid"]

    @property
    def final_rank(self) -> np.ndarray:
        """[archs] float64 rank of each architecture by ``final`` among all cells: 1 for the best,
        ties share the better rank, NaN where the final value is unknown."""
        if "final_rank" not in self._derived:
            self._derived["final_rank"] = rank_descending(self.final)
        return self._derived["final_rank"]

    def rank(self, arch_index: Any) -> float | np.ndarray:
        """``final_rank`` of one architecture (a float) or of an array of them (an array)."""
        out = self.final_rank[np.asarray(arch_index)]
        return float(out) if np.ndim(out) == 0 else out

    @property
    def best_by_feedback(self) -> tuple[int, float]:
        """(arch, final value) of the cell the searchers' own feedback ranks best
        (``search_valid``; ties to the smaller index): the regret floor of a search that finds
        the best cell by its feedback, since no amount of search does better by that measure."""
        if "best_by_feedback" not in self._derived:
            valid = self.search_valid
            if np.isnan(valid).all():
                raise UserError(f"the {self.space.name}/{self.feedback_dataset} table has no "
                                f"{self.feedback_source} at epoch {self.num_epochs} of hp="
                                f"{self.feedback_hp}; no cell is best by feedback")
            arch = int(np.nanargmax(valid))
            self._derived["best_by_feedback"] = (arch, float(self.final[arch]))
        return self._derived["best_by_feedback"]

    # --- building one from a store ------------------------------------------------------------
    @classmethod
    def from_benchmark(cls, bench, space: str, dataset: str | None = None, hp: int | None = None, *,
                       feedback: str | None = None, final_hp: int | None = None,
                       final_metric: str = "test_acc", allow_gaps: bool = False) -> Task:
        """Pick the dataset, the feedback and final recipes and the role columns from what a
        store holds, and say in ``notes`` which were used where that was not asked for.

        ``dataset`` None: inferred (``choose_dataset``). ``hp`` None: hp=12 when the feedback
        dataset has it, else its shortest recipe. ``feedback`` None: the files'
        ``objective_column``. ``final_hp`` None: NATS-Bench's reporting recipe (``FINAL_HP``),
        else the longest recipe covering the whole space. A recipe that covers only part of the
        space is refused (its coverage, the surrogate command that completes it) unless
        ``allow_gaps``, which keeps the gaps (noted; ``final_hp`` None then falls back to the
        longest recipe with data). Surrogate rows the reader merged in are marked and noted.
        Uncached; ``Benchmark.task`` caches.
        """
        if not isinstance(allow_gaps, bool):
            raise UserError(f"allow_gaps must be True or False, got {allow_gaps!r}")
        dataset = bench.choose_dataset(space, dataset)
        sp = get_space(space)
        search_ds = bench.feedback_dataset(space, dataset)
        notes = []
        if hp is None:
            hps = bench.hps(space, search_ds)
            if not hps:
                raise UserError(f"{space}/{search_ds} has no training results (only architecture "
                                "costs); a search needs epochs rows")
            hp = SEARCH_HP if SEARCH_HP in hps else min(hps)
        bench.num_epochs(space, search_ds, hp)  # a missing or damaged recipe: its own clear error
        asked = ("fidelity_column", "time_column") + (("objective_column",) if feedback is None else ())
        roles = bench.roles(space, search_ds, hp, keys=asked)
        where = f"{space}/{search_ds} hp={hp}"
        if roles["fidelity_column"] != "epoch":
            raise UserError(f"the files of {where} name fidelity_column "
                            f"{roles['fidelity_column']!r}; the reader lays training out by "
                            "epoch only, so a search cannot use another fidelity")
        if feedback is None:
            feedback = _metric_role(roles, "objective_column", where)
        time_column = _metric_role(roles, "time_column", where)
        fb_curve = bench.curve(space, search_ds, hp, feedback)
        if np.isnan(fb_curve.values).all() and feedback == "valid_acc":
            fb_curve = bench.curve(space, search_ds, hp, "test_acc")
            feedback = "test_acc"
            notes.append(f"{space}/{search_ds} has no validation split: feedback is test accuracy")
        fb = fb_curve.values
        gaps = _Gaps(bench, space, allow_gaps, notes)
        gaps.check(fb, search_ds, hp, "--hp", bench.hps(space, search_ds),
                   lambda h: bench.curve(space, search_ds, h, feedback).values)
        # A training that diverged is a failed evaluation, as live training tells its searcher
        # (its recorded accuracy is what broken weights score), not a result; checked for gaps
        # above as the row it is.
        diverged = bench.status_is(space, search_ds, hp, "diverged")
        if diverged.any():
            fb = np.where(diverged, np.nan, fb).astype(np.float32)
            notes.append(f"{int(diverged.any(axis=(1, 2)).sum()):,} architectures of {where} have diverged "
                         "trainings: evaluating one fails, as in a live search (charged nothing)")
        train_time = bench.curve(space, search_ds, hp, time_column).values
        eval_time = bench.curve(space, search_ds, hp, EVAL_TIME_COLUMN).values
        has_time = not np.isnan(train_time).all()
        final_hps = bench.hps(space, dataset)
        if final_hp is None:
            final_hp = FINAL_HP.get(space)
            if final_hp not in final_hps:
                final_hp, which = gaps.longest_recipe(dataset, final_hps, final_metric)
                notes.append(f"no hp={FINAL_HP.get(space)} recipe for {space}/{dataset}: the final value is "
                             f"{final_metric} under hp={final_hp}, {which}")
        bench.num_epochs(space, dataset, final_hp)
        fin_curve = bench.curve(space, dataset, final_hp, final_metric)
        fin = fin_curve.values[:, :, -1]
        gaps.check(fin[:, :, None], dataset, final_hp, "--final-hp", final_hps,
                   lambda h: bench.curve(space, dataset, h, final_metric).values[:, :, -1:],
                   what=f" ({final_metric})", needed=_covered(fb_curve.values))
        with warnings.catch_warnings():  # an arch without a final value stays NaN, silently
            warnings.simplefilter("ignore", RuntimeWarning)
            final = np.nanmean(fin, axis=1)
        info = (bench.surrogate_info(space, search_ds, hp) or bench.surrogate_info(space, dataset, final_hp)
                or {})
        model, cv = info.get("surrogate_model") or None, decode_cv(info)
        if fb_curve.surrogate.any() or fin_curve.surrogate.any():
            notes.append(f"surrogate: the feedback of {int(fb_curve.surrogate.sum()):,} of {sp.size:,} "
                         f"architectures ({space}/{search_ds} hp={hp}) and {int(fin_curve.surrogate.sum()):,} "
                         f"final values ({space}/{dataset} hp={final_hp}) are predictions, not trainings: "
                         f"{describe_surrogate(model, cv)}; --no-surrogate leaves them out")
        return cls(sp, dataset, fb, train_time, eval_time, final.astype(np.float32), feedback, hp,
                   final_metric, final_hp, notes, has_time, search_ds, time_column, "epoch",
                   fb_curve.surrogate, fin_curve.surrogate, model, cv)


def _metric_role(roles: dict[str, str], key: str, where: str) -> str:
    column = roles[key]
    if column not in S.EPOCH_METRICS:
        raise UserError(f"the files of {where} name {key} {column!r}, which is not a metric column "
                        f"({', '.join(S.EPOCH_METRICS)}); rewrite them with schema.provenance")
    return column


def rank_descending(values: np.ndarray) -> np.ndarray:
    """float64 rank of each value among the known ones: 1 for the largest, ties share the better
    rank, NaN where the value is NaN (NATS-Bench's rank of a cell among all cells)."""
    values = np.asarray(values, dtype=np.float64)
    known = np.sort(values[~np.isnan(values)])[::-1]
    rank = 1.0 + np.searchsorted(-known, -values, side="left")
    return np.where(np.isnan(values), np.nan, rank)


def _covered(values: np.ndarray) -> np.ndarray:
    """Per architecture: whether any seed has any value ([archs, seeds, epochs] in)."""
    return ~np.isnan(values).all(axis=(1, 2))


def _share(covered: np.ndarray) -> str:
    return f"{int(covered.sum()):,} of {covered.size:,} architectures ({100 * covered.mean():.1f} %)"


# What a proposal of an architecture without data becomes under allow_gaps (the simulator's rule).
GAP_RULE = "a proposal without data is a failed evaluation that costs nothing"


class _Gaps:
    """The coverage rule of one task: refuse a recipe that misses architectures, saying how to
    complete it, or (``allow_gaps``) keep it and note the coverage."""

    def __init__(self, bench, space: str, allow_gaps: bool, notes: list[str]):
        self.bench, self.space, self.allow_gaps, self.notes = bench, space, allow_gaps, notes

    def completion(self, dataset: str, hp: int) -> str:
        """How to complete (space, dataset, hp), or to search it as it is."""
        gaps = f"or pass --allow-gaps to search it as it is ({GAP_RULE})"
        if not self.bench.surrogate and self.bench.has_surrogate_rows(self.space, dataset, hp):
            return (f"The store holds surrogate predictions for {self.space}/{dataset} hp={hp}, left out "
                    f"here (--no-surrogate, surrogate=False): drop --no-surrogate to use them, {gaps}.")
        return (f"Complete it with a surrogate model's predictions: `python -m benchmark_data surrogate "
                f"--store {self.bench.root} --space {self.space} --dataset {dataset} --hp {hp}`, {gaps}.")

    def check(self, values: np.ndarray, dataset: str, hp: int, flag: str, hps,
              values_of: Callable[[int], np.ndarray], what: str = "",
              needed: np.ndarray | None = None) -> None:
        """Refuse ``values`` [archs, seeds, epochs] unless every architecture has one; with
        allow_gaps, note the coverage, or, for final values (``needed``: the architectures with
        feedback, which a search can end on), the ones among ``needed`` that lack one."""
        covered = _covered(values)
        if covered.all():
            return
        where = f"{self.space}/{dataset} hp={hp}{what}"
        if self.allow_gaps:
            lacking = None if needed is None else needed & ~covered
            if lacking is None:
                self.notes.append(f"{where} covers {_share(covered)}; --allow-gaps: {GAP_RULE}")
            elif lacking.any():
                self.notes.append(f"{where} has no value for {int(lacking.sum()):,} of the "
                                  f"{int(needed.sum()):,} architectures with feedback; --allow-gaps: an "
                                  "incumbent among them reports no final value (NaN)")
            return
        complete = [h for h in sorted(hps) if _covered(values_of(h)).all()]
        raise UserError(f"{where} covers {_share(covered)}: a search would get no value for the rest. "
                        + (f"Choose a recipe that covers the space ({flag} {' or '.join(map(str, complete))}), "
                           if complete else "No recipe of this store covers the space. ")
                        + self.completion(dataset, hp))

    def longest_recipe(self, dataset: str, hps, metric: str) -> tuple[int, str]:
        """The longest recipe covering every architecture with ``metric`` (else, with allow_gaps,
        the longest with any value), and the words that say which it is."""
        def last_epoch(hp: int) -> np.ndarray:
            return self.bench.curve(self.space, dataset, hp, metric).values[:, :, -1:]

        for hp in sorted(hps, reverse=True):
            if _covered(last_epoch(hp)).all():
                return hp, "the longest recipe covering every architecture"
        longest = max(hps)
        if self.allow_gaps:
            return longest, "the longest recipe with data (--allow-gaps)"
        raise UserError(f"no recipe of {self.space}/{dataset} covers every architecture with {metric}; "
                        f"pass --final-hp to choose one explicitly. {self.completion(dataset, longest)}")


# --- what a surrogate file says about its model -------------------------------------------------
def decode_cv(meta: Mapping[str, str] | None) -> Any:
    """The ``surrogate_cv`` JSON of a surrogate file's metadata, decoded; None when absent or not
    JSON."""
    try:
        return json.loads((meta or {}).get("surrogate_cv") or "null")
    except ValueError:
        return None


def cv_kendall(cv: Any, model: str | None = None) -> list[tuple[str, float]]:
    """The Kendall tau figures a surrogate file's cross-validation records, as (what, tau) pairs.

    The JSON is searched for numbers under a key naming Kendall's tau ("kendall_tau", "tau"),
    inside the entry of the model the predictions come from where it holds every candidate's:
    ``{"chosen": name, "candidates": [{"model": name, "test_acc": {"kendall_tau": ...}}, ...]}``
    (what ``python -m benchmark_data surrogate`` writes) or ``{name: {...}}``, the name being
    ``chosen`` or ``model``'s before " (". "what" is the rest of the key path ("test acc").
    """
    if isinstance(cv, dict):
        name = cv.get("chosen") or (model or "").split(" (")[0]
        entries = cv.get("candidates")
        if isinstance(entries, list):
            cv = next((e for e in entries if isinstance(e, dict) and e.get("model") == name), entries)
        elif isinstance(cv.get(name), dict):
            cv = cv[name]
    found: list[tuple[str, float]] = []

    def is_tau(part: str) -> bool:
        return "kendall" in part.lower() or part.lower() == "tau"

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, str(key)))
        elif isinstance(node, list):  # candidates: each under its model's name
            for i, value in enumerate(node):
                walk(value, (*path, str(value.get("model", i)) if isinstance(value, dict) else str(i)))
        elif isinstance(node, (int, float)) and not isinstance(node, bool) and any(map(is_tau, path)):
            words = [p.lower().replace("kendall", "").replace("tau", "") if is_tau(p) else p for p in path]
            found.append((" ".join(w.replace("_", " ").strip(" -") for w in words if w.strip("_ -")),
                          float(node)))

    walk(cv, ())
    return found


def describe_surrogate(model: str | None, cv: Any) -> str:
    """One line on a surrogate model: its name and the Kendall tau figures its CV recorded."""
    taus = cv_kendall(cv, model)
    figures = (", ".join(f"{tau:.2f} {what}".rstrip() for what, tau in taus[:4]) if taus else "")
    return (f"{model or 'an unnamed model'}, "
            + (f"CV Kendall tau {figures}" if figures else "no cross-validated Kendall tau recorded"))
