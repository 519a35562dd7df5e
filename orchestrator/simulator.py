"""Replay a tabular benchmark with a simulated clock: the engine behind `orchestrate.py`.

An event queue over W simulated workers. Evaluating architecture ``a`` to epoch ``e`` is charged
NATS-Bench's time cost (``benchmark_data.task.nats_time_cost``: the recorded training time of
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
from dataclasses import dataclass

import numpy as np

from benchmark_data.task import FINAL_HP as FINAL_HP
from benchmark_data.task import Task
from spaces import UserError

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


# The task view moved to benchmark_data.task (one place for the feedback dataset, the role
# columns and the time-cost rule); these names stay while callers move to ``bench.task(...)``.
SimTable = Task


def run_search(table: Task, searcher, budget: Budget, *, workers: int = 1, seed: int = 0,
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
