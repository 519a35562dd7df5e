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

With a stopping scheduler (``run_search(..., scheduler="asha" | "hyperband")``, or an object
from ``orchestrator.schedulers.make_sim_scheduler``) proposals become trials that train epoch by
epoch, each epoch charged its increment of the same time cost, and the scheduler decides after
every epoch whether a trial continues, pauses or stops, as Ray Tune's scheduler of that name
would: that loop, its rows (one per ended trial, fidelity = epochs trained) and its incumbent
are described in ``orchestrator.sim_trials``. It needs a table with feedback at every epoch.

Records at the boundary (``orchestrator.records``): a searcher's ``ask`` answer becomes a
``Suggestion``, the queue holds ``Event`` s, and the searcher is told an ``Observation``.
"""

from __future__ import annotations

import heapq
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmark_data.task import FINAL_HP as FINAL_HP
from benchmark_data.task import Task
from orchestrator.records import Event, Observation, to_suggestion
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
               max_evaluations: int | None = None, on_progress=None, incumbent: str = "nats",
               past_budget: bool = False, scheduler=None) -> dict[str, np.ndarray]:
    """One simulated search; returns the trajectory as columns (one entry per finished evaluation,
    or with a scheduler per ended trial): event, sim_time_s, arch_index, fidelity, feedback,
    best_arch_index, best_test_acc, searcher_time_s, wall_time_s.

    A time-budgeted run starts evaluations while the clock is below the budget and ends with the
    first evaluation that finishes at or past it (NATS-Bench's ``while total < budget`` loop;
    with W workers, evaluations still running then are dropped). An evaluation budget ends the
    run at that many finished evaluations (with a scheduler: ended trials); a finished searcher
    ends it too.
    ``seed`` draws which recorded training seed answers each query (as NATS-Bench's is_random).
    ``incumbent``: "nats" (best feedback over all evaluations) or "searcher" (``best()``).
    ``past_budget``: go on past the budget until no later event can be one of the two events
    nearest to it, i.e. until the reported, interpolated value is final (NATS-Bench's bohb.py runs
    its 300 iterations whatever the budget, and draw-table.py interpolates between the two
    events nearest the budget, which may both lie after it).
    ``scheduler``: None or "fifo" (every evaluation to its end), "asha" / "hyperband" (built
    with live mode's defaults and max_t = the table's epochs), or an object from
    ``orchestrator.schedulers.make_sim_scheduler`` (one per run): trials then train epoch by
    epoch under that scheduler (see the module docstring).
    ``on_progress(sim_time_s, evaluations)`` is called every 256 evaluations (for progress bars).
    """
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if incumbent not in INCUMBENTS:
        raise UserError(f"incumbent must be one of {INCUMBENTS}, got {incumbent!r}")
    if budget.seconds is not None and not table.has_time:
        raise UserError("this benchmark records no training times; use an evaluation budget such as 150ev")
    if isinstance(scheduler, str):
        from orchestrator.schedulers import make_sim_scheduler

        scheduler = make_sim_scheduler(scheduler, max_t=table.num_epochs)
    if scheduler is not None:
        check_scheduled(table, searcher, scheduler)
    rng = np.random.default_rng([seed, 0x5EED])
    limit_s = budget.seconds if budget.seconds is not None else np.inf
    limit_n = budget.evaluations if budget.evaluations is not None else (max_evaluations or np.iinfo(np.int64).max)
    rows = _Trajectory(table, searcher, incumbent, limit_s, past_budget, on_progress)
    if scheduler is None:
        _run_evaluations(table, searcher, rows, rng, workers, limit_s, limit_n, past_budget)
    else:
        from orchestrator.sim_trials import run_trials

        run_trials(table, searcher, scheduler, rows, rng, workers, limit_s, limit_n, past_budget)
    return rows.columns()


def check_scheduled(table: Task, searcher, scheduler) -> None:
    """What a scheduled run needs: a learning curve at every epoch, and a searcher without brackets."""
    name = scheduler.name
    epochs = table.recorded_epochs
    if not table.has_curves:
        raise UserError(f"the {name} scheduler stops trainings early from their learning curves, but the "
                        f"{table.space.name}/{table.feedback_dataset} table records {table.feedback_source} only "
                        f"at epoch {int(epochs[0])} of hp={table.feedback_hp} (e.g. an imported final-accuracy "
                        "table); use the fifo scheduler there, or a store with per-epoch curves")
    if epochs.size != table.num_epochs:
        shown = ", ".join(map(str, epochs[:8])) + (", ..." if epochs.size > 8 else "")
        raise UserError(f"the {name} scheduler reads the feedback after every epoch, but the "
                        f"{table.space.name}/{table.feedback_dataset} table records it at {epochs.size} of "
                        f"{table.num_epochs} epochs ({shown}); use the fifo scheduler there")
    if getattr(searcher, "multi_fidelity", False):
        raise UserError(f"searcher {getattr(searcher, 'name', type(searcher).__name__)} runs its own "
                        f"HyperBand brackets (it chooses each trial's epochs), so it cannot run under the "
                        f"{name} scheduler; use fifo with it, or {name} with another searcher")
    if scheduler.max_t > table.num_epochs:
        raise UserError(f"the {name} scheduler's max_t ({scheduler.max_t}) exceeds the table's "
                        f"{table.num_epochs} epochs; pass max_t={table.num_epochs} or less")
    scheduler.claim()


def arch_indexer(space) -> Callable[[dict], int]:
    """``space.config_to_index`` for the event loops, without its per-call checks: a mixed-radix
    sum of per-decision place values (5x faster); a config it cannot read goes to
    ``config_to_index``, whose UserError says what is wrong with it."""
    k, n = len(space.choices), len(space.decisions)
    get = operator.itemgetter(*space.decisions)
    places = tuple({c: i * k ** (n - 1 - j) for i, c in enumerate(space.choices)} for j in range(n))
    lookup = dict.__getitem__

    def arch_of(config: dict) -> int:
        try:
            return sum(map(lookup, places, get(config)))
        except (KeyError, TypeError):
            return space.config_to_index(config)

    return arch_of


class _Trajectory:
    """The rows of one run (one per finished evaluation or ended trial) and the incumbent rule."""

    def __init__(self, table: Task, searcher, incumbent: str, limit_s: float, past_budget: bool,
                 on_progress) -> None:
        self.final = table.final
        self.arch_of = arch_indexer(table.space)
        self.searcher, self.by_searcher = searcher, incumbent == "searcher"
        self.limit_s, self.past_budget, self.on_progress = limit_s, past_budget, on_progress
        self.nearest = [np.inf, np.inf]  # the two smallest |t - budget| so far (past_budget only)
        self.best_arch, self.best_value, self.best_final = -1, -np.inf, np.nan
        self.searcher_s = 0.0
        self.started = time.perf_counter()
        self.time: list[float] = []
        self.arch: list[int] = []
        self.fidelity: list[int] = []
        self.feedback: list[float] = []
        self.best: list[int] = []
        self.best_acc: list[float] = []
        self.searcher_time: list[float] = []
        self.wall: list[float] = []

    def too_far(self, now: float) -> bool:
        """past_budget: whether a row at ``now`` (and so every later one) is farther from the
        budget than two recorded rows, so that the interpolated value there cannot change."""
        if not self.past_budget:
            return False
        gap = now - self.limit_s
        if gap >= self.nearest[1]:
            return True
        self.nearest = sorted([*self.nearest, abs(gap)])[:2]
        return False

    def tell(self, observation: Observation, arch: int, now: float, fidelity: int) -> bool:
        """Tell the searcher, record the row; True when the run must end here (the first row at
        or past a time budget)."""
        value = observation.value
        t0 = time.perf_counter()
        self.searcher.tell(*observation)
        if self.by_searcher:
            cfg = self.searcher.best()
            if cfg is not None:
                self._lead(self.arch_of(cfg))
        elif value is not None and value > self.best_value:  # ties keep the earlier, as max() does
            self.best_value = value
            self._lead(arch)
        t1 = time.perf_counter()
        self.searcher_s += t1 - t0
        self.time.append(now)
        self.arch.append(arch)
        self.fidelity.append(fidelity)
        self.feedback.append(np.nan if value is None else value)
        self.best.append(self.best_arch)
        self.best_acc.append(self.best_final)
        self.searcher_time.append(self.searcher_s)
        self.wall.append(t1 - self.started)
        n = len(self.time)
        if self.on_progress is not None and n % 256 == 0:
            self.on_progress(now, n)
        return now >= self.limit_s and not self.past_budget

    def _lead(self, arch: int) -> None:
        if arch != self.best_arch:
            self.best_arch, self.best_final = arch, float(self.final[arch])

    def __len__(self) -> int:
        return len(self.time)

    def columns(self) -> dict[str, np.ndarray]:
        return {"event": np.arange(len(self.time)), "sim_time_s": np.asarray(self.time),
                "arch_index": np.asarray(self.arch, dtype=np.int64),
                "fidelity": np.asarray(self.fidelity, dtype=np.int64),
                "feedback": np.asarray(self.feedback, dtype=np.float64),
                "best_arch_index": np.asarray(self.best, dtype=np.int64),
                "best_test_acc": np.asarray(self.best_acc, dtype=np.float64),
                "searcher_time_s": np.asarray(self.searcher_time),
                "wall_time_s": np.asarray(self.wall)}


def _run_evaluations(table: Task, searcher, rows: _Trajectory, rng, workers: int, limit_s: float,
                     limit_n: int, past_budget: bool) -> None:
    """The plain event loop: each proposal is one evaluation, charged in one piece."""
    ask, arch_of, draw_seed, evaluate = searcher.ask, rows.arch_of, table.draw_seed, table.evaluate
    marker = getattr(searcher, "FINISHED", None)
    n_epochs = table.num_epochs
    perf = time.perf_counter
    heap: list[Event] = []
    counter = 0
    now = 0.0
    finished = False
    while True:
        # Fill free workers; None means "nothing to propose until a result comes back".
        while not finished and len(heap) < workers and counter < limit_n and (now < limit_s or past_budget):
            t0 = perf()
            trial_id = str(counter)
            answer = ask(trial_id)
            rows.searcher_s += perf() - t0
            if answer is None:
                break
            if answer is marker or isinstance(answer, str):
                finished = True
                break
            suggestion = to_suggestion(trial_id, answer)
            fidelity = n_epochs if suggestion.fidelity is None else suggestion.fidelity
            arch = arch_of(suggestion.config)
            s = draw_seed(arch, rng)
            value, cost = (np.nan, 0.0) if s is None else evaluate(arch, fidelity, s)
            if value != value:
                cost = 0.0  # no data for this architecture: a failed evaluation, never charged
            heapq.heappush(heap, Event(now + cost, counter, trial_id, arch, fidelity, value))
            counter += 1
        if not heap:
            if not finished and counter < limit_n and (now < limit_s or past_budget):
                raise UserError(f"searcher {type(searcher).__name__} proposed nothing while no evaluation "
                                "was running; it cannot make progress")
            return
        event = heapq.heappop(heap)
        if rows.too_far(event.time):
            return  # this and every later event is farther from the budget than two recorded ones
        now = event.time
        ok = event.value == event.value
        observation = Observation(event.trial_id, event.value if ok else None, "ok" if ok else "error",
                                  event.epoch)
        if rows.tell(observation, event.arch, now, event.epoch) or len(rows) >= limit_n:
            return
