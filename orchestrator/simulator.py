"""Replay a tabular benchmark with a simulated clock: the engine behind `orchestrate.py`.

An event queue over W simulated workers. Evaluating architecture ``a`` to epoch ``e`` is charged
the recorded training time of epochs 1..e plus one evaluation, and answers the recorded
validation accuracy at ``e`` under the search recipe (NATS-Bench's ``simulate_train_eval``). Events
are ordered by (finish time, insertion counter), so simultaneous finishes always come out in the
same order and the same seed gives the same trajectory on any machine. The searcher's own compute
is *not* charged to the simulated clock (that would make results machine-dependent); it is
measured and logged in its own column instead.

At every finished evaluation the trajectory records the architecture the searcher believes best
and that architecture's test accuracy under the final recipe — NATS-Bench's "test accuracy of the
searched architecture over time".
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from spaces import CategoricalSpace, UserError, get_space

FINAL_HP = {"tss": 200, "sss": 90}  # NATS-Bench's reporting recipes


@dataclass(frozen=True)
class Budget:
    """A search budget: simulated seconds of recorded training, or a number of evaluations."""

    seconds: float | None = None
    evaluations: int | None = None

    def __str__(self) -> str:
        return f"{self.evaluations} evaluations" if self.evaluations is not None else f"{self.seconds:g} s"


def parse_budget(text: str | float | int) -> Budget:
    """'2e4s', '20000', '30m', '5.5h' (simulated time) or '150ev' (evaluations)."""
    raw = str(text).strip().lower()
    units = {"ev": None, "s": 1.0, "m": 60.0, "h": 3600.0}
    unit = next((u for u in units if raw.endswith(u) and raw[: -len(u)].strip()), "")
    number = raw[: -len(unit)].strip() if unit else raw
    try:
        value = float(number)
    except ValueError:
        raise UserError(f"cannot read the budget {text!r}; write simulated time like 2e4s, 20000, 30m or 5.5h, "
                        "or a number of evaluations like 150ev") from None
    if not np.isfinite(value) or value <= 0:
        raise UserError(f"the budget must be positive, got {text!r}")
    if unit == "ev":
        if value != int(value):
            raise UserError(f"an evaluation budget must be a whole number, got {text!r}")
        return Budget(evaluations=int(value))
    return Budget(seconds=value * units.get(unit or "s", 1.0))


@dataclass
class SimTable:
    """Everything a simulated search reads, as dense arrays indexed by the project arch index.

    ``feedback`` [archs, seeds, epochs] is what searchers see (validation accuracy of the search
    recipe); ``train_time`` [archs, seeds, epochs] the recorded time of each epoch; ``eval_time``
    [archs, seeds, epochs] the time of one evaluation; ``final`` [archs] the reported test accuracy
    (mean over seeds) under the final recipe. NaN marks gaps: a proposal without data counts as a
    failed evaluation that costs nothing.
    """

    space: CategoricalSpace
    dataset: str
    feedback: np.ndarray
    train_time: np.ndarray
    eval_time: np.ndarray
    final: np.ndarray
    feedback_source: str = "valid_acc"
    feedback_hp: int = 12
    final_source: str = "test_acc"
    final_hp: int = 200
    notes: list[str] = field(default_factory=list)
    has_time: bool = True

    def __post_init__(self) -> None:
        # Cumulative training time up to (and including) each epoch, and with it the cost of an
        # evaluation to each epoch, precomputed so that the event loop does two scalar lookups.
        self.cum_time = np.cumsum(np.nan_to_num(self.train_time, nan=0.0), axis=2, dtype=np.float64)
        self.cost = self.cum_time + np.nan_to_num(self.eval_time, nan=0.0)
        self.num_epochs = self.feedback.shape[2]
        self.num_seeds = self.feedback.shape[1]
        best = int(np.nanargmax(self.final))
        self.best_arch, self.best_final = best, float(self.final[best])

    @classmethod
    def from_benchmark(cls, bench, space: str, dataset: str, hp: int | None = None, *,
                       feedback: str = "valid_acc", final_hp: int | None = None,
                       final_metric: str = "test_acc") -> SimTable:
        """Pick the feedback and final recipes from what a store holds, and say which were used."""
        sp = get_space(space)
        datasets = bench.datasets(space)
        if dataset not in datasets:
            raise UserError(f"the benchmark at {bench.root} has no dataset {dataset!r} for space {space}; "
                            f"it has: {', '.join(datasets) or 'none'}")
        # Like NATS-Bench, a search on cifar10 reads its feedback from the cifar10-valid training.
        search_ds = f"{dataset}-valid" if f"{dataset}-valid" in datasets else dataset
        notes = []
        hps = bench.hps(space, search_ds)
        if hp is None:
            hp = 12 if 12 in hps else min(hps)
        if hp not in hps:
            raise UserError(f"the benchmark has no hp={hp} recipe for {space}/{search_ds}; it has hp in {sorted(hps)}")
        fb = bench.curve(space, search_ds, hp, feedback).values
        if np.isnan(fb).all() and feedback == "valid_acc":
            fb = bench.curve(space, search_ds, hp, "test_acc").values
            feedback = "test_acc"
            notes.append(f"{space}/{search_ds} has no validation split: feedback is test accuracy")
        train_time = bench.curve(space, search_ds, hp, "epoch_time_s").values
        eval_time = bench.curve(space, search_ds, hp, "eval_time_s").values
        has_time = not np.isnan(train_time).all()
        final_hps = bench.hps(space, dataset)
        if final_hp is None:
            final_hp = FINAL_HP.get(space)
            if final_hp not in final_hps:
                final_hp = _longest_complete_recipe(bench, space, dataset, final_hps, final_metric)
                notes.append(f"no hp={FINAL_HP.get(space)} recipe for {space}/{dataset}: the final value is "
                             f"{final_metric} under hp={final_hp}, the longest recipe covering every architecture")
        if final_hp not in final_hps:
            raise UserError(f"the benchmark has no hp={final_hp} recipe for {space}/{dataset}; it has {sorted(final_hps)}")
        fin = bench.curve(space, dataset, final_hp, final_metric).values[:, :, -1]
        with np.errstate(all="ignore"):
            final = np.nanmean(fin, axis=1) if fin.shape[1] else np.full(sp.size, np.nan)
        return cls(sp, dataset, fb, train_time, eval_time, final.astype(np.float32), feedback, hp,
                   final_metric, final_hp, notes, has_time)

    def evaluate(self, arch: int, epoch: int, seed: int) -> tuple[float, float]:
        """(feedback, simulated cost in seconds) of training ``arch`` to ``epoch`` (1-based)."""
        e = min(max(epoch, 1), self.num_epochs) - 1
        return float(self.feedback[arch, seed, e]), float(self.cost[arch, seed, e])


def _longest_complete_recipe(bench, space: str, dataset: str, hps, metric: str) -> int:
    for hp in sorted(hps, reverse=True):
        final = bench.curve(space, dataset, hp, metric).values[:, :, -1]
        if not np.isnan(final).all(axis=1).any():
            return hp
    raise UserError(f"no recipe of {space}/{dataset} covers every architecture with {metric}; "
                    "pass --final-hp to choose one explicitly")


def run_search(table: SimTable, searcher, budget: Budget, *, workers: int = 1, seed: int = 0,
               max_evaluations: int | None = None, on_progress=None) -> dict[str, np.ndarray]:
    """One simulated search; returns the trajectory as columns (one entry per finished evaluation).

    The run stops when the next evaluation to finish would pass the time budget (it is never told
    to the searcher), when the evaluation budget is reached, or when the searcher is finished.
    ``seed`` draws which recorded training seed answers each query (as NATS-Bench's is_random).
    ``on_progress(sim_time_s, evaluations)`` is called every 256 evaluations (for progress bars).
    """
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if budget.seconds is not None and not table.has_time:
        raise UserError("this benchmark records no training times; use an evaluation budget such as 150ev")
    rng = np.random.default_rng([seed, 0x5EED])
    space = table.space
    limit_s = budget.seconds if budget.seconds is not None else np.inf
    limit_n = budget.evaluations if budget.evaluations is not None else (max_evaluations or np.iinfo(np.int64).max)
    cols: dict[str, list] = {k: [] for k in ("event", "sim_time_s", "arch_index", "fidelity", "feedback",
                                             "best_arch_index", "best_test_acc", "searcher_time_s", "wall_time_s")}
    heap: list = []
    counter = 0
    now = 0.0
    searcher_s = 0.0
    started = time.perf_counter()
    finished = False
    best_cfg, best_arch = None, -1
    while True:
        # Fill free workers; None means "nothing to propose until a result comes back".
        while not finished and len(heap) < workers and counter < limit_n:
            t0 = time.perf_counter()
            trial_id = str(counter)
            cfg = searcher.ask(trial_id)
            searcher_s += time.perf_counter() - t0
            if cfg is None:
                break
            if cfg is getattr(searcher, "FINISHED", object()) or isinstance(cfg, str):
                finished = True
                break
            fidelity = int(cfg.get("fidelity", table.num_epochs))
            arch = space.config_to_index({d: cfg[d] for d in space.decisions})
            s = int(rng.integers(table.num_seeds)) if table.num_seeds > 1 else 0
            value, cost = table.evaluate(arch, fidelity, s)
            if np.isnan(value):
                cost = 0.0  # no data for this architecture: a failed evaluation, never charged
            heapq.heappush(heap, (now + cost, counter, trial_id, arch, fidelity, value))
            counter += 1
        if not heap:
            if not finished and counter < limit_n and workers > 0:
                raise UserError(f"searcher {type(searcher).__name__} proposed nothing while no evaluation "
                                "was running; it cannot make progress")
            break
        done_at, _, trial_id, arch, fidelity, value = heapq.heappop(heap)
        if done_at > limit_s:
            break
        now = done_at
        ok = not np.isnan(value)
        t0 = time.perf_counter()
        searcher.tell(trial_id, value if ok else None, "ok" if ok else "error", fidelity)
        cfg = searcher.best()
        searcher_s += time.perf_counter() - t0
        if cfg is not None and cfg is not best_cfg:
            best_cfg, best_arch = cfg, space.config_to_index({d: cfg[d] for d in space.decisions})
        cols["event"].append(len(cols["event"]))
        cols["sim_time_s"].append(now)
        cols["arch_index"].append(arch)
        cols["fidelity"].append(fidelity)
        cols["feedback"].append(value)
        cols["best_arch_index"].append(best_arch)
        cols["best_test_acc"].append(float(table.final[best_arch]) if best_arch >= 0 else np.nan)
        cols["searcher_time_s"].append(searcher_s)
        cols["wall_time_s"].append(time.perf_counter() - started)
        if on_progress is not None and len(cols["event"]) % 256 == 0:
            on_progress(now, len(cols["event"]))
        if len(cols["event"]) >= limit_n:
            break
    return {k: np.asarray(v) for k, v in cols.items()}
