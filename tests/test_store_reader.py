"""The reader: lazy opening, exact values from dense arrays, seed semantics, NATS-Bench time
accounting, helpful errors, and survival of corrupt files and concurrent compaction."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from benchmark_data import reader as R
from benchmark_data import schema as S
from benchmark_data import writer as W
from benchmark_data.reader import Benchmark
from spaces.errors import UserError

TSS_SIZE = 15625


def _write(root, rows, table="epochs"):
    return W.write_fragment(root, table, rows, metadata=S.provenance(table))


@pytest.fixture
def store(tmp_path, epoch_rows):
    """digits hp=12 with seeds 0 and 1 for archs 0..9, cifar10 / cifar10-valid, and costs."""
    _write(tmp_path, epoch_rows(archs=range(10), seeds=(0, 1)))
    _write(tmp_path, epoch_rows(dataset="cifar10", archs=range(10), seeds=(0, 1), offset=50))
    _write(tmp_path, epoch_rows(dataset="cifar10-valid", archs=range(10), seeds=(0, 1), offset=20))
    costs = pd.DataFrame({"space": "tss", "dataset": "cifar10", "arch_index": np.arange(10),
                          "params_m": np.arange(10) / 10, "flops_m": np.arange(10) * 2.0,
                          "latency_ms": 3.0})
    _write(tmp_path, costs, "archs")
    return tmp_path


def test_open_lists_partitions_without_reading_files(store):
    folder = store / "epochs/space=tss/dataset=digits/hp=12"
    (folder / "part-99999999999999999999-zz.parquet").write_bytes(b"not parquet")
    bench = Benchmark.open(store)
    assert bench.bad_files == []  # open reads nothing, so the corrupt file is not noticed yet
    assert all(p.files is None for p in bench._epochs.values())
    # listing reads footers only: it notices the corrupt file, and the partition still has rows
    with pytest.warns(UserWarning, match="zz.parquet"):
        assert bench.spaces() == ["tss"]
    assert bench.datasets("tss") == ["cifar10", "cifar10-valid", "digits"]
    assert bench.hps("tss", "digits") == [12]
    assert bench.bad_files == [folder / "part-99999999999999999999-zz.parquet"]
    assert all(p.files is None for p in bench._epochs.values())  # still no data read


def test_values_seeds_epochs_and_curve_layout(store):
    bench = Benchmark.open(store)
    assert bench.seeds("tss", "digits", 12) == [0, 1]
    assert bench.num_epochs("tss", "digits", 12) == 12
    m = bench.metrics("tss", "digits", 12, 3, epoch=5, seed=1)
    assert m["valid_acc"] == pytest.approx(3 + 0.1 + 0.005, rel=1e-6)
    assert m["test_acc"] == pytest.approx(4.105, rel=1e-6)
    mean = bench.metrics("tss", "digits", 12, 3)  # last epoch, mean over the two seeds
    assert mean["valid_acc"] == pytest.approx(3 + 0.05 + 0.012, rel=1e-6)
    assert set(mean) == set(S.EPOCH_METRICS)
    curve = bench.curve("tss", "digits", 12, "valid_acc")
    assert curve.values.shape == (TSS_SIZE, 2, 12) and curve.values.dtype == np.float32
    assert curve.seeds.tolist() == [0, 1] and curve.epochs.tolist() == list(range(1, 13))
    assert curve.present[:10].all() and not curve.present[10:].any()
    assert np.isnan(curve.values[10:]).all()
    assert bench.curve("tss", "digits", 12, "valid_acc") is not curve  # a view object...
    assert bench.curve("tss", "digits", 12, "valid_acc").values is curve.values  # ...on one cache
    assert not curve.values.flags.writeable
    assert bench.archs("tss", "digits", 12).tolist() == list(range(10))
    # hp as NATS-Bench spells it ("12") or as a NumPy integer finds the same partition
    assert bench.metrics("tss", "digits", "12", 0) == bench.metrics("tss", "digits", np.int16(12), 0)


def test_vectorized_queries_broadcast_and_match_scalar_ones(store):
    bench = Benchmark.open(store)
    archs = np.array([[0, 1], [2, 9]])
    out = bench.metrics("tss", "digits", 12, archs, epoch=np.array([1, 12]), seed=0,
                        columns=["valid_acc", "epoch_time_s"])
    assert set(out) == {"valid_acc", "epoch_time_s"} and out["valid_acc"].shape == (2, 2)
    want = archs + np.array([1, 12]) / 1000
    np.testing.assert_allclose(out["valid_acc"], want, rtol=1e-6)
    for a in (0, 9):
        assert bench.metrics("tss", "digits", 12, np.int64(a))["valid_acc"] == \
            pytest.approx(float(bench.metrics("tss", "digits", 12, [a])["valid_acc"][0]))


def test_random_seed_is_per_query_deterministic_given_rng_and_only_recorded_seeds(tmp_path,
                                                                                  epoch_rows):
    _write(tmp_path, epoch_rows(archs=(0, 1), seeds=(0, 1, 2)))
    _write(tmp_path, epoch_rows(archs=(2,), seeds=(5,)))  # arch 2 only has seed 5
    bench = Benchmark.open(tmp_path)
    archs = np.repeat([0, 1, 2], 200)
    a = bench.metrics("tss", "digits", 12, archs, seed="random", rng=np.random.default_rng(7))
    b = bench.metrics("tss", "digits", 12, archs, seed="random", rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a["valid_acc"], b["valid_acc"])
    seeds = np.round((a["valid_acc"] - archs - 0.012) * 10).astype(int)
    assert set(seeds[:400]) == {0, 1, 2}  # each query draws its own seed
    assert set(seeds[400:]) == {5}
    np.testing.assert_allclose(a["test_acc"], a["valid_acc"] + 1, rtol=1e-6)  # one seed per query


def test_duplicate_keys_across_fragments_resolve_to_the_last_written(tmp_path, epoch_rows):
    _write(tmp_path, epoch_rows(archs=(0, 1)))
    _write(tmp_path, epoch_rows(archs=(1,), offset=100))
    bench = Benchmark.open(tmp_path)
    assert bench.metrics("tss", "digits", 12, 1)["valid_acc"] == pytest.approx(101.012)
    assert bench.metrics("tss", "digits", 12, 0)["valid_acc"] == pytest.approx(0.012)


def test_gaps_stay_nan_and_best_ignores_them(tmp_path, epoch_rows):
    rows = epoch_rows(archs=(0, 1, 2))
    rows.loc[rows.arch_index == 2, "test_acc"] = np.nan
    _write(tmp_path, rows)
    bench = Benchmark.open(tmp_path)
    assert np.isnan(bench.metrics("tss", "digits", 12, 2)["test_acc"])
    assert bench.best("tss", "digits", 12) == (1, pytest.approx(2.012))
    assert bench.best("tss", "digits", 12, "valid_loss", epoch=3)[1] == pytest.approx(2 / 3)
    assert bench.best("tss", "digits", 12, "epoch_time_s")[0] == 0


def test_simulate_train_eval_follows_nats_bench_time_accounting(store, tmp_path_factory,
                                                                epoch_rows):
    bench = Benchmark.open(store)
    valid, latency, cost = bench.simulate_train_eval("tss", 4, "cifar10", hp=12, epoch=3, rng=0)
    seed = round((valid - 4 - 20 - 0.003) * 10)  # feedback came from cifar10-valid (offset 20)
    assert seed in (0, 1) and valid == pytest.approx(24.003 + seed / 10, rel=1e-6)
    assert cost == pytest.approx(3 * 1.04 + 0.5, rel=1e-6)  # 3 epochs of training + 1 evaluation
    assert latency == pytest.approx(3.0)  # latency of the dataset asked for (cifar10)
    again = bench.simulate_train_eval("tss", 4, "cifar10", hp=12, epoch=3, rng=0)
    assert again == (valid, latency, cost)
    valid_d, latency_d, _ = bench.simulate_train_eval("tss", 4, "digits", rng=0)
    assert valid_d == pytest.approx(4.012 + round((valid_d - 4.012) * 10) / 10, rel=1e-6)
    assert np.isnan(latency_d)  # no costs recorded for digits
    # the evaluation time charged is the mean over epochs 1..e, as NATS' valid-per-time
    root = tmp_path_factory.mktemp("evals")
    rows = epoch_rows(archs=(0,), epochs=3)
    rows["eval_time_s"] = [1.0, 2.0, 6.0]
    _write(root, rows)
    _, _, cost = Benchmark.open(root).simulate_train_eval("tss", 0, "digits", epoch=3)
    assert cost == pytest.approx(3 * 1.0 + 3.0)


def test_cost_and_arch_table(store):
    bench = Benchmark.open(store)
    assert bench.cost("tss", "cifar10", 3) == pytest.approx(
        {"params_m": 0.3, "flops_m": 6.0, "latency_ms": 3.0})
    np.testing.assert_allclose(bench.cost("tss", "cifar10", [1, 2])["flops_m"], [2.0, 4.0])
    assert bench.arch_table("tss", "cifar10").arch_index.tolist() == list(range(10))
    with pytest.raises(UserError, match="no architecture costs for tss/digits; .*cifar10"):
        bench.cost("tss", "digits", 1)


@pytest.mark.parametrize("call, message", [
    (lambda b: b.metrics("sss", "digits", 12, 0), "space 'sss' is not in the store.*it has: tss"),
    (lambda b: b.metrics("tss", "mnist", 12, 0), "dataset 'mnist'.*cifar10, cifar10-valid, digits"),
    (lambda b: b.metrics("tss", "digits", 200, 0), "hp=200 .* it has hp 12"),
    (lambda b: b.metrics("tss", "digits", 12, 0, epoch=13), r"epoch 13 outside 1\.\.12"),
    (lambda b: b.metrics("tss", "digits", 12, 0, epoch=0), r"epoch 0 outside 1\.\.12"),
    (lambda b: b.metrics("tss", "digits", 12, 15625), r"arch_index \[15625\] outside 0\.\.15624"),
    (lambda b: b.metrics("tss", "digits", 12, [1, 77]), r"arch_index \[77\] has no rows.*10 of 15625"),
    (lambda b: b.metrics("tss", "digits", 12, "|none~0|"), "must be an integer.*parse"),
    (lambda b: b.metrics("tss", "digits", 12, 0, seed=3), r"seed 3 .* \[0, 1\], 'mean' or 'random'"),
    (lambda b: b.curve("tss", "digits", 12, "accuracy"), "unknown metric.*valid_acc"),
    (lambda b: b.metrics("tss", "digits", 12, 0, seed="random", rng="x"), "rng must be"),
    (lambda b: b.runs("nope"), "experiment 'nope' is not in the store"),
])
def test_bad_queries_say_what_exists(store, call, message):
    with pytest.raises(UserError, match=message):
        call(Benchmark.open(store))


def test_bad_paths(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="does not exist"):
        Benchmark.open(tmp_path / "missing")
    with pytest.raises(UserError, match="is not a store"):
        Benchmark.open(tmp_path)
    monkeypatch.setattr(R, "EMBEDDED_ROOT", tmp_path / "embedded")
    with pytest.raises(UserError, match="embedded benchmark is missing.*python -m benchmark_data build"):
        Benchmark.open(None)


def _corrupt_store(root, epoch_rows):
    _write(root, epoch_rows(archs=(0, 1)))
    (good,) = _write(root, epoch_rows(archs=(2,)))
    bad = good.parent / "part-00000000000000000005-cut.parquet"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return bad


def test_corrupt_fragment_is_skipped_with_a_warning_naming_it(tmp_path, epoch_rows):
    bad = _corrupt_store(tmp_path, epoch_rows)
    bench = Benchmark.open(tmp_path)
    with pytest.warns(UserWarning, match=str(bad.name)):
        archs = bench.archs("tss", "digits", 12)
    assert archs.tolist() == [0, 1, 2] and bench.bad_files == [bad]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, not on every query
        assert bench.metrics("tss", "digits", 12, 2)["valid_acc"] == pytest.approx(2.012)


def test_corrupt_fragment_in_strict_mode_is_an_error_naming_it(tmp_path, epoch_rows):
    bad = _corrupt_store(tmp_path, epoch_rows)
    with pytest.raises(UserError, match=f"corrupt or truncated Parquet file .*{bad.name}"):
        Benchmark.open(tmp_path, strict=True).metrics("tss", "digits", 12, 0)


def test_out_of_range_rows_make_a_file_bad_not_the_store(tmp_path, epoch_rows):
    _write(tmp_path, epoch_rows(archs=(0,)))
    rows = epoch_rows(space="sss", archs=(32767,))
    (path,) = _write(tmp_path, rows)  # a valid sss row...
    target = tmp_path / "epochs/space=tss/dataset=digits/hp=12" / path.name
    path.rename(target)  # ...misfiled under tss, where 32767 is out of range
    bench = Benchmark.open(tmp_path)
    with pytest.warns(UserWarning, match="outside 0..15624"):
        assert bench.archs("tss", "digits", 12).tolist() == [0]


def test_reader_survives_compaction_between_its_reads(tmp_path, epoch_rows):
    for a in range(4):
        _write(tmp_path, epoch_rows(archs=(a,)))
    _write(tmp_path, epoch_rows(archs=(3,), offset=100))
    bench = Benchmark.open(tmp_path)
    assert bench.seeds("tss", "digits", 12) == [0]  # snapshot of 5 fragments taken here
    W.compact(tmp_path)  # ...which compaction now deletes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = bench.metrics("tss", "digits", 12, np.arange(4))["valid_acc"]
    np.testing.assert_allclose(values, [0.012, 1.012, 2.012, 103.012], rtol=1e-6)
    assert bench.bad_files == []


def test_runs_table_round_trip(tmp_path):
    rows = pd.DataFrame({"experiment": "e1", "searcher": "rea", "space": "tss",
                         "dataset": "cifar10", "budget_s": 2e4, "run_seed": [0, 0, 1],
                         "event": [0, 1, 0], "sim_time_s": [10.0, 20.0, 5.0],
                         "arch_index": [5, 6, 7], "feedback": [80.0, 81.0, 70.0]})
    _write(tmp_path, rows, "runs")
    _write(tmp_path, rows.iloc[[1]].assign(feedback=99.0), "runs")
    runs = Benchmark.open(tmp_path).runs()
    assert runs.feedback.tolist() == pytest.approx([80.0, 99.0, 70.0])
    assert runs.columns.tolist() == S.SCHEMAS["runs"].names
    assert runs.budget_evals.isna().all()


def test_scalar_and_vectorized_simulate_train_eval_draw_the_same_seeds(store):
    bench = Benchmark.open(store)
    archs = [3, 7, 7, 1, 0, 9]
    one_by_one = [bench.simulate_train_eval("tss", a, "cifar10", rng=rng)
                  for rng in [np.random.default_rng(11)] for a in archs]
    valid, latency, cost = bench.simulate_train_eval("tss", np.array(archs), "cifar10",
                                                     rng=np.random.default_rng(11))
    np.testing.assert_allclose([v for v, _, _ in one_by_one], valid, rtol=1e-6)
    np.testing.assert_allclose([c for _, _, c in one_by_one], cost, rtol=1e-9)
    np.testing.assert_allclose(latency, 3.0)
    assert len({round(v % 1, 3) for v, _, _ in one_by_one}) == 2  # both seeds were drawn


@pytest.mark.parametrize("n_fragments", [3, 12])  # 12 > EAGER_FILES: all columns in one pass
def test_every_read_path_gives_the_same_arrays(tmp_path, epoch_rows, n_fragments):
    """Unsorted fragments with duplicates, then the compacted, complete (no-copy) partition."""
    rows = epoch_rows(archs=range(TSS_SIZE), hp=2, seeds=(0, 3))
    rows = rows.sample(frac=1.0, random_state=0)  # fragments in no particular order
    for chunk in np.array_split(np.arange(len(rows)), n_fragments):
        _write(tmp_path, rows.iloc[chunk])
    _write(tmp_path, epoch_rows(archs=(7,), hp=2, seeds=(3,), offset=50))  # overrides arch 7
    want = rows.assign(valid_acc=np.where((rows.arch_index == 7) & (rows.seed == 3),
                                          rows.valid_acc + 50, rows.valid_acc))
    dense = np.zeros((TSS_SIZE, 2, 2), np.float32)
    dense[want.arch_index, (want.seed == 3).astype(int), want.epoch - 1] = want.valid_acc
    before = Benchmark.open(tmp_path).curve("tss", "digits", 2, "valid_acc").values
    np.testing.assert_array_equal(before, dense)
    assert W.compact(tmp_path).compacted == 1
    after = Benchmark.open(tmp_path).curve("tss", "digits", 2, "valid_acc")
    np.testing.assert_array_equal(after.values, dense)
    assert after.present.all() and after.seeds.tolist() == [0, 3]


# --- partitions whose files are all damaged ---------------------------------------------------
def damaged_store(root, epoch_rows):
    """digits hp=12 good (plus a truncated copy of its file), digits hp=200 holding only a
    foreign Parquet file (another schema), cifar10 hp=12 holding only a truncated file."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    (good,) = _write(root, epoch_rows(archs=range(4)))
    cut = good.parent / "part-00000000000000000001-cut.parquet"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = root / "epochs/space=tss/dataset=digits/hp=200/part-00000000000000000002-x.parquet"
    foreign.parent.mkdir(parents=True)
    pq.write_table(pa.table({"name": ["a", "b"], "score": [1.0, 2.0]}), foreign)
    (c10,) = _write(root, epoch_rows(dataset="cifar10", archs=range(4)))
    c10.write_bytes(c10.read_bytes()[:100])
    return good, cut, foreign, c10


def test_partitions_with_only_damaged_files_are_not_listed_and_name_their_files(tmp_path,
                                                                                epoch_rows):
    _, cut, foreign, c10 = damaged_store(tmp_path, epoch_rows)
    bench = Benchmark.open(tmp_path)
    with pytest.warns(UserWarning) as caught:
        assert bench.datasets("tss") == ["digits"]
        assert bench.hps("tss", "digits") == [12]  # hp=200 has no readable rows: not listed
    for path in (cut, foreign, c10):
        assert any(f"skipping {path}: " in str(w.message) for w in caught), path
    assert set(bench.bad_files) == {cut, foreign, c10}
    assert "lacks the column(s) arch_index, seed, epoch" in bench.bad_reasons[foreign]
    assert "corrupt or truncated Parquet file" in bench.bad_reasons[c10]
    # What a run does not need does not stop it: the good partition answers in full
    curve = bench.curve("tss", "digits", 12, "valid_acc")
    assert curve.values.shape == (TSS_SIZE, 1, 12) and bench.archs("tss", "digits", 12).tolist() == [0, 1, 2, 3]
    assert bench.simulate_train_eval("tss", 2, "digits", rng=0)[0] == pytest.approx(2.012, rel=1e-6)
    # What a run needs is an error naming the damaged file, never a zero-size array
    for call in (lambda: bench.curve("tss", "digits", 200, "valid_acc"),
                 lambda: bench.metrics("tss", "digits", 200, 1),
                 lambda: bench.time_cost_curve("tss", "digits", 200),
                 lambda: bench.num_epochs("tss", "digits", 200),
                 lambda: bench.simulate_train_eval("tss", 1, "digits", hp=200)):
        with pytest.raises(UserError, match=r"epochs partition space=tss/dataset=digits/hp=200 "
                                             r"has no readable rows: its file\(s\) .*x\.parquet "
                                             r"are damaged \(file .* is not a 'epochs' fragment"):
            call()
    with pytest.raises(UserError, match=r"dataset 'cifar10' of space 'tss' cannot be used: .*"
                                         r"cifar10/hp=12 has no readable rows: .*corrupt or truncated"):
        bench.hps("tss", "cifar10")
    with pytest.raises(UserError, match=r"space=tss/dataset=cifar10/hp=12 has no readable rows"):
        bench.metrics("tss", "cifar10", 12, 0)


def test_a_space_with_only_damaged_partitions_names_them(tmp_path):
    folder = tmp_path / "epochs/space=sss/dataset=digits/hp=12"
    folder.mkdir(parents=True)
    (folder / "part-00000000000000000001-x.parquet").write_bytes(b"PAR1 not really")
    bench = Benchmark.open(tmp_path)
    with pytest.warns(UserWarning, match="x.parquet"):
        with pytest.raises(UserError, match=r"space 'sss' of the store .* cannot be used: epochs "
                                             r"partition space=sss/dataset=digits/hp=12 has no "
                                             r"readable rows: .*x\.parquet are damaged"):
            bench.datasets("sss")


def test_a_damaged_partition_in_strict_mode_is_an_error_at_listing(tmp_path, epoch_rows):
    _, cut, _, _ = damaged_store(tmp_path, epoch_rows)
    bench = Benchmark.open(tmp_path, strict=True)
    with pytest.raises(UserError, match="corrupt or truncated Parquet file .*"):
        bench.hps("tss", "digits")


def test_a_partition_whose_files_hold_no_rows_is_not_listed(tmp_path, epoch_rows):
    _write(tmp_path, epoch_rows(archs=range(2)))
    empty = tmp_path / "epochs/space=tss/dataset=digits/hp=200"
    empty.mkdir(parents=True)
    import pyarrow.parquet as pq
    pq.write_table(S.data_schema("epochs").empty_table(), empty / "part-00000000000000000001-e.parquet")
    bench = Benchmark.open(tmp_path)
    assert bench.hps("tss", "digits") == [12] and bench.bad_files == []
    with pytest.raises(UserError, match="hp=200 .* holds no rows; re-run the step that writes it"):
        bench.curve("tss", "digits", 200, "test_acc")
