"""Replay a tabular benchmark with a simulated clock: the engine behind `orchestrate.py`.

An event queue over W simulated workers. Evaluating architecture ``a`` to epoch ``e`` is charged
NATS-Bench's time cost (``benchmark_data.reader.nats_time_cost``: the recorded training time of
epochs 1..e plus the mean validation-pass time over 1..e) and answers the recorded validation
accuracy at ``e`` under the search recipe, from one training seed drawn among the seeds that
architecture was trained with (NATS-Bench's ``simulate_train_eval(..., is_random=True)``). Events
are ordered by (finish time, insertion counter), so simultaneous finishes always come out in the
same order and the same seed gives the same trajectory on any machine. The searcher's own compute
is *not* charged to the simulated clock (that would make results machine-dependent); it is
measured and logged in its own column instead.

A time-budgeted run goes on until the simulated clock passes the budget, as NATS-Bench's
scripts do (``while total_time < time_budget``: the last evaluation is the first to end past
it); reports then interpolate the accuracy *at* the budget (``orchestrator.protocol``). At every
finished evaluation the trajectory records the incumbent and its test accuracy under the final
recipe. The incumbent is, as in NATS-Bench's published trajectories, the architecture with the
best feedback over all evaluations so far (for BOHB that mixes fidelities); ``incumbent=
"searcher"`` records the searcher's own belief instead (``Searcher.best()``: the best at the
highest fidelity reached).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from benchmark_data.reader import FEEDBACK_DATASET, nats_time_cost
from spaces import CategoricalSpace, UserError, get_space

FINAL_HP = {"tss": 200, "sss": 90}  # NATS-Bench's reporting recipes
INCUMBENTS = ("nats", "searcher")


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
    feedback_dataset: str | None = None  # where feedback and times come from (None: ``dataset``)

    def __post_init__(self) -> None:
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

    @property
    def min_fidelity(self) -> int:
        """The shortest recorded training a searcher may ask for (1 on a table with every epoch;
        the recipe's length where only the last epoch was recorded, e.g. an imported table)."""
        return int(self.recorded_epochs[0])

    def draw_seed(self, arch: int, rng: np.random.Generator) -> int | None:
        """A seed position among those ``arch`` was trained with; None when it has none."""
        if self.num_seeds == 1:
            return 0 if self.seeds_present[arch] else None
        n = int(self.seeds_present[arch])
        return int(self.seed_order[arch, rng.integers(n)]) if n else None

    @classmethod
    def from_benchmark(cls, bench, space: str, dataset: str, hp: int | None = None, *,
                       feedback: str = "valid_acc", final_hp: int | None = None,
                       final_metric: str = "test_acc") -> SimTable:
        """Pick the feedback and final recipes from what a store holds, and say which were used.

        A recipe that does not cover the whole space is refused with its coverage: a search on it
        would get no feedback (or no final value) for the missing cells, and its summary would be
        NaN or silently biased towards the covered ones.
        """
        sp = get_space(space)
        datasets = bench.datasets(space)
        if dataset not in datasets:
            raise UserError(f"the benchmark at {bench.root} has no dataset {dataset!r} for space {space}; "
                            f"it has: {', '.join(datasets) or 'none'}")
        # As NATS-Bench's simulate_train_eval: a cifar10 search reads the cifar10-valid training.
        alt = FEEDBACK_DATASET.get(dataset)
        search_ds = alt if alt in datasets else dataset
        notes = []
        if hp is None:
            hps = bench.hps(space, search_ds)
            hp = 12 if 12 in hps else min(hps)
        bench.num_epochs(space, search_ds, hp)  # a missing or damaged recipe: its own clear error
        fb = bench.curve(space, search_ds, hp, feedback).values
        if np.isnan(fb).all() and feedback == "valid_acc":
            fb = bench.curve(space, search_ds, hp, "test_acc").values
            feedback = "test_acc"
            notes.append(f"{space}/{search_ds} has no validation split: feedback is test accuracy")
        _check_coverage(fb, f"{space}/{search_ds} hp={hp}", "--hp", bench.hps(space, search_ds),
                        lambda h: bench.curve(space, search_ds, h, feedback).values)
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
        bench.num_epochs(space, dataset, final_hp)
        fin = bench.curve(space, dataset, final_hp, final_metric).values[:, :, -1]
        _check_coverage(fin[:, :, None], f"{space}/{dataset} hp={final_hp} ({final_metric})", "--final-hp",
                        final_hps, lambda h: bench.curve(space, dataset, h, final_metric).values[:, :, -1:])
        with np.errstate(all="ignore"):
            final = np.nanmean(fin, axis=1)
        return cls(sp, dataset, fb, train_time, eval_time, final.astype(np.float32), feedback, hp,
                   final_metric, final_hp, notes, has_time, search_ds)

    def evaluate(self, arch: int, epoch: int, seed: int) -> tuple[float, float]:
        """(feedback, simulated cost in seconds) of training ``arch`` to ``epoch`` (1-based)."""
        e = min(max(epoch, 1), self.num_epochs) - 1
        return float(self.feedback[arch, seed, e]), float(self.cost[arch, seed, e])


def _covered(values: np.ndarray) -> np.ndarray:
    """Per architecture: whether any seed has any value ([archs, seeds, epochs] in)."""
    return ~np.isnan(values).all(axis=(1, 2))


def _check_coverage(values: np.ndarray, what: str, flag: str, hps, values_of) -> None:
    covered = _covered(values)
    if covered.all():
        return
    complete = [h for h in sorted(hps) if _covered(values_of(h)).all()]
    raise UserError(f"{what} covers {int(covered.sum()):,} of {covered.size:,} architectures "
                    f"({100 * covered.mean():.1f} %): a search would get no value for the rest. "
                    + (f"Choose a recipe that covers the space ({flag} {' or '.join(map(str, complete))})."
                       if complete else "No recipe of this store covers the space."))


def _longest_complete_recipe(bench, space: str, dataset: str, hps, metric: str) -> int:
    for hp in sorted(hps, reverse=True):
        if _covered(bench.curve(space, dataset, hp, metric).values[:, :, -1:]).all():
            return hp
    raise UserError(f"no recipe of {space}/{dataset} covers every architecture with {metric}; "
                    "pass --final-hp to choose one explicitly")


def run_search(table: SimTable, searcher, budget: Budget, *, workers: int = 1, seed: int = 0,
               max_evaluations: int | None = None, on_progress=None,
               incumbent: str = "nats", past_budget: bool = False) -> dict[str, np.ndarray]:
    """One simulated search; returns the trajectory as columns (one entry per finished evaluation).

    A time-budgeted run starts evaluations while the clock is below the budget and ends with the
    first evaluation that finishes at or past it (NATS-Bench's ``while total < budget`` loop;
    with W workers, evaluations still running then are dropped). An evaluation budget ends the
    run at that many finished evaluations; a finished searcher ends it too.
    ``seed`` draws which recorded training seed answers each query (as NATS-Bench's is_random).
    ``incumbent``: "nats" (best feedback over all evaluations) or "searcher" (``best()``).
    ``past_budget``: go on past the budget until no later event can be one of the two events
    nearest to it, i.e. until the reported, interpolated value is final (NATS-Bench's bohb.py runs
    its 300 iterations whatever the budget, and draw-table.py interpolates between the two
    events nearest the budget, which may both lie after it).
    ``on_progress(sim_time_s, evaluations)`` is called every 256 evaluations (for progress bars).
    """
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if incumbent not in INCUMBENTS:
        raise UserError(f"incumbent must be one of {INCUMBENTS}, got {incumbent!r}")
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
    best_arch, best_value = -1, -np.inf
    nearest = [np.inf, np.inf]  # the two smallest |t - budget| so far (past_budget only)
    while True:
        # Fill free workers; None means "nothing to propose until a result comes back".
        while not finished and len(heap) < workers and counter < limit_n and (now < limit_s or past_budget):
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
            s = table.draw_seed(arch, rng)
            value, cost = (np.nan, 0.0) if s is None else table.evaluate(arch, fidelity, s)
            if np.isnan(value):
                cost = 0.0  # no data for this architecture: a failed evaluation, never charged
            heapq.heappush(heap, (now + cost, counter, trial_id, arch, fidelity, value))
            counter += 1
        if not heap:
            if not finished and counter < limit_n and (now < limit_s or past_budget):
                raise UserError(f"searcher {type(searcher).__name__} proposed nothing while no evaluation "
                                "was running; it cannot make progress")
            break
        done_at, _, trial_id, arch, fidelity, value = heapq.heappop(heap)
        if past_budget and done_at - limit_s >= nearest[1]:
            break  # this and every later event is farther from the budget than two recorded ones
        now = done_at
        if past_budget:
            nearest = sorted([*nearest, abs(now - limit_s)])[:2]
        ok = not np.isnan(value)
        t0 = time.perf_counter()
        searcher.tell(trial_id, value if ok else None, "ok" if ok else "error", fidelity)
        if incumbent == "searcher":
            cfg = searcher.best()
            if cfg is not None:
                best_arch = space.config_to_index({d: cfg[d] for d in space.decisions})
        elif ok and value > best_value:  # ties keep the earlier, as max() over a history does
            best_arch, best_value = arch, value
        searcher_s += time.perf_counter() - t0
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
        if len(cols["event"]) >= limit_n or (now >= limit_s and not past_budget):
            break
    return {k: np.asarray(v) for k, v in cols.items()}
