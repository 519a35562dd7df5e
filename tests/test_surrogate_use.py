"""Surrogate rows in use (issue #11, part 3): the reader merges them into the table they complete
and labels them, the task view, simulate mode and the NATS facade say where a result came from
them, ``--no-surrogate`` leaves them out, and a partial table without them is refused unless
``--allow-gaps``. Stores are written in tmp_path through the project's writer: a size-space table
(hp=2) with a handful of trained architectures, and surrogate rows predicting every one of them
(the trained ones too, as a stale file would after the builder trained more)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from cli_fixtures import orchestrate_cli
from conftest import make_epoch_rows

from benchmark_data import schema as S
from benchmark_data import writer as W
from benchmark_data.__main__ import _run as store_cli
from benchmark_data.nats_compat import create
from benchmark_data.reader import Benchmark
from benchmark_data.task import cv_kendall, describe_surrogate, nats_time_cost
from spaces import get_space
from spaces.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SSS = get_space("sss")
TRAINED = np.arange(0, SSS.size, 64)  # 512 trained architectures, 1.6 % of the space
TWO_SEEDS = TRAINED[:8]                # trained with seeds 0 and 1
PREDICTED = np.setdiff1d(np.arange(SSS.size), TRAINED)
MODEL = "extra-trees (scikit-learn 1.5.2)"
# What `python -m benchmark_data surrogate` records: every candidate's k-fold scores, the chosen one
CV = {"folds": 5, "chosen": "extra-trees", "candidates": [
    {"model": "knn", "fit_s": 0.1, "valid_acc": {"kendall_tau": 0.4, "spearman_rho": 0.5, "rmse": 2.0},
     "test_acc": {"kendall_tau": 0.3, "spearman_rho": 0.4, "rmse": 2.5}},
    {"model": "extra-trees", "fit_s": 0.2, "valid_acc": {"kendall_tau": 0.71, "spearman_rho": 0.85, "rmse": 1.0},
     "test_acc": {"kendall_tau": 0.69, "spearman_rho": 0.83, "rmse": 1.1}}]}
CV_TEXT = "extra-trees (scikit-learn 1.5.2), CV Kendall tau 0.71 valid acc, 0.69 test acc"
OFFSET = 0.5  # a prediction's valid_acc = arch - 0.1 (seed -1) + epoch/1000 + OFFSET: told apart from training


def surrogate_rows(archs, hp=2, space="sss"):
    rows = make_epoch_rows(space=space, hp=hp, archs=archs, seeds=(S.SURROGATE_SEED,), offset=OFFSET)
    return rows.assign(status=S.SURROGATE_STATUS)


def surrogate_meta(recipe=None):
    return S.provenance("surrogate", recipe=recipe, extra={"surrogate_model": MODEL, "surrogate_cv": json.dumps(CV)})


def predicted_valid(arch, epoch=2):
    return arch - 0.1 + epoch / 1000 + OFFSET


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Path, Path]:
    """(partial, completed): the trained rows (and their costs) alone, and the same plus surrogate
    rows for every architecture of the space."""
    partial = tmp_path_factory.mktemp("partial")
    W.write_fragment(partial, "epochs", pd.concat([make_epoch_rows(space="sss", hp=2, archs=TRAINED),
                                                   make_epoch_rows(space="sss", hp=2, archs=TWO_SEEDS, seeds=(1,))]),
                     metadata=S.provenance("epochs", recipe={"name": "synthetic"}, skeleton={"N": 1}))
    W.write_fragment(partial, "archs", pd.DataFrame({"space": "sss", "dataset": "digits", "arch_index": TRAINED,
                                                     "params_m": 0.1, "flops_m": 1.0 + TRAINED / 1e4,
                                                     "latency_ms": 2.0}), metadata=S.provenance("archs"))
    completed = tmp_path_factory.mktemp("completed")
    shutil.copytree(partial, completed, dirs_exist_ok=True)
    W.write_fragment(completed, "surrogate", surrogate_rows(np.arange(SSS.size)), metadata=surrogate_meta())
    return partial, completed


# --- the reader --------------------------------------------------------------------------------
def test_the_reader_merges_predictions_and_drops_those_of_trained_archs(stores):
    bench = Benchmark.open(stores[1])
    assert bench.surrogate is True
    curve = bench.curve("sss", "digits", 2, "valid_acc")
    assert curve.seeds.tolist() == [-1, 0, 1] and curve.present.all()
    # every arch is wholly trained or wholly predicted: the stale predictions of trained archs are gone
    np.testing.assert_array_equal(np.flatnonzero(curve.surrogate), PREDICTED)
    np.testing.assert_array_equal(bench.surrogate_archs("sss", "digits", 2), PREDICTED)
    assert np.isnan(curve.values[TRAINED, 0]).all()  # seed -1 of a trained arch: no value
    assert (curve.seed_present[PREDICTED] == [True, False, False]).all()
    np.testing.assert_allclose(curve.values[PREDICTED, 0, 1], predicted_valid(PREDICTED), rtol=1e-6)
    np.testing.assert_array_equal(bench.archs("sss", "digits", 2), np.arange(SSS.size))
    # seed "mean" and "random" of a trained arch read its trainings only; of a predicted one, the prediction
    a = int(TWO_SEEDS[3])
    assert bench.metrics("sss", "digits", 2, a, seed="mean")["valid_acc"] == pytest.approx(a + 0.05 + 0.002)
    drawn = {round(bench.metrics("sss", "digits", 2, a, seed="random", rng=r)["valid_acc"] - a, 3) for r in range(20)}
    assert drawn == {0.002, 0.102}
    assert bench.metrics("sss", "digits", 2, 1, seed="random", rng=0)["valid_acc"] == pytest.approx(predicted_valid(1))
    assert bench.uses_surrogate("sss", "digits", 2) and bench.has_surrogate_rows("sss", "digits", 2)
    info = bench.surrogate_info("sss", "digits", 2)
    assert info["surrogate_model"] == MODEL and json.loads(info["surrogate_cv"]) == CV
    # what was trained is still told from the epochs files alone
    assert bench.metadata("sss", "digits", 2)["recipe"] == '{"name": "synthetic"}'


def test_surrogate_false_reads_trained_rows_only(stores):
    bench = Benchmark.open(stores[1], surrogate=False)
    assert bench.surrogate is False
    curve = bench.curve("sss", "digits", 2, "valid_acc")
    assert curve.seeds.tolist() == [0, 1] and not curve.surrogate.any()
    np.testing.assert_array_equal(bench.archs("sss", "digits", 2), TRAINED)
    assert bench.surrogate_info("sss", "digits", 2) is None and not bench.uses_surrogate("sss", "digits", 2)
    assert bench.has_surrogate_rows("sss", "digits", 2)  # there, but left out
    with pytest.raises(UserError, match=r"arch_index \[1\] has no rows in space=sss/dataset=digits/hp=2"):
        bench.metrics("sss", "digits", 2, 1)


def test_a_trained_arch_never_mixes_with_its_stale_prediction_and_a_plain_partition_stays_zero_copy(tmp_path):
    W.write_fragment(tmp_path, "surrogate", surrogate_rows([5, 6, 7]), metadata=surrogate_meta())
    W.write_fragment(tmp_path, "epochs", make_epoch_rows(space="sss", hp=2, archs=[6], epochs=1),
                     metadata=S.provenance("epochs"))
    curve = Benchmark.open(tmp_path).curve("sss", "digits", 2, "valid_acc")
    # arch 6 trained one epoch only: its second epoch stays a gap, not the model's value
    assert curve.surrogate[[5, 6, 7]].tolist() == [True, False, True]
    assert curve.values[6, 1, 0] == pytest.approx(6.001) and np.isnan(curve.values[6, :, 1]).all()
    # a partition with no surrogate rows beside it, compacted and complete, is read without a copy
    plain = tmp_path / "plain"
    W.write_fragment(plain, "epochs", make_epoch_rows(space="sss", hp=1, archs=range(SSS.size), epochs=1),
                     metadata=S.provenance("epochs"))
    W.compact(plain)
    bench = Benchmark.open(plain)
    bench.curve("sss", "digits", 1, "valid_acc")
    part = bench._epochs[("sss", "digits", 1)]  # white-box: the layout's "no copy" markers
    assert part.lin is None and part.keep is None and part.surrogate_folder is None


def test_a_surrogate_partition_without_epochs_beside_it_is_ignored_and_info_says_so(stores, tmp_path, capsys):
    root = tmp_path / "store"
    shutil.copytree(stores[1], root)
    W.write_fragment(root, "surrogate", surrogate_rows([1, 2], hp=3), metadata=surrogate_meta())
    bench = Benchmark.open(root)
    assert bench.hps("sss", "digits") == [2] and bench.ignored_surrogates == [("sss", "digits", 3)]
    assert store_cli(["info", "--store", str(root)]) == 0
    out = capsys.readouterr().out
    # the epochs line counts what was trained; the surrogate lines what a reader uses, and by which model
    assert "space=sss dataset=digits hp=2: 1 file(s), 1040 row(s), 512/32768 archs, seeds [0, 1]" in out
    assert (f"surrogate: 2 partition(s)\n  space=sss dataset=digits hp=2: 1 file(s), {2 * SSS.size} row(s), "
            f"{PREDICTED.size}/32768 archs predicted (those never trained)\n    model: {CV_TEXT}\n") in out
    assert "space=sss dataset=digits hp=3: 1 file(s), 6 row(s) - ignored: no epochs partition beside it" in out


def test_a_damaged_surrogate_file_is_skipped_like_a_damaged_epochs_file(stores, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(stores[1], root)
    folder = S.partition_path(root, "surrogate", {"space": "sss", "dataset": "digits", "hp": 2})
    good = S.list_fragments(folder)[0]
    cut = folder / "part-00000000000000000001-cut.parquet"
    cut.write_bytes(good.read_bytes()[:200])
    # a "prediction" of one seed: a prediction is of the mean over seeds (seed -1), so the file is bad
    (seeded,) = W.write_fragment(tmp_path / "other", "surrogate", surrogate_rows([3]).assign(seed=0),
                                 metadata=surrogate_meta())
    shutil.move(seeded, folder / seeded.name)
    with pytest.warns(UserWarning) as caught:
        bench = Benchmark.open(root)
        assert bench.surrogate_archs("sss", "digits", 2).size == PREDICTED.size  # the good file still serves
    said = " ".join(str(w.message) for w in caught)
    assert cut.name in said and seeded.name in said
    assert set(bench.bad_files) == {cut, folder / seeded.name}
    assert "seeds other than -1" in bench.bad_reasons[folder / seeded.name]
    with pytest.raises(UserError, match="cut.parquet"):
        Benchmark.open(root, strict=True).curve("sss", "digits", 2, "valid_acc")


def test_predictions_are_never_rows_of_epochs(stores):
    """Status, table and metadata keep them apart: the writer refuses a prediction's status in
    epochs and a training's in surrogate, and a plain read of epochs/ meets no predicted row."""
    with pytest.raises(UserError, match=r"unknown status value\(s\) \['surrogate'\]; allowed: ok"):
        W.write_fragment(stores[0], "epochs", surrogate_rows([1]), metadata=S.provenance("epochs"))
    with pytest.raises(UserError, match=r"unknown status value\(s\) \['ok'\]; allowed: surrogate"):
        W.write_fragment(stores[0], "surrogate", make_epoch_rows(space="sss", hp=2, archs=[1]),
                         metadata=S.provenance("surrogate"))
    epochs = pd.read_parquet(stores[1] / "epochs")
    assert set(epochs["status"]) == {"ok"} and epochs["arch_index"].nunique() == TRAINED.size
    predicted = pd.read_parquet(stores[1] / "surrogate")
    assert set(predicted["status"]) == {"surrogate"} and set(predicted["seed"]) == {-1}
    meta = pq.read_schema(S.list_fragments(stores[1] / "surrogate/space=sss/dataset=digits/hp=2")[0]).metadata
    assert meta[b"surrogate_model"] == MODEL.encode() and meta[b"table"] == b"surrogate"


def test_compaction_keeps_the_two_tables_apart(stores, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(stores[1], root)
    W.write_fragment(root, "surrogate", surrogate_rows([1], hp=2).assign(valid_acc=-5.0), metadata=surrogate_meta())
    before = Benchmark.open(root).curve("sss", "digits", 2, "valid_acc").values
    report = W.compact(root)
    assert report.compacted == 1  # the surrogate partition; epochs (one file) stays as it is
    assert len(pd.read_parquet(root / "epochs")) == TRAINED.size * 2 + TWO_SEEDS.size * 2
    after = Benchmark.open(root).curve("sss", "digits", 2, "valid_acc")
    np.testing.assert_array_equal(after.values, before)
    assert after.values[1, 0, 1] == -5.0  # the later prediction won, in its own table


# --- the task view -------------------------------------------------------------------------------
def test_the_task_marks_predicted_feedback_and_final_values_and_notes_them(stores):
    task = Benchmark.open(stores[1]).task("sss")
    np.testing.assert_array_equal(np.flatnonzero(task.surrogate_feedback), PREDICTED)
    np.testing.assert_array_equal(np.flatnonzero(task.surrogate_final), PREDICTED)
    assert task.surrogate_model == MODEL and task.surrogate_cv == CV and task.uses_surrogate
    (note,) = [n for n in task.notes if n.startswith("surrogate:")]
    assert note == (f"surrogate: the feedback of {PREDICTED.size:,} of 32,768 architectures (sss/digits hp=2) and "
                    f"{PREDICTED.size:,} final values (sss/digits hp=2) are predictions, not trainings: {CV_TEXT}; "
                    "--no-surrogate leaves them out")
    # a trained store: nothing predicted, nothing said
    trained = Benchmark.open(stores[0]).task("sss", allow_gaps=True)
    assert not trained.uses_surrogate and trained.surrogate_model is None and trained.surrogate_cv is None
    assert not trained.surrogate_feedback.any() and not any("surrogate:" in n for n in trained.notes)


def test_a_partial_table_is_refused_with_its_coverage_and_the_command_that_completes_it(stores):
    bench = Benchmark.open(stores[0])
    with pytest.raises(UserError) as refused:
        bench.task("sss")
    assert str(refused.value) == (
        "sss/digits hp=2 covers 512 of 32,768 architectures (1.6 %): a search would get no value for the rest. "
        "No recipe of this store covers the space. Complete it with a surrogate model's predictions: "
        f"`python -m benchmark_data surrogate --store {stores[0]} --space sss --dataset digits --hp 2`, or pass "
        "--allow-gaps to search it as it is (a proposal without data is a failed evaluation that costs nothing).")
    task = bench.task("sss", allow_gaps=True)
    assert bench.task("sss", allow_gaps=True) is task  # cached, allow_gaps in the key
    assert task.notes == [
        "sss/digits hp=2 covers 512 of 32,768 architectures (1.6 %); --allow-gaps: a proposal without data is a "
        "failed evaluation that costs nothing",
        "no hp=90 recipe for sss/digits: the final value is test_acc under hp=2, the longest recipe with data "
        "(--allow-gaps)"]
    assert np.isnan(task.feedback[PREDICTED]).all() and not np.isnan(task.final[TRAINED]).any()


def test_cv_figures_are_read_from_what_the_file_records():
    assert cv_kendall(CV, MODEL) == [("valid acc", 0.71), ("test acc", 0.69)]
    assert cv_kendall({"extra-trees": {"test_acc": {"kendall_tau": 0.5}}}, MODEL) == [("test acc", 0.5)]
    assert describe_surrogate(MODEL, CV) == CV_TEXT
    assert describe_surrogate(None, None) == "an unnamed model, no cross-validated Kendall tau recorded"
    assert describe_surrogate("gp", {"rmse": 1.0}) == "gp, no cross-validated Kendall tau recorded"


# --- simulate mode ------------------------------------------------------------------------------
def test_simulate_refuses_a_partial_table_then_searches_it_with_allow_gaps(stores, tmp_path):
    partial = stores[0]
    args = ("simulate", "--searcher", "random", "--space", "sss", "--store", str(partial), "--budget", "300ev",
            "--out", str(tmp_path / "out"), "--experiment", "gaps", "--quiet")
    code, out, err = orchestrate_cli(*args)
    assert code == 2 and "Traceback" not in err
    assert "covers 512 of 32,768 architectures (1.6 %)" in err
    assert f"`python -m benchmark_data surrogate --store {partial} --space sss --dataset digits --hp 2`" in err
    assert "or pass --allow-gaps to search it as it is" in err
    assert not (tmp_path / "out").exists()
    code, out, err = orchestrate_cli(*args, "--allow-gaps")
    assert code == 0, err
    assert ("note: sss/digits hp=2 covers 512 of 32,768 architectures (1.6 %); --allow-gaps: a proposal without "
            "data is a failed evaluation that costs nothing") in out
    assert "surrogate," not in out  # no prediction was used: nothing to share out
    df = Benchmark.open(tmp_path / "out").runs("gaps")
    has_data = np.isin(df["arch_index"], TRAINED)
    assert len(df) == 300 and has_data.any() and not has_data.all()
    assert np.isnan(df["feedback"][~has_data]).all() and not np.isnan(df["feedback"][has_data]).any()
    # no prediction anywhere; no incumbent (null) until the first evaluation with data
    assert not df["surrogate"].any() and not df["best_surrogate"].fillna(False).any()
    assert df["best_surrogate"].isna().tolist() == (df["best_arch_index"] < 0).tolist()
    assert (df["best_arch_index"] < 0).any()
    # a failed evaluation costs nothing: the clock is the sum of the evaluations with data
    charged = [float(nats_time_cost(np.full(2, 1 + a / 100), np.full(2, 0.5))[-1]) for a in df["arch_index"][has_data]]
    assert df["sim_time_s"].iloc[-1] == pytest.approx(sum(charged), rel=1e-6)


def test_simulate_on_a_completed_table_labels_rows_and_prints_the_shares(stores, tmp_path):
    completed = stores[1]
    code, out, err = orchestrate_cli("simulate", "--searcher", "random", "--space", "sss", "--store",
                                 str(completed), "--budget", "80ev", "--runs", "3", "--out", str(tmp_path / "out"),
                                 "--experiment", "sur", "--quiet")
    assert code == 0, err
    df = Benchmark.open(tmp_path / "out").runs("sur")
    mask = np.zeros(SSS.size, bool)
    mask[PREDICTED] = True
    np.testing.assert_array_equal(df["surrogate"].to_numpy(bool), mask[df["arch_index"]])
    np.testing.assert_array_equal(df["best_surrogate"].to_numpy(bool), mask[df["best_arch_index"]])
    last = df.groupby("run_seed").tail(1)
    evals, finals = df["surrogate"].mean(), last["best_surrogate"].mean()
    assert (f"surrogate, random: {100 * evals:.1f} % of evaluations, {100 * finals:.1f} % of final values "
            f"({CV_TEXT})") in out
    assert f"note: surrogate: the feedback of {PREDICTED.size:,} of 32,768 architectures" in out
    assert "a surrogate prediction" in out  # the best architecture's final value, labelled
    meta = pq.read_schema(next((tmp_path / "out" / "runs").rglob("*.parquet"))).metadata
    record = json.loads(meta[b"surrogate"])
    assert record["model"] == MODEL and record["cv"] == CV and record["feedback_archs"] == PREDICTED.size
    assert record["shares"] == {"random": {"evaluations": pytest.approx(evals), "final_values": pytest.approx(finals)}}
    # the same store without its predictions is a partial table again: refused, and told why
    code, out, err = orchestrate_cli("simulate", "--searcher", "random", "--space", "sss", "--store",
                                 str(completed), "--budget", "80ev", "--out", str(tmp_path / "out2"), "--no-surrogate")
    assert code == 2 and "covers 512 of 32,768 architectures (1.6 %)" in err
    assert "The store holds surrogate predictions for sss/digits hp=2, left out here (--no-surrogate" in err
    assert "drop --no-surrogate to use them" in err and not (tmp_path / "out2").exists()


@pytest.mark.parametrize("args, message", [
    (["simulate", "--no-surrogate=yes"], "argument --no-surrogate: ignored explicit argument 'yes'"),
    (["simulate", "--allow-gaps=1"], "argument --allow-gaps: ignored explicit argument '1'"),
    (["train", "--allow-gaps"], "--allow-gaps is a flag of `orchestrate.py simulate` and `orchestrate.py oneshot`"),
    (["train", "--no-surrogate"], "--no-surrogate is a flag of `orchestrate.py simulate` and `orchestrate.py "
                                  "oneshot`, not of train"),
])
def test_bad_input_for_the_new_flags(tmp_path, args, message):
    code, _, err = orchestrate_cli(*args, "--out", str(tmp_path / "out"))
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_oneshot_scoring_takes_the_same_flags(tmp_path):
    """One-shot scores derived cells through the task view: a partial table is refused the same
    way before anything runs, and --allow-gaps lets it through with the coverage noted."""
    from orchestrator.cli import parse_args
    from orchestrator.modes import oneshot

    W.write_fragment(tmp_path / "store", "epochs", make_epoch_rows(hp=2, archs=range(20)),
                     metadata=S.provenance("epochs", skeleton={"C": 4, "N": 1}))
    args = ["oneshot", "--searcher", "gdas", "--dataset", "digits", "--store", str(tmp_path / "store"),
            "--out", str(tmp_path / "out")]
    code, _, err = orchestrate_cli(*args)
    assert code == 2 and "tss/digits hp=2 covers 20 of 15,625 architectures (0.1 %)" in err
    assert "python -m benchmark_data surrogate --store" in err and "--allow-gaps" in err
    run = oneshot.settings_from_args(parse_args([*args, "--allow-gaps"]))
    assert run.scoring.notes[0].startswith("tss/digits hp=2 covers 20 of 15,625 architectures (0.1 %); --allow-gaps")
    assert not (tmp_path / "out").exists()


# --- the NATS facade and the store CLI -------------------------------------------------------------
def test_the_facade_labels_predictions_and_warns_once(stores, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the project-index warning
        api = create(stores[1], "sss")
    trained, predicted = int(TRAINED[5]), int(PREDICTED[5])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert api.get_more_info(trained, "digits", hp=2)["surrogate"] is False
        assert caught == []  # a trained answer says nothing
        info = api.get_more_info(predicted, "digits", hp=2, is_random=False)
        api.get_more_info(predicted + 1, "digits", hp=2)
    (warning,) = caught  # once per facade
    assert issubclass(warning.category, UserWarning)
    assert CV_TEXT in str(warning.message) and "create(..., surrogate=False) leaves them out" in str(warning.message)
    assert info["surrogate"] is True and info["valid-accuracy"] == pytest.approx(predicted_valid(predicted))
    results = api.query_meta_info_by_index(predicted, hp=2)
    assert results.surrogate and results.get_dataset_seeds("digits") == [-1]
    assert results.query("digits", -1).surrogate and "surrogate prediction" in repr(results.query("digits", -1))
    assert not api.query_meta_info_by_index(trained, hp=2).surrogate
    valid, latency, cost, _ = api.simulate_train_eval(predicted, "digits", hp=2)
    assert valid == pytest.approx(predicted_valid(predicted)) and latency is None  # never built: never measured
    assert cost == pytest.approx(float(nats_time_cost(np.full(2, 1 + predicted / 100), np.full(2, 0.5))[-1]))
    assert api.get_cost_info(predicted, "digits", hp=2)["flops"] is None
    best, _ = api.find_best("digits", "test", hp=2, flop_max=10)
    assert best == TRAINED[-1]  # predictions have no measured FLOPs: they never pass a limit
    capsys.readouterr()
    api.show(predicted)
    assert f"digits         surrogate prediction, not a training: {CV_TEXT}" in capsys.readouterr().out


def test_the_facade_without_predictions_answers_as_nats_bench(stores):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api = create(stores[1], "sss", surrogate=False)
        plain = create(stores[0], "sss")
    assert "surrogate" not in api.get_more_info(int(TRAINED[5]), "digits", hp=2)
    assert "surrogate" not in plain.get_more_info(int(TRAINED[5]), "digits", hp=2)
    with pytest.raises(UserError, match="the store has no results of architecture 1 on digits with hp=2"):
        api.get_more_info(1, "digits", hp=2)
    with pytest.raises(UserError, match="surrogate must be True or False, got 1"):
        create(stores[1], "sss", surrogate=1)


def test_query_labels_a_prediction_and_no_surrogate_leaves_it_out(stores, capsys):
    assert store_cli(["query", "--store", str(stores[1]), "--space", "sss", "--arch", "1"]) == 0
    out = capsys.readouterr().out
    assert f"source: surrogate prediction, not a training ({CV_TEXT}); --no-surrogate leaves it out" in out
    assert f"valid_acc: {predicted_valid(1):.6g}\n" in out
    assert "latency_ms: n/a" in out  # never built, so never measured
    assert store_cli(["query", "--store", str(stores[1]), "--space", "sss", "--arch", str(TRAINED[1])]) == 0
    assert "source:" not in capsys.readouterr().out
    assert store_cli(["query", "--store", str(stores[1]), "--space", "sss", "--arch", "1", "--no-surrogate"]) == 2
    assert "error: arch_index [1] has no rows in space=sss/dataset=digits/hp=2" in capsys.readouterr().err
    assert store_cli(["query", "--store", str(stores[1]), "--arch", "1", "--no-surrogate=no"]) == 2
    assert "argument --no-surrogate: ignored explicit argument 'no'" in capsys.readouterr().err


def test_bad_values_of_the_python_flags():
    with pytest.raises(UserError, match="surrogate must be True or False, got 'no'"):
        Benchmark.open(None, surrogate="no")


def test_allow_gaps_must_be_a_bool(stores):
    with pytest.raises(UserError, match="allow_gaps must be True or False, got 'yes'"):
        Benchmark.open(stores[0]).task("sss", allow_gaps="yes")


# --- what was trained: the builder --------------------------------------------------------------------
def test_a_build_after_a_surrogate_fit_still_trains_the_predicted_archs(tmp_path, capsys):
    """The builder asks the epochs table what is done (store_io.stored_epochs, check_store): a
    prediction of an arch, even with another recipe's provenance, never counts as its training."""
    from trainables import builder
    from trainables.store_io import stored_epochs

    out = tmp_path / "store"
    W.write_fragment(out, "surrogate", surrogate_rows([3877, 3878], space="tss"),
                     metadata=surrogate_meta(recipe={"name": "h0", "hash": "another-recipe"}))
    assert stored_epochs(out, "tss", "digits", 2).empty
    archs = tmp_path / "archs.txt"
    archs.write_text("3877\n")
    argv = ["--space", "tss", "--dataset", "digits", "--recipe", "h0", "--epochs", "2", "--seeds", "0",
            "--archs", str(archs), "--C", "4", "--N", "1", "--store", str(out), "--workers", "0", "--quiet"]
    assert builder.main(argv) == 0
    trained = pd.read_parquet(out / "epochs")
    assert trained["arch_index"].unique().tolist() == [3877] and set(trained["status"]) == {"ok"}
    bench = Benchmark.open(out)
    assert bench.surrogate_archs("tss", "digits", 2).tolist() == [3878]  # 3877's prediction is dropped
    got = bench.metrics("tss", "digits", 2, 3877)["valid_acc"]
    assert got == pytest.approx(trained.sort_values("epoch")["valid_acc"].iloc[-1])
    capsys.readouterr()
    assert builder.main(argv) == 0
    assert "nothing left to train: all 1 trainings" in capsys.readouterr().out
