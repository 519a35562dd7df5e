"""The benchmark task view (benchmark_data.task): the feedback-dataset rule, dataset inference,
role columns read from the files' metadata, per-epoch curves, the regret floor and final ranks,
on real stores written through the writer and the importer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import make_epoch_rows

from benchmark_data import schema as S
from benchmark_data import writer as W
from benchmark_data.importers import import_nats_table
from benchmark_data.reader import Benchmark
from benchmark_data.task import FEEDBACK_DATASET, Task, choose_dataset, feedback_dataset, nats_time_cost
from orchestrator.simulator import FINAL_HP, SimTable
from spaces import get_space
from spaces.errors import UserError

SIZE = get_space("tss").size
ALL = range(SIZE)


def _write(root, rows, **roles):
    """One epochs fragment with provenance naming ``roles`` (schema defaults for the others)."""
    W.write_fragment(root, "epochs", rows, metadata=S.provenance("epochs", **roles))


def _full(dataset="digits", hp=3, seeds=(0,), offset=0.0, epochs=None):
    """Rows of every architecture of tss (a task refuses a recipe that does not cover the space)."""
    return make_epoch_rows(dataset=dataset, hp=hp, archs=ALL, seeds=seeds, offset=offset, epochs=epochs)


# --- the feedback dataset: one rule -----------------------------------------------------------
def test_the_feedback_dataset_rule():
    assert FEEDBACK_DATASET == {"cifar10": "cifar10-valid"}
    assert feedback_dataset("cifar10") == "cifar10-valid"  # the mapping itself (one-shot training)
    assert feedback_dataset("cifar10", {"cifar10", "cifar10-valid"}) == "cifar10-valid"
    assert feedback_dataset("cifar10", {"cifar10"}) == "cifar10"  # no twin in the store
    assert feedback_dataset("cifar100", {"cifar100", "cifar10-valid"}) == "cifar100"
    assert feedback_dataset("digits") == "digits"


def test_a_cifar10_task_reads_feedback_and_time_from_cifar10_valid(tmp_path):
    _write(tmp_path, _full("cifar10", offset=50))
    _write(tmp_path, _full("cifar10-valid", offset=20))
    bench = Benchmark.open(tmp_path)
    task = bench.task("tss", "cifar10")
    assert (task.dataset, task.feedback_dataset) == ("cifar10", "cifar10-valid")
    # valid_acc = arch + epoch / 1000 + offset: cifar10-valid's (20), not cifar10's (50)
    assert task.feedback[7, 0, 2] == pytest.approx(7 + 0.003 + 20)
    assert task.final[7] == pytest.approx(7 + 0.003 + 50 + 1)  # cifar10's own test accuracy
    assert bench.feedback_dataset("tss", "cifar10") == "cifar10-valid"
    # the reader's simulate_train_eval goes by the same rule
    assert bench.simulate_train_eval("tss", 7, "cifar10", hp=3, rng=0)[0] == pytest.approx(7.003 + 20)


def test_without_its_twin_cifar10_is_its_own_feedback(tmp_path):
    _write(tmp_path, _full("cifar10"))
    # a twin with architecture costs only has no training to read feedback from
    costs = pd.DataFrame({"space": "tss", "dataset": "cifar10-valid", "arch_index": [0], "latency_ms": 1.0})
    W.write_fragment(tmp_path, "archs", costs, metadata=S.provenance("archs"))
    bench = Benchmark.open(tmp_path)
    assert bench.feedback_dataset("tss", "cifar10") == "cifar10"
    task = bench.task("tss", "cifar10")
    assert task.feedback_dataset == "cifar10" and task.feedback[3, 0, -1] == pytest.approx(3.003)


# --- dataset inference ----------------------------------------------------------------------
def test_dataset_inference():
    assert choose_dataset(["digits"]) == "digits"
    assert choose_dataset(["cifar10", "cifar10-valid"]) == "cifar10"  # the twin does not count
    assert choose_dataset(["cifar10", "cifar100", "cifar10-valid"]) == "cifar10"  # NATS-Bench's main
    assert choose_dataset(["cifar10-valid"]) == "cifar10-valid"  # a twin alone is the only one
    assert choose_dataset(["cifar100", "digits"], "digits") == "digits"
    with pytest.raises(UserError, match=r"holds several datasets \(cifar100, digits\); choose one with --dataset"):
        choose_dataset(["cifar100", "digits"])
    with pytest.raises(UserError, match=r"has no dataset 'mnist'; it has: cifar100, digits"):
        choose_dataset(["cifar100", "digits"], "mnist")


def test_a_task_infers_the_dataset_of_a_one_dataset_store(tmp_path):
    _write(tmp_path, _full("digits"))
    task = Benchmark.open(tmp_path).task("tss")
    assert task.dataset == "digits" and task.feedback_hp == 3


# --- role columns from the files' metadata --------------------------------------------------
def _distinct_times(rows):
    rows = rows.copy()
    rows["eval_time_s"] = 0.25 + rows["arch_index"] / 1000  # distinguishable from epoch_time_s
    return rows


def test_roles_come_from_the_files_metadata(tmp_path):
    _write(tmp_path, _distinct_times(_full()), objective_column="train_acc", time_column="eval_time_s")
    bench = Benchmark.open(tmp_path)
    assert bench.roles("tss", "digits", 3) == {"objective_column": "train_acc", "time_column": "eval_time_s",
                                                "fidelity_column": "epoch"}
    task = bench.task("tss")
    assert (task.feedback_source, task.time_source, task.fidelity_source) == ("train_acc", "eval_time_s", "epoch")
    # train_acc = valid_acc + 2; the time column is eval_time_s
    assert task.feedback[5, 0, 1] == pytest.approx(5 + 0.002 + 2)
    assert task.train_time[5, 0, 0] == pytest.approx(0.255)
    assert task.evaluate(5, 2, 0)[1] == pytest.approx(nats_time_cost(np.full(2, 0.255), np.full(2, 0.255))[-1])
    # the reader's own NATS-style queries read the same roles
    valid, _, cost = bench.simulate_train_eval("tss", 5, "digits", hp=3, epoch=2, rng=0)
    assert valid == pytest.approx(7.002) and cost == pytest.approx(task.evaluate(5, 2, 0)[1])
    # an explicit feedback column wins over the files' objective
    assert bench.task("tss", feedback="valid_acc").feedback[5, 0, 1] == pytest.approx(5.002)


def test_files_without_roles_fall_back_to_the_schema_defaults(tmp_path):
    W.write_fragment(tmp_path, "epochs", _distinct_times(_full()), metadata={})
    bench = Benchmark.open(tmp_path)
    assert bench.roles("tss", "digits", 3) == S.ROLE_COLUMNS["epochs"]
    task = bench.task("tss")
    assert (task.feedback_source, task.time_source) == ("valid_acc", "epoch_time_s")
    assert task.train_time[5, 0, 0] == pytest.approx(1.05)


def test_files_that_disagree_on_a_role_are_refused(tmp_path):
    rows = _full()
    _write(tmp_path, rows[rows.arch_index < 100])
    _write(tmp_path, rows[rows.arch_index >= 100], objective_column="test_acc")
    bench = Benchmark.open(tmp_path)
    with pytest.raises(UserError, match=r"disagree on objective_column: valid_acc \(e\.g\. .*\); test_acc"):
        bench.task("tss")
    # naming the feedback column settles it
    assert bench.task("tss", feedback="valid_acc").feedback_source == "valid_acc"


def test_roles_the_dense_layout_cannot_serve_are_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, _full(), fidelity_column="seed")
    with pytest.raises(UserError, match="name fidelity_column 'seed'; the reader lays training out by epoch only"):
        Benchmark.open(a).task("tss")
    _write(b, _full(), objective_column="status")
    with pytest.raises(UserError, match="name objective_column 'status', which is not a metric column"):
        Benchmark.open(b).task("tss")


# --- curves ---------------------------------------------------------------------------------
def test_has_curves_is_false_on_an_imported_final_only_table(tmp_path):
    sp = get_space("tss")
    acc = 50 + (np.arange(SIZE) * 7919 % 1000) / 25
    table = pd.DataFrame({"index": np.arange(SIZE), "arch": [sp.to_str(i) for i in range(SIZE)],
                          "test_acc": acc})
    table.to_csv(tmp_path / "t.csv", index=False)
    import_nats_table(tmp_path / "t.csv", tmp_path / "store")
    task = Benchmark.open(tmp_path / "store").task("tss")
    assert not task.has_curves and task.min_fidelity == 200 == task.num_epochs
    assert task.feedback_source == "test_acc" and not task.has_time  # no validation split, no times
    assert any("no validation split" in n for n in task.notes)
    assert task.final_hp == FINAL_HP["tss"] == 200


def test_has_curves_is_true_with_per_epoch_rows(tmp_path):
    _write(tmp_path, _full())
    task = Benchmark.open(tmp_path).task("tss")
    assert task.has_curves and task.min_fidelity == 1 and list(task.recorded_epochs) == [1, 2, 3]


# --- the regret floor and one-shot scoring ----------------------------------------------------
@pytest.fixture
def ragged(tmp_path):
    """Two seeds (seed 1 missing for every third cell), random feedback with ties, a final recipe."""
    rng = np.random.default_rng(4)
    rows = _full(hp=3, seeds=(0, 1))
    rows = rows[~((rows.seed == 1) & (rows.arch_index % 3 == 0))].copy()
    rows["valid_acc"] = np.round(rng.uniform(50, 90, len(rows)), 1)  # rounded: ties happen
    _write(tmp_path, rows)
    final = _full(hp=9, seeds=(0, 1), epochs=1)  # a one-epoch record of a longer recipe
    final["test_acc"] = np.round(rng.uniform(60, 95, len(final)), 2)
    _write(tmp_path, final)
    return tmp_path, rows, final


def test_best_by_feedback_and_ranks_equal_a_brute_force_computation(ragged):
    root, rows, final = ragged
    task = Benchmark.open(root).task("tss", hp=3, final_hp=9)
    last = rows[rows.epoch == 3]
    valid = {a: np.mean(np.float32(g.valid_acc.to_numpy()), dtype=np.float32) for a, g in last.groupby("arch_index")}
    fin = {a: np.mean(np.float32(g.test_acc.to_numpy()), dtype=np.float32) for a, g in final.groupby("arch_index")}
    best = max(valid.values())
    arch = min(a for a, v in valid.items() if v == best)  # ties: the smaller index
    assert task.best_by_feedback == (arch, pytest.approx(fin[arch]))
    np.testing.assert_allclose(task.search_valid, [valid[a] for a in ALL], rtol=1e-6)
    # rank: 1 + the number of cells with a strictly better final value
    values = np.array([fin[a] for a in ALL])
    for a in (0, 1, arch, int(np.argmax(values)), int(np.argmin(values))):
        assert task.rank(a) == 1 + int((values > values[a]).sum())
    picks = np.array([3, 5, 8])
    np.testing.assert_array_equal(task.rank(picks), [1 + (values > values[p]).sum() for p in picks])
    assert task.rank(task.best_arch) == 1.0


def test_final_ranks_leave_unknown_cells_nan():
    ones = np.ones((SIZE, 1, 1), np.float32)
    final = np.full(SIZE, np.nan, np.float32)
    final[:3] = [90.0, 95.0, 90.0]
    task = Task(get_space("tss"), "digits", ones, ones, ones, final, final_hp=1)
    assert task.rank([0, 1, 2]).tolist() == [2.0, 1.0, 2.0] and np.isnan(task.rank(3))
    assert task.best_by_feedback == (0, 90.0)  # every feedback ties: the smallest index


# --- the transition names and the cache -------------------------------------------------------
def test_simtable_is_the_task_and_bench_task_is_cached(tmp_path):
    _write(tmp_path, _full())
    bench = Benchmark.open(tmp_path)
    assert SimTable is Task
    task = bench.task("tss", "digits")
    assert bench.task("tss", "digits") is task
    old = SimTable.from_benchmark(bench, "tss", "digits", 3, final_hp=3, feedback="valid_acc",
                                  final_metric="test_acc")
    np.testing.assert_array_equal(old.feedback, task.feedback)
    assert not task.feedback.flags.writeable  # shared with the reader: read-only


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda b: b.task("nas101"), r"space 'nas101' is not in the store .*; it has: tss"),
    (lambda b: b.task("sss"), r"space 'sss' is not in the store .*; it has: tss"),
    (lambda b: b.task("tss", "mnist"), r"has no dataset 'mnist' for space tss; it has: cifar100, digits"),
    (lambda b: b.task("tss"), r"holds several datasets for space tss \(cifar100, digits\); choose one with --dataset"),
    (lambda b: b.task("tss", "digits", 7), r"hp=7 is not in the store for tss/digits; it has hp 3"),
    (lambda b: b.task("tss", "digits", final_hp=7), r"hp=7 is not in the store for tss/digits; it has hp 3"),
    (lambda b: b.task("tss", "digits", feedback="accuracy"), r"unknown metric\(s\) \['accuracy'\]"),
    (lambda b: b.task("tss", "cifar100"), r"tss/cifar100 hp=3 covers 10 of 15,625 architectures \(0\.1 %\)"),
])
def test_bad_input_is_explained(tmp_path, call, message):
    _write(tmp_path, _full())
    _write(tmp_path, make_epoch_rows(dataset="cifar100", hp=3, archs=range(10)))
    with pytest.raises(UserError, match=message):
        call(Benchmark.open(tmp_path))


# --- row status: a diverged training is a failed evaluation ------------------------------------------
def test_diverged_trainings_fail_their_evaluations_in_the_task_and_through_the_cli(tmp_path):
    from cli_fixtures import orchestrate_cli

    rows = _full(hp=3)
    even = rows["arch_index"] % 2 == 0
    rows.loc[even, "status"] = "diverged"  # as a builder or TrainArch records a loss gone to inf
    _write(tmp_path / "store", rows)
    bench = Benchmark.open(tmp_path / "store")
    assert bench.status_is("tss", "digits", 3, "diverged")[:, 0, 0].tolist() == [a % 2 == 0 for a in ALL]
    task = bench.task("tss", "digits")
    assert np.isnan(task.feedback[0::2]).all() and not np.isnan(task.feedback[1::2]).any()
    assert np.isfinite(task.final).all()  # what the recipe's training gave is still reported
    assert any("7,813 architectures of tss/digits hp=3 have diverged trainings" in n for n in task.notes)
    assert task.best_by_feedback[0] == 15623  # not the diverged 15624, whose recorded accuracy is highest
    code, out, err = orchestrate_cli("simulate", "--store", tmp_path / "store", "--searcher", "random",
                                     "--budget", "40ev", "--runs", "2", "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    runs = pd.read_parquet(tmp_path / "out" / "runs")
    told = runs["arch_index"] % 2 == 0
    assert told.any() and runs.loc[told, "feedback"].isna().all() and runs.loc[~told, "feedback"].notna().all()
    with pytest.raises(UserError, match="unknown status 'exploded'"):
        bench.status_is("tss", "digits", 3, "exploded")


@pytest.mark.parametrize("array, want", [
    (pa.array(["ok", "diverged", None, "ok", "o", "okk"]), [True, False, False, True, False, False]),
    (pa.array(["diverged", "ok", None, "ok"]).slice(1), [True, False, True]),
    (pa.array(["ok", None, "diverged"], pa.large_string()), [True, False, False]),
    (pa.array(["ok", None, "ok"]).dictionary_encode(), [True, False, True]),
    (pa.array([None, None], pa.string()), [False, False]),
])
def test_the_readers_string_match_reads_arrow_buffers_as_arrow_means_them(array, want):
    from benchmark_data.reader import _equals

    assert _equals(array, "ok").tolist() == want
