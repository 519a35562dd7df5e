"""Faults inside trials: a diverging training stops, is recorded as ``diverged`` and is told to the
searcher as a failure (not as the chance-level accuracy the garbage weights score); real torch and
a real local Ray Tune run."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_live import local_ray  # noqa: F401  (the live tests' real local Ray, one per module)

import spaces
from trainables.engine import DIVERGED_LOSS_FACTOR, diverged_loss

TSS = spaces.get_space("tss")
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("loss, diverged", [
    (2.3, False), (40.0, False),             # chance level, and a bad but learning start
    (float("nan"), True), (float("inf"), True), (3e13, True),  # what lr 1e6 and lr 1e3 give
    (DIVERGED_LOSS_FACTOR * math.log(10) * 1.01, True),
])
def test_the_divergence_rule_is_a_non_finite_loss_or_one_far_above_chance(loss, diverged):
    assert diverged_loss(loss, 10) is diverged


def test_a_huge_learning_rate_is_marked_diverged_after_its_first_epoch():
    from trainables.data import load_dataset
    from trainables.engine import TrainEngine
    from trainables.recipes import get_recipe

    engine = TrainEngine(TSS, TSS.resolve(ARCH), load_dataset("digits"), get_recipe("h0", epochs=3, lr=1e3),
                         seed=0, C=4, N=1, device="cpu")
    metrics = engine.run_epoch()
    assert engine.diverged and diverged_loss(metrics["train_loss"], 10)  # the 3e13 at lr 1e3


@pytest.mark.ray
@pytest.mark.usefixtures("local_ray")
def test_a_diverging_trial_stops_is_recorded_and_the_searcher_is_told_it_failed(tmp_path):
    from ray import tune

    from orchestrator.live import _status
    from orchestrator.searchers import make_searcher
    from orchestrator.tune_adapter import TuneSearcher
    from trainables.train import TrainArch

    searcher = make_searcher("random", TSS.hparams, 0)
    adapter = TuneSearcher(searcher, metric="valid_acc", mode="max", fidelity_key="training_iteration")
    store = tmp_path / "store"
    tuner = tune.Tuner(
        TrainArch, param_space={"dataset": "digits", "recipe": {"name": "h0", "epochs": 3, "lr": 1e6}, "C": 4, "N": 1,
                                "store": str(store), "device": "cpu"},
        tune_config=tune.TuneConfig(search_alg=adapter, num_samples=2, max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), verbose=0))
    results = tuner.fit()
    assert len(results) == 2
    for r in results:
        assert r.error is None
        assert r.metrics["training_iteration"] == 1  # stopped after the epoch that diverged, not 3
        assert r.metrics["status"] == "diverged" and math.isnan(r.metrics["valid_acc"])
        assert _status(r, 1, 3, interrupted=False) == "diverged"
    # The searcher heard two failures, never a chance-level valid accuracy.
    told = searcher.state_dict()
    assert len(searcher.history) == 2 and all(h["value"] is None for h in searcher.history), told
    rows = pd.read_parquet(store / "epochs")
    assert len(rows) == 2 and (rows["status"] == "diverged").all()  # the store keeps what happened


# ----- folders and stores that cannot be written ------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["train", "--out", "/sys/h15-out"], "--out /sys/h15-out is not writable"),
    (["train", "--store", "/sys/h15-store"], "--store /sys/h15-store is not writable"),
    (["oneshot", "--searcher", "rsps", "--out", "/sys/h15-out"], "--out /sys/h15-out is not writable"),
])
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, args, message):
    # /sys refuses new files even to root (chmod does not stop root), as a read-only mount would.
    from cli_fixtures import orchestrate_cli

    extra = [] if "--out" in args else ["--out", str(tmp_path / "out")]
    code, _, err = orchestrate_cli(*args, *extra)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_file_where_a_results_folder_should_be_is_one_error_line_and_the_runs_survive(tmp_path):
    from cli_fixtures import orchestrate_cli

    (tmp_path / "runs").write_text("not a folder")  # found only when the runs table is written
    code, _, err = orchestrate_cli("simulate", "--searcher", "random", "--budget", "20ev", "--runs", "3",
                                   "--out", str(tmp_path), "--experiment", "e", "--quiet")
    assert code == 2 and err.startswith("error: Not a directory: ") and "Traceback" not in err
    (tmp_path / "runs").unlink()
    code, _, err = orchestrate_cli("simulate", "--searcher", "random", "--budget", "20ev", "--runs", "3",
                                   "--out", str(tmp_path), "--experiment", "e", "--quiet", "--resume")
    assert code == 0, err  # the finished runs were kept: the resume only writes the tables
    assert pd.read_parquet(tmp_path / "runs" / "experiment=e")["run_seed"].nunique() == 3
