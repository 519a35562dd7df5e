"""The simulated-clock search engine: budgets, determinism, workers, Ray fan-out."""

import numpy as np
import pandas as pd
import pytest

from orchestrator.experiment import RunSpec, default_budget, run_experiment, summarize
from orchestrator.searchers import SEARCHERS, make_searcher
from orchestrator.simulator import Budget, parse_budget, run_search
from sim_fixtures import synthetic_table
from spaces import UserError

TABLE = synthetic_table()


@pytest.mark.parametrize("text, expected", [
    ("2e4s", Budget(seconds=2e4)), ("20000", Budget(seconds=2e4)), ("30m", Budget(seconds=1800)),
    ("5.5h", Budget(seconds=19800)), ("150ev", Budget(evaluations=150)), (" 1.2e5S ", Budget(seconds=1.2e5)),
])
def test_budgets_parse_in_every_documented_unit(text, expected):
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text, message", [
    ("lots", "cannot read the budget"), ("-5s", "must be positive"), ("0", "must be positive"),
    ("1.5ev", "whole number"), ("s", "cannot read"), ("nan", "must be positive"),
])
def test_bad_budgets_are_rejected_with_a_clear_message(text, message):
    with pytest.raises(UserError, match=message):
        parse_budget(text)


def _trajectory(name, seed, budget=Budget(seconds=3000), workers=1):
    searcher = make_searcher(name, TABLE.space.hparams, seed, min_fidelity=1, max_fidelity=12)
    return run_search(TABLE, searcher, budget, workers=workers, seed=seed)


@pytest.mark.parametrize("name", SEARCHERS)
def test_same_seed_same_trajectory_and_another_seed_another(name):
    a, b, c = _trajectory(name, 7), _trajectory(name, 7), _trajectory(name, 8)
    for key in ("sim_time_s", "arch_index", "fidelity", "feedback", "best_arch_index"):
        np.testing.assert_array_equal(a[key], b[key])
    assert len(a["arch_index"]) != len(c["arch_index"]) or not np.array_equal(a["arch_index"], c["arch_index"])


@pytest.mark.parametrize("name", SEARCHERS)
def test_a_time_budgeted_run_ends_with_the_first_evaluation_past_the_budget(name):
    # NATS-Bench's scripts loop `while total_time < time_budget`: every evaluation but the last
    # ends before the budget, the last one ends at or after it, by less than one evaluation.
    t = _trajectory(name, 1, Budget(seconds=2000))
    assert np.all(t["sim_time_s"][:-1] < 2000) and t["sim_time_s"][-1] >= 2000
    assert np.all(np.diff(t["sim_time_s"]) >= 0)
    assert t["sim_time_s"][-1] - 2000 <= TABLE.cost[:, :, -1].max()


def test_evaluation_budget_counts_finished_evaluations_exactly():
    t = _trajectory("rea", 3, Budget(evaluations=37))
    assert len(t["event"]) == 37 and list(t["event"]) == list(range(37))


class _CountingSearcher:
    """Wraps a searcher to see how many evaluations are in flight at any moment."""

    def __init__(self, inner):
        self.inner, self.in_flight, self.max_in_flight = inner, 0, 0

    def ask(self, trial_id):
        cfg = self.inner.ask(trial_id)
        if isinstance(cfg, dict):
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return cfg

    def tell(self, *args, **kwargs):
        self.in_flight -= 1
        return self.inner.tell(*args, **kwargs)

    def best(self):
        return self.inner.best()


@pytest.mark.parametrize("name, workers", [("random", 4), ("rea", 3), ("bohb", 4), ("tpe", 2)])
def test_w_workers_never_run_more_than_w_evaluations_at_once(name, workers):
    s = _CountingSearcher(make_searcher(name, TABLE.space.hparams, 0, min_fidelity=1, max_fidelity=12))
    t = run_search(TABLE, s, Budget(seconds=4000), workers=workers, seed=0)
    assert s.max_in_flight == workers  # the asynchronous search does use all workers
    single = run_search(TABLE, make_searcher(name, TABLE.space.hparams, 0, min_fidelity=1, max_fidelity=12),
                        Budget(seconds=4000), workers=1, seed=0)
    assert len(t["event"]) > len(single["event"])  # and gets more done in the same simulated time


def test_best_arch_accuracy_is_the_final_recipe_value_and_never_the_feedback():
    t = _trajectory("random", 2)
    np.testing.assert_allclose(t["best_test_acc"], TABLE.final[t["best_arch_index"]])
    # Random search believes in the architecture with the highest feedback so far.
    leader = [int(np.argmax(t["feedback"][: i + 1])) for i in range(len(t["feedback"]))]
    np.testing.assert_array_equal(t["best_arch_index"], t["arch_index"][leader])


def test_missing_architectures_are_failed_evaluations_that_cost_nothing():
    table = synthetic_table()
    table.feedback[::2] = np.nan
    t = run_search(table, make_searcher("random", table.space.hparams, 0), Budget(evaluations=50), seed=0)
    failed = np.isnan(t["feedback"])
    assert failed.any() and (~failed).any()
    assert not np.isnan(table.feedback[t["best_arch_index"][-1], 0, -1])


def test_default_budget_follows_the_documented_rule():
    budget, why = default_budget(TABLE)
    full = TABLE.cost[:, :, -1]
    assert budget.seconds == pytest.approx(150 * np.median(full), rel=1e-3) and "150" in why
    cifar = synthetic_table(dataset="cifar10")
    assert default_budget(cifar)[0] == Budget(seconds=2e4)


def test_summary_reports_regret_against_the_benchmark_best():
    result = run_experiment(TABLE, [RunSpec("random", Budget(evaluations=20))], [0, 1, 2], progress=False)
    (s,) = summarize(result, TABLE, Budget(evaluations=20))
    last = result.rows.groupby("run_seed").tail(1)
    assert s.runs == 3 and s.evaluations_mean == 20
    assert s.regret_mean == pytest.approx(TABLE.best_final - last["best_test_acc"].mean())


@pytest.mark.ray
def test_ray_tasks_give_the_same_runs_as_in_process():
    specs = [RunSpec("rea", Budget(seconds=1500)), RunSpec("tpe", Budget(evaluations=15))]
    seeds = [0, 1, 2, 3, 4]
    local = run_experiment(TABLE, specs, seeds, progress=False).rows
    remote = run_experiment(TABLE, specs, seeds, parallel=2, progress=False).rows
    cols = ["searcher", "run_seed", "event", "sim_time_s", "arch_index", "fidelity", "feedback", "best_arch_index"]
    pd.testing.assert_frame_equal(local[cols], remote[cols])
