"""NATS-Bench's search protocol, pinned on hand-checked examples (each test names the reference).

Reference files: AutoDL-Projects exps/NATS-algos/{regularized_ea,bohb,random_wo_share}.py and
exps/NATS-Bench/draw-table.py; nats_bench 1.8 api_utils.py (simulate_train_eval, get_more_info).
"""

import collections
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark_data.reader import Benchmark, nats_time_cost
from benchmark_data.schema import provenance
from benchmark_data.task import Task
from benchmark_data.writer import write_fragment
from orchestrator import protocol
from orchestrator.common import experiment_name
from orchestrator.experiment import NATS_BUDGETS_S, RunSpec, default_budget, run_experiment, summarize
from orchestrator.searchers import make_searcher
from orchestrator.searchers.rea import nats_mutate
from orchestrator.simulator import Budget, run_search
from sim_fixtures import synthetic_table
from spaces import UserError, get_space

ROOT = Path(__file__).resolve().parents[1]
SHARED_TABLE = ROOT.parent / "shared" / "data" / "nats_tss_cifar10_test_acc_200ep.csv"


def run_cli(*args: str, cwd: Path, module: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", module] if module else [sys.executable, str(ROOT / "orchestrate.py")]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


# --- 17: one time-cost rule ---------------------------------------------------------------------
def test_time_cost_is_training_so_far_plus_the_mean_validation_time_so_far():
    # nats_bench get_more_info: train-all-time = sum of epochs 1..e; valid-per-time = the
    # validation all_time over 1..e divided by e. Epoch 2 of (10, 20, 30) / (1, 2, 6): 30 + 1.5.
    cost = nats_time_cost(np.array([10.0, 20.0, 30.0]), np.array([1.0, 2.0, 6.0]))
    np.testing.assert_allclose(cost, [11.0, 31.5, 63.0])
    table = synthetic_table(seeds=1, epochs=3)
    table.train_time[0, 0] = [10, 20, 30]
    table.eval_time[0, 0] = [1, 2, 6]
    table.__post_init__()
    assert table.evaluate(0, 2, 0)[1] == 31.5


def test_the_facade_and_the_simulator_charge_the_same_seconds():
    from benchmark_data.nats_compat import create

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api = create(None, "tss")
    bench = Benchmark.open(None)
    table = Task.from_benchmark(bench, "tss", "digits")
    rng = np.random.default_rng(0)
    for arch in rng.integers(0, 15625, size=20):
        epoch = int(rng.integers(1, 13))
        _, _, cost, _ = api.simulate_train_eval(int(arch), "digits", iepoch=epoch - 1, hp="12", account_time=False)
        assert cost == pytest.approx(table.evaluate(int(arch), epoch, 0)[1], rel=1e-9)
        assert cost == pytest.approx(bench.simulate_train_eval("tss", int(arch), "digits", 12, epoch)[2], rel=1e-9)


# --- 14: ragged seeds ------------------------------------------------------------------------------
def test_a_seed_is_drawn_among_the_seeds_the_architecture_has():
    table = synthetic_table(seeds=2)
    table.feedback[::2, 1] = np.nan  # half the cells miss seed 1
    table.__post_init__()
    t = run_search(table, make_searcher("random", table.space.hparams, 0), Budget(evaluations=400), seed=0)
    assert not np.isnan(t["feedback"]).any()  # before: ~1/4 of the evaluations failed for free
    # The cells that have both seeds still answer from both.
    both = t["arch_index"] % 2 == 1
    answers = {(a, f) for a, f in zip(t["arch_index"][both], t["feedback"][both])}
    assert any(np.isclose(f, table.feedback[a, 1, -1]) for a, f in answers)
    assert any(np.isclose(f, table.feedback[a, 0, -1]) for a, f in answers)


# --- 15: budgets per space ------------------------------------------------------------------------
def test_nats_budgets_are_keyed_by_space_and_dataset():
    # draw-table.py: tss ImageNet16-120-T120000, sss ImageNet16-120-T60000.
    assert NATS_BUDGETS_S[("tss", "ImageNet16-120")] == 1.2e5
    assert NATS_BUDGETS_S[("sss", "ImageNet16-120")] == 6e4
    table = synthetic_table(dataset="ImageNet16-120")
    assert default_budget(table)[0] == Budget(seconds=1.2e5)
    sss = get_space("sss")
    n = sss.size
    size_table = Task(sss, "ImageNet16-120", np.ones((n, 1, 2), np.float32), np.ones((n, 1, 2), np.float32),
                          np.ones((n, 1, 2), np.float32), np.ones(n, np.float32), final_hp=90)
    assert default_budget(size_table)[0] == Budget(seconds=6e4)


# --- 16: reporting -------------------------------------------------------------------------------
def test_accuracy_at_the_budget_is_interpolated_between_the_two_nearest_events():
    times, accs = np.array([100.0, 200.0, 300.0]), np.array([90.0, 92.0, 95.0])
    # 250 is 50 s from 200 and from 300: the stable sort takes 200 first; the line gives 93.5.
    assert protocol.value_at(times, accs, 250) == pytest.approx(93.5)
    # 320: nearest are 300 and 200, both below, so draw-table.py extends the line: 95.6.
    assert protocol.value_at(times, accs, 320) == pytest.approx(95.6)
    assert protocol.value_at(times[:1], accs[:1], 320) == 90.0
    tickets, curve = protocol.curve(times, accs, 300.0)
    np.testing.assert_allclose(tickets, [100, 200, 300])
    np.testing.assert_allclose(curve, [90, 92, 95])


def test_the_summary_reports_the_interpolated_accuracy_and_a_ddof0_std():
    table = synthetic_table()
    budget = Budget(seconds=1500)
    result = run_experiment(table, [RunSpec("random", budget)], [0, 1, 2, 3], progress=False)
    expected = [protocol.value_at(r["sim_time_s"], r["best_test_acc"], 1500)
                for _, r in result.rows.groupby("run_seed")]
    (s,) = summarize(result, table, budget)
    assert s.test_acc_at_budget_mean == pytest.approx(np.mean(expected))
    assert s.test_acc_at_budget_std == pytest.approx(np.std(expected))  # np.std: ddof 0
    assert s.test_acc_at_budget_std != pytest.approx(np.std(expected, ddof=1))


def test_bohbs_incumbent_is_the_best_over_all_evaluations_as_published():
    # bohb.py: current_best_index = the arch of max(trajectory) over every fidelity. Here one-epoch
    # values beat every longer one, so that rule and the highest-fidelity belief must differ.
    table = synthetic_table()
    table.feedback[:, :, 0] += 100
    t = run_search(table, make_searcher("bohb", table.space.hparams, 0, min_fidelity=1, max_fidelity=12),
                   Budget(seconds=3000), seed=0)
    leader = [int(np.argmax(t["feedback"][: i + 1])) for i in range(len(t["feedback"]))]
    np.testing.assert_array_equal(t["best_arch_index"], t["arch_index"][leader])
    own = run_search(table, make_searcher("bohb", table.space.hparams, 0, min_fidelity=1, max_fidelity=12),
                     Budget(seconds=3000), seed=0, incumbent="searcher")
    np.testing.assert_array_equal(own["arch_index"], t["arch_index"])  # the same search ...
    assert not np.array_equal(own["best_arch_index"], t["best_arch_index"])  # ... another incumbent
    with pytest.raises(UserError, match="incumbent must be one of"):
        run_search(table, make_searcher("random", table.space.hparams, 0), Budget(evaluations=3), incumbent="x")


def test_bohb_goes_past_the_budget_just_until_the_value_at_the_budget_is_final():
    table = synthetic_table()
    spec = RunSpec("bohb", Budget(seconds=1500))
    assert spec.runs_past_budget() and not RunSpec("rea", Budget(seconds=1500)).runs_past_budget()

    def bohb(budget, past):
        searcher = make_searcher("bohb", table.space.hparams, 4, min_fidelity=1, max_fidelity=12)
        return run_search(table, searcher, Budget(seconds=budget), seed=4, past_budget=past)

    short, long = bohb(1500, True), bohb(6000, False)  # the long run: what bohb.py's 300 iterations see
    n = len(short["sim_time_s"])
    np.testing.assert_array_equal(short["arch_index"], long["arch_index"][:n])
    assert short["sim_time_s"][-1] > 1500 and long["sim_time_s"][n] - 1500 > 0
    assert protocol.value_at(short["sim_time_s"], short["best_test_acc"], 1500) == \
        protocol.value_at(long["sim_time_s"], long["best_test_acc"], 1500)


# --- 13: REA mutation -----------------------------------------------------------------------------
def test_rea_mutates_a_node_then_one_of_its_edges_and_sizes_may_repeat():
    rng = np.random.default_rng(0)
    tss = get_space("tss").hparams
    parent = tss.sample(rng)
    changed = collections.Counter()
    for _ in range(9000):
        child = nats_mutate(tss, parent, rng)
        diff = [n for n in tss.names if child[n] != parent[n]]
        assert len(diff) == 1  # always exactly one edge, always to another op
        changed[diff[0]] += 1
    expected = {"edge_1_0": 1 / 3, "edge_2_0": 1 / 6, "edge_2_1": 1 / 6,
                "edge_3_0": 1 / 9, "edge_3_1": 1 / 9, "edge_3_2": 1 / 9}
    for name, p in expected.items():
        assert changed[name] / 9000 == pytest.approx(p, abs=0.02), name
    sss = get_space("sss").hparams
    parent = sss.sample(rng)
    same = sum(nats_mutate(sss, parent, rng) == parent for _ in range(4000))
    assert same / 4000 == pytest.approx(1 / 8, abs=0.02)  # a redraw may give the same channels
    with pytest.raises(UserError, match="knob mutation must be one of"):
        make_searcher("rea", tss, 0, mutation="swap")


# --- 1: BOHB on a table that records only its last epoch, through import -> store -> CLI -----------
def _write_csv(path: Path, values: np.ndarray) -> Path:
    tss = get_space("tss")
    lines = ["index,arch,test_acc"] + [f"{i},{tss.to_str(i)},{v:.4f}" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def imported_store(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("imported")
    if SHARED_TABLE.is_file():
        csv = SHARED_TABLE
    else:  # the same layout, synthetic values
        csv = _write_csv(tmp / "table.csv", synthetic_table().final * 0.5 + 45)
    r = run_cli("import", str(csv), "--store", str(tmp / "store"), "--dataset", "cifar10", "--hp", "200", cwd=tmp,
                module="benchmark_data")
    assert r.returncode == 0, r.stderr
    return tmp / "store"


def test_bohb_on_an_imported_final_accuracy_table_runs_over_its_one_fidelity(imported_store, tmp_path):
    r = run_cli("--searcher", "bohb", "--budget", "100ev", "--store", str(imported_store), "--runs", "3",
                "--out", "res", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "BOHB has one fidelity" in r.stdout
    df = pd.read_parquet(next((tmp_path / "res" / "runs").rglob("*.parquet")))
    assert (df["fidelity"] == 200).all() and not df["feedback"].isna().any()
    assert df.groupby("run_seed").size().eq(100).all()
    assert not df["best_test_acc"].isna().any() and "nan" not in r.stdout


@pytest.mark.parametrize("scheduler", ["asha", "hyperband"])
def test_a_stopping_scheduler_on_a_final_accuracy_table_is_refused_before_any_run(imported_store, tmp_path,
                                                                                   scheduler):
    r = run_cli("simulate", "--searcher", "random", "--scheduler", scheduler, "--store", str(imported_store),
                "--out", "res", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"the {scheduler} scheduler stops trainings early from their learning curves" in r.stderr
    assert "records test_acc only at epoch 200 of hp=200" in r.stderr and "use the fifo scheduler" in r.stderr
    assert not (tmp_path / "res").exists()


# --- 3: coverage, experiment names, damaged partitions -------------------------------------------
@pytest.fixture(scope="module")
def partial_store(tmp_path_factory) -> Path:
    """hp=12 covers the space; hp=48 covers only its first 1,000 cells (like the embedded hp=48)."""
    root = tmp_path_factory.mktemp("partial")
    t = synthetic_table(seeds=1)
    meta = provenance("epochs", recipe={"name": "synthetic"})
    for hp, archs in ((12, np.arange(t.space.size)), (48, np.arange(1000))):
        a, e = np.meshgrid(archs, np.arange(1, 13), indexing="ij")
        write_fragment(root, "epochs", pd.DataFrame({
            "space": "tss", "dataset": "digits", "hp": hp, "arch_index": a.ravel(), "seed": 0,
            "epoch": e.ravel(), "valid_acc": t.feedback[a, 0, e - 1].ravel(),
            "test_acc": t.feedback[a, 0, e - 1].ravel(), "epoch_time_s": 1.0, "eval_time_s": 0.1,
            "status": "ok"}), metadata=meta)
    return root


@pytest.mark.parametrize("flag", ["--hp", "--final-hp"])
def test_a_recipe_that_does_not_cover_the_space_is_refused_with_its_coverage(partial_store, tmp_path, flag):
    r = run_cli("--store", str(partial_store), flag, "48", "--out", "res", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "covers 1,000 of 15,625 architectures (6.4 %)" in r.stderr and f"{flag} 12" in r.stderr
    assert not (tmp_path / "res").exists()


def test_default_names_are_unique_and_a_reused_name_is_refused(partial_store, tmp_path):
    assert experiment_name(None, "a") != experiment_name(None, "a")
    args = ("--store", str(partial_store), "--budget", "5ev", "--experiment", "mine", "--out", "res", "--quiet")
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2 and "experiment 'mine' exists already" in r.stderr
    assert len(list((tmp_path / "res" / "runs").rglob("*.parquet"))) == 1  # nothing appended


def test_a_damaged_partition_the_run_does_not_need_only_warns(partial_store, tmp_path):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(partial_store, store)
    folder = next((store / "epochs").rglob("hp=48"))
    (folder / "part-0-foreign.parquet").write_bytes(b"PAR1 not really parquet")
    r = run_cli("--store", str(store), "--budget", "5ev", "--out", "res", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "part-0-foreign.parquet" in r.stderr  # the warning names the file
    for f in folder.glob("part-*"):
        if "foreign" not in f.name:
            f.unlink()
    r = run_cli("--store", str(store), "--hp", "48", "--out", "res2", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "part-0-foreign.parquet" in r.stderr
