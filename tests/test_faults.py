"""Faults inside trials: a diverging training stops, is recorded as ``diverged`` and is told to the
searcher as a failure (not as the chance-level accuracy the garbage weights score); real torch and
a real local Ray Tune run."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_live import local_ray  # noqa: F401  (the live tests' real local Ray, one per module)

import spaces
from spaces.errors import UserError
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

    from orchestrator.live import LiveSettings, _status, best_trial, read_trials, trials_table, write_trials
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
    # The trials table says so too, and the writer takes the status (schema.TRIAL_STATUSES).
    settings = LiveSettings(experiment="div", searcher="random", space="tss", dataset="digits", data_dir=None,
                            recipe="h0", epochs=3, trials=2, scheduler="fifo", store=str(store), C=4, N=1, seed=0,
                            max_concurrent=2, max_failures=0, gpus_per_trial=0.0)
    trials = trials_table(results, settings)
    assert list(trials["status"]) == ["diverged", "diverged"] and trials["feedback"].isna().all()
    assert best_trial(trials) is None  # a diverged trial is never the best one
    write_trials(trials, settings, tmp_path / "out")
    assert list(read_trials(tmp_path / "out", "div")["status"]) == ["diverged", "diverged"]



class _Wrapped(Exception):
    """Ray's RayTaskError carries the trainable's exception as ``cause``."""

    def __init__(self, cause):
        super().__init__(f"remote traceback...\n{cause!r}")
        self.cause = cause


@pytest.mark.parametrize("error, recorded", [
    (None, None),
    (ValueError("first line\nthe trainable's message"), "ValueError: the trainable's message"),
    (_Wrapped(KeyError("edge_1_0")), "KeyError: 'edge_1_0'"),
    (RuntimeError("The actor died...\n  File x\nNotADirectoryError: [Errno 20] no"),
     "NotADirectoryError: [Errno 20] no"),
    (UserError("x" * 1000), "UserError: " + "x" * 286 + "..."),
])
def test_a_trials_error_is_recorded_as_type_and_message_in_at_most_300_characters(error, recorded):
    from orchestrator.live import error_message

    assert error_message(error) == recorded


@pytest.mark.ray
@pytest.mark.usefixtures("local_ray")
def test_a_live_search_whose_every_trial_raises_records_why_and_exits_1(tmp_path, capsys):
    """The store checked writable at the start is then broken by something else (a file where its
    epochs folder goes): every trial's TrainArch raises; the trials table keeps each exception's
    type and message (beside status error) and the run exits 1, not 0."""
    import orchestrate
    from orchestrator.live import read_trials
    from orchestrator.modes import train as train_mode

    store = tmp_path / "store"
    args = orchestrate.build_parser().parse_args(
        ["train", "--C", "4", "--N", "1", "--epochs", "2", "--quiet", "--searcher", "random", "--trials", "2",
         "--max-failures", "0", "--out", str(tmp_path / "out"), "--store", str(store), "--experiment", "broken"])
    run = train_mode.settings_from_args(args)
    store.mkdir(exist_ok=True)
    (store / "epochs").write_text("not a folder")
    assert train_mode.run(run, quiet=True) == 1
    assert "error: every trial of broken failed" in capsys.readouterr().err
    trials = read_trials(tmp_path / "out", "broken")
    assert list(trials["status"]) == ["error", "error"]
    for message in trials["error"]:
        kind, _, text = message.partition(": ")
        assert kind == "NotADirectoryError" and "epochs" in text and "Traceback" not in message


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


# ----- a real two-node Ray cluster on this machine, and a worker node lost mid-run -------------------
# The size (500 runs) is slow; a small one stays in the default suite, so a multi-node fault
# is tried on every change.
@pytest.mark.parametrize("runs", [pytest.param(500, marks=pytest.mark.slow, id="500-runs"),  # ~1-2 min here
                                  pytest.param(60, id="60-runs")])
def test_a_worker_node_killed_mid_run_loses_no_run_and_duplicates_none(tmp_path, runs):
    import time

    from cluster_fixtures import LoopbackCluster

    root = Path(__file__).resolve().parents[1]
    # The head has 1 CPU, the worker node 2: most tasks are on the worker node when it dies.
    with LoopbackCluster(head_cpus=1, worker_cpus=2) as cluster:
        sim = [sys.executable, str(root / "orchestrate.py"), "simulate", "--searcher", "random", "--runs", str(runs),
               "--budget", "600s", "--quiet", "--address", cluster.address]
        deadline = time.monotonic() + 300
        out = tmp_path / "res"
        proc = subprocess.Popen([*sim, "--out", str(out), "--experiment", "cut"], cwd=root, env=cluster.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        log = out / "simulate" / "cut"
        while not list(log.glob("runs-*.parquet")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert proc.poll() is None, "the comparison ended before the worker node could be killed"
        cluster.kill_worker()  # the worker node dies with its tasks in flight
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]  # Ray re-ran the lost tasks on the head node
        whole = tmp_path / "whole"
        done = subprocess.run([*sim, "--out", str(whole), "--experiment", "whole"], cwd=root, env=cluster.env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    for table in ("runs", "curves"):
        got = pd.read_parquet(out / table / "experiment=cut").drop(columns=["experiment", "wall_time_s",
                                                                            "searcher_time_s"], errors="ignore")
        want = pd.read_parquet(whole / table / "experiment=whole").drop(
            columns=["experiment", "wall_time_s", "searcher_time_s"], errors="ignore")
        keys = ["searcher", "run_seed", "event" if table == "runs" else "sim_time_s"]
        pd.testing.assert_frame_equal(got.sort_values(keys).reset_index(drop=True),
                                      want.sort_values(keys).reset_index(drop=True))
    assert pd.read_parquet(out / "runs" / "experiment=cut").groupby("run_seed").ngroups == runs
