"""On the real NATS-Bench CIFAR-10 table: do the searchers actually search?

NATS-Bench's protocol with its 200-epoch test accuracy as both feedback and final value and a
budget of 100 evaluations, 100 runs per searcher. REA, BOHB and TPE must beat random search on mean
final accuracy (one-sided Welch t-test, p < 0.01) and REINFORCE must be no worse than random.
Skipped when ../shared/data is absent.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark_data.task import Task
from orchestrator.experiment import RunSpec, run_experiment
from orchestrator.simulator import Budget
from spaces import get_space

CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "nats_tss_cifar10_test_acc_200ep.csv"
RUNS = 100


@pytest.fixture(scope="module")
def nats_c10_table() -> Task:
    if not CSV.exists():
        pytest.skip(f"{CSV} is absent")
    space = get_space("tss")
    df = pd.read_csv(CSV)
    acc = np.full(space.size, np.nan, dtype=np.float32)
    acc[[space.parse(a) for a in df["arch"]]] = df["cifar10_test_acc_200ep"].to_numpy(np.float32)
    assert not np.isnan(acc).any()
    values = acc[:, None, None]
    return Task(space, "cifar10", values.copy(), np.full_like(values, np.nan), np.full_like(values, np.nan),
                    acc, feedback_source="test_acc", feedback_hp=200, final_hp=200, has_time=False)


@pytest.fixture(scope="module")
def finals(nats_c10_table) -> dict[str, np.ndarray]:
    specs = [RunSpec(n, Budget(evaluations=100)) for n in ("random", "rea", "reinforce", "bohb", "tpe")]
    # Both cores: the runs are independent and give the same results in Ray tasks (tested).
    runs = run_experiment(nats_c10_table, specs, list(range(RUNS)), parallel=2, progress=False).rows
    last = runs.groupby(["searcher", "run_seed"]).tail(1)
    return {n: g["best_test_acc"].to_numpy() for n, g in last.groupby("searcher")}


@pytest.mark.parametrize("name", ["rea", "bohb", "tpe"])
def test_model_based_and_evolutionary_searchers_beat_random(finals, name):
    better = stats.ttest_ind(finals[name], finals["random"], equal_var=False, alternative="greater")
    assert better.pvalue < 0.01, (name, finals[name].mean(), finals["random"].mean(), better.pvalue)


def test_reinforce_is_no_worse_than_random(finals):
    worse = stats.ttest_ind(finals["reinforce"], finals["random"], equal_var=False, alternative="less")
    assert worse.pvalue > 0.01, (finals["reinforce"].mean(), finals["random"].mean(), worse.pvalue)
