"""Surrogate completion (``python -m benchmark_data surrogate``): fitting, labelling, refits, refusals.

The stores here are synthetic size-space tables whose curves are a smooth function of the channel
counts plus seeded noise, so a working surrogate must rank the held-out architectures well and a
broken one cannot.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from surrogate_fixtures import HP, SSS, synthetic_rows

from benchmark_data import schema as S
from benchmark_data.__main__ import main as bd_main
from benchmark_data.cli import run_cli
from benchmark_data.reader import Benchmark
from benchmark_data.surrogate import features, fit, training_set
from benchmark_data.surrogate.training import feature_names
from benchmark_data.writer import write_fragment
from spaces import get_space
from spaces.errors import UserError


def make_store(root, n_archs: int = 150, seed: int = 0):
    write_fragment(root, "epochs", synthetic_rows(n_archs, seed),
                   metadata=S.provenance(recipe={"name": "synthetic", "epochs": HP}, skeleton={"N": 1},
                                         dataset_fingerprint="fp-synthetic"))
    return root


def run(capsys, *argv):
    code = run_cli(bd_main, ["surrogate", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def surrogate_files(root):
    return S.list_fragments(S.partition_path(root, "surrogate", {"space": "sss", "dataset": "digits", "hp": HP}))


def test_completion_writes_labelled_predictions_for_every_missing_architecture(tmp_path, capsys):
    store = make_store(tmp_path / "s")
    code, out, _ = run(capsys, "--store", str(store), "--space", "sss", "--model", "random-forest",
                       "--folds", "3", "--quiet")
    assert code == 0, out
    assert "training set: 150 trained architectures" in out and "3-fold cross-validation" in out
    assert "random-forest *" in out and "wrote 32,618 architectures x 4 epochs" in out
    (path,) = surrogate_files(store)
    tbl = pq.read_table(path)
    assert tbl.num_rows == (SSS.size - 150) * HP
    assert set(tbl["status"].to_pylist()) == {"surrogate"} and set(tbl["seed"].to_pylist()) == {-1}
    trained = set(synthetic_rows(150)["arch_index"])
    assert not trained & set(tbl["arch_index"].to_pylist())  # predictions only where nothing was trained
    meta = {k.decode(): v.decode() for k, v in tbl.schema.metadata.items()}
    assert meta["surrogate_model"].startswith("random-forest (scikit-learn ")
    assert json.loads(meta["surrogate_features"]) == [f"channels_{i}" for i in range(5)]
    assert meta["surrogate_training_archs"] == "150" and len(meta["surrogate_training_fingerprint"]) == 16
    assert meta["dataset_fingerprint"] == "fp-synthetic" and json.loads(meta["recipe"])["name"] == "synthetic"
    cv = json.loads(meta["surrogate_cv"])
    assert cv["chosen"] == "random-forest" and cv["folds"] == 3
    scores = cv["candidates"][0]
    # the curves are a smooth function of the widths: a working surrogate ranks them well
    assert scores["valid_acc"]["kendall_tau"] > 0.6 and scores["test_acc"]["spearman_rho"] > 0.7
    assert scores["valid_acc"]["rmse"] < 3
    # predictions are plausible values of their metrics, and the trained epochs rows are untouched
    acc = tbl["valid_acc"].to_numpy()
    assert 0 <= acc.min() and acc.max() <= 100 and tbl["epoch_time_s"].to_numpy().min() > 0
    epochs = Benchmark.open(store, surrogate=False)
    assert epochs.archs("sss", "digits", HP).size == 150


def test_a_refit_on_the_same_data_and_seed_is_identical_and_replaces_the_earlier_files(tmp_path, capsys):
    store = make_store(tmp_path / "s")
    args = ["--store", str(store), "--space", "sss", "--model", "extra-trees", "--folds", "3", "--quiet"]
    assert run(capsys, *args)[0] == 0
    (first,) = surrogate_files(store)
    before = pq.read_table(first)
    code, out, _ = run(capsys, *args)
    assert code == 0 and "replaced 1 earlier file(s)" in out
    (second,) = surrogate_files(store)
    assert second != first and not first.exists()
    after = pq.read_table(second)
    assert after.equals(before)  # every value, bit for bit
    cv_a, cv_b = (json.loads(t.schema.metadata[b"surrogate_cv"]) for t in (before, after))
    for cv in (cv_a, cv_b):  # the scores must agree; the seconds they took need not
        for candidate in cv["candidates"]:
            del candidate["fit_s"], candidate["predict_s"]
    assert cv_a == cv_b
    code, _, _ = run(capsys, *args, "--seed", "1")  # another seed: another forest
    assert code == 0
    (third,) = surrogate_files(store)
    assert not pq.read_table(third).column("valid_acc").equals(before.column("valid_acc"))


def test_residual_noise_makes_predicted_rows_scatter_as_trained_ones_do(tmp_path, capsys):
    """Bare predictions are means, less spread than single trainings; with --noise residual the
    predicted final accuracies around the model spread like the trained ones around it."""
    store = make_store(tmp_path / "s", n_archs=200)
    spread = {}
    for noise in ("none", "residual"):
        code, _, _ = run(capsys, "--store", str(store), "--space", "sss", "--model", "random-forest", "--folds", "3",
                         "--noise", noise, "--quiet")
        assert code == 0
        (path,) = surrogate_files(store)
        tbl = pq.read_table(path).to_pandas()
        assert pq.read_schema(path).metadata[b"surrogate_noise"] == noise.encode()
        last = tbl[tbl["epoch"] == HP].set_index("arch_index")
        spread[noise] = last["valid_acc"] - last["test_acc"]  # the two noisy splits of one training
    # trained rows: valid and test differ by independent noise of std 0.3 each (std 0.42)
    assert spread["none"].std() < 0.15
    assert 0.25 < spread["residual"].std() < 0.65


def test_auto_cross_validates_every_candidate_and_keeps_the_best_by_kendall_tau(tmp_path):
    store = make_store(tmp_path / "s", n_archs=80)
    ts = training_set(Benchmark.open(store, surrogate=False), "sss", "digits", HP)
    result = fit(ts, "auto", seed=0, folds=3)
    assert [s.model for s in result.scores] == ["random-forest", "extra-trees", "hist-gbm", "mlp"]
    assert result.chosen.rank_score == max(s.rank_score for s in result.scores)
    taus = [s.targets["valid_acc"].kendall_tau for s in result.scores]
    assert len(set(taus)) > 1  # the candidates were really fitted, not one model scored four times


def test_too_few_trained_architectures_are_refused_with_the_count_and_what_to_do(tmp_path, capsys):
    store = make_store(tmp_path / "s", n_archs=30)
    code, _, err = run(capsys, "--store", str(store), "--space", "sss")
    assert code == 2
    assert "has 30 trained architecture(s) with complete curves" in err and "at least 50" in err
    assert "python -m benchmark_data build" in err and not surrogate_files(store)


def test_architectures_with_gaps_are_left_out_of_the_training_set(tmp_path):
    rows = synthetic_rows(60)
    gap = rows["arch_index"].isin(rows["arch_index"].unique()[:5]) & (rows["epoch"] == 2)
    rows.loc[gap, "valid_acc"] = np.nan
    write_fragment(tmp_path, "epochs", rows, metadata=S.provenance())
    ts = training_set(Benchmark.open(tmp_path, surrogate=False), "sss", "digits", HP)
    assert ts.archs.size == 55 and ts.left_out == 5
    assert not np.isnan(ts.Y).any() and ts.Y.shape == (55, len(S.EPOCH_METRICS) * HP)
    with pytest.raises(UserError, match="has 55 trained architecture.*at least 56"):
        training_set(Benchmark.open(tmp_path, surrogate=False), "sss", "digits", HP, min_archs=56)


def test_a_table_that_covers_the_space_has_nothing_to_complete(tmp_path, capsys):
    archs = np.arange(SSS.size)
    rows = pd.DataFrame({"space": "sss", "dataset": "digits", "hp": 1, "arch_index": archs, "seed": 0,
                         "epoch": 1, "valid_acc": archs % 97, "test_acc": archs % 89, "status": "ok"})
    write_fragment(tmp_path, "epochs", rows, metadata=S.provenance())
    code, _, err = run(capsys, "--store", str(tmp_path), "--space", "sss", "--hp", "1")
    assert code == 2 and "has trained rows for every one of the 32,768 architectures" in err


def test_features_follow_the_spaces_own_encoding():
    tss = get_space("tss")
    x = features(tss, np.array([0, tss.size - 1]))
    assert x.shape == (2, 30) and x.sum(axis=1).tolist() == [6, 6]  # one-hot per edge
    assert feature_names(tss)[:2] == ["edge_1_0=none", "edge_1_0=skip_connect"]
    assert features(SSS, np.array([SSS.parse("8:16:24:32:64")])).tolist() == [[8, 16, 24, 32, 64]]


@pytest.mark.parametrize("argv, message", [
    (["--space", "sss"], "the following arguments are required: --store"),
    (["--store", "embedded"], "this command writes"),
    (["--store", "{tmp}/nowhere"], "store folder {tmp}/nowhere does not exist"),
    (["{tmp}/s"], "the store is given with --store now"),
    (["--store", "{tmp}/s", "--folds", "1", "--space", "sss"], "--folds 1: cross-validation needs at least 2"),
    (["--store", "{tmp}/s", "--model", "gp"], "invalid choice: 'gp'"),
    (["--store", "{tmp}/s", "--min-archs", "1"], "--min-archs 1: a fit needs at least 2"),
    (["--store", "{tmp}/s", "--space", "tss"], "space 'tss' is not in the store"),
    (["--store", "{tmp}/s", "--space", "sss", "--hp", "7"], "hp=7 is not in the store for sss/digits"),
    (["--store", "{tmp}/s", "--dataset", "cifar10"], "dataset 'cifar10' is not in the store for space 'sss'"),
])
def test_bad_input_is_refused_with_a_message(tmp_path, capsys, argv, message):
    make_store(tmp_path / "s", n_archs=60)
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and message.format(tmp=tmp_path) in err, err
    assert not surrogate_files(tmp_path / "s")
