"""`orchestrate.py train`: real live searches on Ray Tune, resume, and answers to bad input.

The live searches train a tiny skeleton (C=4, N=1) on digits for 3 epochs, so that one Ray
session runs two searchers in well under a minute of CPU time. They run in-process through
``orchestrate.main`` so both share one local Ray (started by the fixture, stopped after).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_fixtures import orchestrate_cli as cli

import orchestrate
import spaces
from benchmark_data.reader import Benchmark
from benchmark_data.schema import SCHEMAS
from orchestrator.live import SETTINGS_FILE, LiveSettings, best_trial, load_searcher, read_trials
from orchestrator.modes.train import settings_from_args

ROOT = Path(__file__).resolve().parents[1]
TSS = spaces.get_space("tss")
TINY = ("train", "--C", "4", "--N", "1", "--epochs", "3", "--quiet")


def trials_of(out: Path, experiment: str) -> pd.DataFrame:
    return read_trials(out, experiment)


def searcher_of(out: Path, experiment: str):
    exp_dir = out / "live" / experiment
    return load_searcher(LiveSettings.from_file(exp_dir / SETTINGS_FILE), exp_dir)


def stored_epochs(store: Path) -> pd.DataFrame:
    return pd.read_parquet(store / "epochs")


# ----- flags ------------------------------------------------------------------------------------
def test_every_flag_of_train_is_its_own_and_the_old_flat_form_still_works(tmp_path):
    from orchestrator.cli import parse_args

    old = parse_args(["--mode", "train", "--searcher", "rea", "--max-concurrent", "2", "--out", str(tmp_path)])
    new = parse_args(["train", "--searcher", "rea", "--workers", "2", "--out", str(tmp_path)])
    assert vars(old) == vars(new) and new.mode == "train" and new.workers == 2


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "median"], "argument --scheduler: invalid choice: 'median'"),
    (["--searcher", "bohb", "--scheduler", "asha"], "bohb runs its own HyperBand brackets"),
    (["--searcher", "bohb", "--scheduler", "hyperband"], "use --scheduler fifo"),
    (["--trials", "0"], "--trials must be at least 1, got 0"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'; choose one of cifar10-valid, cifar10, cifar100, "
                             "ImageNet16-120, digits, fashion-mnist"),
    (["--searcher", "all"], "argument --searcher: invalid choice: 'all'"),
    (["--recipe", "h9"], "argument --recipe: invalid choice: 'h9'"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--C", "0"], "--C must be at least 1, got 0"),
    (["--N", "-1"], "--N must be at least 1, got -1"),
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--max-failures", "-1"], "--max-failures must be at least 0, got -1"),
    (["--gpus-per-trial", "-0.5"], "--gpus-per-trial must be >= 0, got -0.5"),
    (["--experiment", "a/b"], "cannot be a partition folder name"),
    (["--resume"], "--resume needs --experiment NAME"),
    (["--resume", "--experiment", "never-ran"], "nothing to resume at"),
    (["--budget", "100ev"], "--budget is a flag of `orchestrate.py simulate`, not of train"),
    (["--runs", "1"], "--runs is a flag of `orchestrate.py simulate`, `orchestrate.py oneshot` and "
                      "`orchestrate.py prune`, not of train"),
    (["--store", "{tmp}/afile"], "afile is a file; give a store folder"),
    (["--store", "embedded"], "--store embedded: this command writes"),
    (["--out", "{tmp}/afile"], "afile is a file; give a folder"),
    (["--dataset", "cifar10", "--data-dir", "{tmp}/empty"], "CIFAR-10 not found"),
    (["--space", "sss", "--N", "5"], "sss: --N=5, but the size space has one cell per stage"),
    (["--space", "sss", "--C", "8"], "--C 8: the size space's channels are the architecture"),
])
def test_bad_live_input_exits_2_with_one_clear_message_and_writes_nothing(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = cli("train", "--out", str(tmp_path / "out"), "--store", str(tmp_path / "store"), *args)
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists()


def test_live_flags_in_simulate_mode_are_refused_even_at_their_default_value(tmp_path):
    # --scheduler fifo is simulate's default too; --trials 10 is train's default: still refused.
    code, _, err = cli("--trials", "10", "--out", str(tmp_path / "out"))
    assert code == 2 and "--trials is a flag of `orchestrate.py train`, not of simulate" in err
    code, _, err = cli("simulate", "--recipe", "h0", "--out", str(tmp_path / "out"))
    assert code == 2 and "--recipe is a flag of `orchestrate.py train`, not of simulate" in err
    assert not (tmp_path / "out").exists()


def test_an_existing_experiment_is_not_overwritten(tmp_path):
    (tmp_path / "out" / "live" / "x").mkdir(parents=True)
    code, _, err = cli(*TINY, "--out", str(tmp_path / "out"), "--experiment", "x")
    assert code == 2 and "exists already; continue it with --resume" in err


def test_a_start_killed_before_tune_began_is_started_afresh_not_stuck(tmp_path):
    """Killed between writing its settings and Tune's first file: --resume says to start it again,
    and the same command without --resume does (bench_faults.py found it refused both ways)."""
    from orchestrator.modes.train import settings_from_args

    args = [*TINY, "--out", str(tmp_path / "out"), "--store", str(tmp_path / "s"), "--experiment", "x"]
    exp = tmp_path / "out" / "live" / "x"
    exp.mkdir(parents=True)
    (exp / SETTINGS_FILE).write_text(settings_from_args(orchestrate.build_parser().parse_args(
        [*args[:-1], "y"])).settings.to_json())
    code, _, err = cli(*TINY, "--out", str(tmp_path / "out"), "--experiment", "x", "--resume")
    assert code == 2 and "was stopped before Tune began it" in err and "without --resume" in err
    run = settings_from_args(orchestrate.build_parser().parse_args(args))
    assert not run.resume and run.experiment_dir == exp and not exp.exists()  # replaced by the new start


def test_cells_per_stage_default_to_nats_bench_for_each_space(tmp_path):
    parse = orchestrate.build_parser().parse_args
    base = ["train", "--out", str(tmp_path / "o"), "--store", str(tmp_path / "s")]
    assert settings_from_args(parse([*base, "--space", "sss"])).settings.N == 1
    assert settings_from_args(parse([*base, "--space", "tss"])).settings.N == 5
    settings = settings_from_args(parse(base)).settings
    assert settings.lr_schedule_step == "epoch"
    assert settings.recipe_spec()["lr_schedule_step"] == "epoch"
    # Settings saved before the field existed come from per-iteration runs; resuming keeps that.
    data = {k: v for k, v in json.loads(settings.to_json()).items() if k != "lr_schedule_step"}
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert LiveSettings.from_file(tmp_path / "old.json").lr_schedule_step == "iteration"


def test_a_store_of_another_skeleton_or_recipe_is_refused_before_training(tmp_path):
    """Rows of another skeleton (or recipe) share the store's keys: the trials would train and
    then write nothing, so the run is refused before Ray starts and writes nothing."""
    from trainables import builder

    store = tmp_path / "store"
    archs = tmp_path / "archs.txt"
    archs.write_text("3877\n")
    assert builder.main(["--space", "tss", "--dataset", "digits", "--epochs", "1", "--archs",
                         str(archs), "--C", "8", "--N", "1", "--store", str(store),
                         "--lr-schedule-step", "iteration", "--workers", "0", "--quiet"]) == 0
    files = sorted(store.rglob("*.parquet"))
    # another skeleton, even at another hp: the archs partition (costs) is shared
    code, out, err = cli(*TINY, "--out", str(tmp_path / "out"), "--store", str(store))
    assert code == 2, (out, err)
    assert err.startswith(f"error: --store {store} holds tss/digits rows of skeleton C=8 N=1")
    assert "this run trains C=4 N=1" in err and "give another --store" in err
    # the same skeleton and length with the old per-iteration cosine: another recipe
    code, out, err = cli("train", "--C", "8", "--N", "1", "--epochs", "1", "--quiet",
                         "--out", str(tmp_path / "out"), "--store", str(store))
    assert code == 2, (out, err)
    assert "hp=1 trained with another recipe" in err and "stepped per iteration" in err
    assert sorted(store.rglob("*.parquet")) == files and not (tmp_path / "out").exists()


def test_the_script_itself_exits_2(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "orchestrate.py"), "train",
                        "--searcher", "bohb", "--scheduler", "asha", "--out", str(tmp_path / "o")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith("error: bohb runs its own HyperBand brackets")
    assert not (tmp_path / "o").exists()


# ----- real live searches -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.ray
def test_live_search_random_with_asha_and_bohb_with_fifo(local_ray, tmp_path):
    out, store = tmp_path / "out", tmp_path / "store"
    common = (*TINY, "--out", str(out), "--store", str(store), "--trials", "4")

    code, stdout, err = cli(*common, "--searcher", "random", "--scheduler", "asha",
                            "--experiment", "rnd")
    assert code == 0, err
    assert "live search rnd: 4 trial(s) of 4 (" in stdout and "best architecture: |" in stdout
    rnd = trials_of(out, "rnd")
    assert list(rnd.columns) == SCHEMAS["trials"].names
    assert len(rnd) == 4 and rnd["fidelity"].isna().all()
    # ASHA's rungs are 1 and 3 epochs: a trial either went all the way or was stopped after 1.
    assert set(rnd["epochs"]) <= {1, 3} and 3 in set(rnd["epochs"])
    assert (rnd["status"] == rnd["epochs"].map({1: "stopped", 3: "ok"})).all()
    assert f"{rnd['epochs'].sum()} epoch(s) trained" in stdout
    assert rnd["feedback"].between(0, 100).all()

    # One trial at a time, so that BOHB's first bracket fills before it asks again: budgets 1 and
    # 3 epochs, 3 configs at 1 epoch, then the best of them (ties: the earliest) at 3 epochs.
    code, stdout, err = cli(*common, "--searcher", "bohb", "--experiment", "bohb",
                            "--workers", "1")
    assert code == 0, err
    bohb = trials_of(out, "bohb")
    assert bohb["fidelity"].tolist() == [1, 1, 1, 3]
    assert (bohb["epochs"] == bohb["fidelity"]).all() and (bohb["status"] == "ok").all()
    promoted = bohb["arch_index"].iloc[3]
    first_rung = bohb.iloc[:3].sort_values("feedback", ascending=False, kind="stable")
    assert promoted == first_rung["arch_index"].iloc[0]

    # Every trained epoch is in the store, once, and the store reads as a benchmark.
    rows = stored_epochs(store)
    assert not rows.duplicated(["arch_index", "seed", "epoch"]).any()
    for trials in (rnd, bohb):
        for t in trials.itertuples():
            have = set(rows.loc[rows["arch_index"] == t.arch_index, "epoch"])
            assert set(range(1, t.epochs + 1)) <= have
    bench = Benchmark.open(store)
    assert bench.hps("tss", "digits") == [3]
    m = bench.metrics("tss", "digits", 3, promoted, epoch=3, seed=0)
    assert float(m["valid_acc"]) == pytest.approx(float(bohb.loc[bohb["fidelity"] == 3, "feedback"].item()))
    # The experiment checkpoint holds the searcher: it was told every trial, at the epochs
    # trained, and it believes best what the summary printed.
    for name, trials in (("rnd", rnd), ("bohb", bohb)):
        searcher = searcher_of(out, name)
        history = searcher.history
        assert sorted(r["trial_id"] for r in history) == sorted(trials["trial_id"])
        by_id = trials.set_index("trial_id")
        assert all(r["fidelity"] == by_id.loc[r["trial_id"], "epochs"] for r in history)
        assert TSS.config_to_index(searcher.best()) == best_trial(trials)["arch_index"]


@pytest.mark.ray
def test_live_search_on_the_size_space_trains_the_one_cell_per_stage_network(local_ray, tmp_path):
    out, store = tmp_path / "out", tmp_path / "store"
    code, stdout, err = cli("train", "--space", "sss", "--epochs", "1", "--quiet", "--out", str(out),
                            "--store", str(store), "--trials", "2", "--searcher", "rea", "--experiment", "size")
    assert code == 0, err
    trials = trials_of(out, "size")
    assert len(trials) == 2 and (trials["space"] == "sss").all() and (trials["status"] == "ok").all()
    sss = spaces.get_space("sss")
    assert all(sss.to_str(a) == s for a, s in zip(trials["arch_index"], trials["arch"]))
    bench = Benchmark.open(store)
    assert bench.spaces() == ["sss"] and sorted(bench.archs("sss", "digits", 1)) == sorted(trials["arch_index"])
    assert json.loads(bench.metadata("sss", "digits", 1)["skeleton"]) == {"N": 1}  # NATS-Bench's size network


@pytest.mark.ray
@pytest.mark.slow  # two Ray sessions in subprocesses, and an interruption: ~2-4 min here
def test_an_interrupted_search_resumes_where_it_stopped(tmp_path):
    """SIGINT after the first trials, then --resume: all trials end up run, none twice."""
    args = [sys.executable, str(ROOT / "orchestrate.py"), *TINY, "--out", str(tmp_path / "out"),
            "--store", str(tmp_path / "store"), "--searcher", "rea", "--trials", "6",
            "--experiment", "rea", "--workers", "1"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    epochs = tmp_path / "store" / "epochs"
    deadline = time.monotonic() + 600
    while not (epochs.exists() and len(stored_epochs(tmp_path / "store")) >= 6):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(1)
    proc.send_signal(signal.SIGINT)
    first_out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 130, first_out  # Ctrl-C: 128 + SIGINT, as a shell reports it
    assert "--resume --experiment rea" in first_out
    first = trials_of(tmp_path / "out", "rea")
    assert 2 <= len(first) < 6 or (first["epochs"] < 3).any()

    second = subprocess.run([*args[:2], "train", "--resume", "--experiment", "rea",
                             "--out", str(tmp_path / "out"), "--quiet"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    trials = trials_of(tmp_path / "out", "rea")
    assert len(trials) == 6 and (trials["epochs"] == 3).all() and trials["trial_id"].is_unique
    done_before = first[first["epochs"] == 3]
    merged = trials.merge(done_before, on="trial_id", suffixes=("", "_before"))
    assert (merged["arch_index"] == merged["arch_index_before"]).all()
    rows = stored_epochs(tmp_path / "store")
    assert not rows.duplicated(["arch_index", "seed", "epoch"]).any()
    # The searcher continued from its checkpoint: it knows every trial, those of the first run too.
    history = searcher_of(tmp_path / "out", "rea").history
    assert sorted(r["trial_id"] for r in history) == sorted(trials["trial_id"])


class InterruptOnce:
    """A Tune callback's behaviour: Ctrl-C (SIGINT to this process) at the ``after``-th trial
    result, once per test; state on the class, since the restored experiment unpickles its own
    copy of the callback from tuner.pkl."""
    after, seen, fired = 0, 0, False

    def on_trial_result(self, iteration, trials, trial, result, **info):
        cls = type(self)
        cls.seen += 1
        if cls.seen == cls.after and not cls.fired:
            cls.fired = True
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.ray
def test_a_resumed_asha_search_keeps_its_rungs_and_ends_as_an_uninterrupted_one(local_ray, tmp_path):
    """Ray restores the searcher but not the scheduler (a restored ASHA forgets its rungs, so
    the trials it would stop train on; Ray's own ASHAScheduler fails this test): ours carries its
    state in the experiment checkpoint, so the interrupted and resumed search stops the same
    trials at the same epochs as one that ran through (one worker: the order of results, and so
    every decision, is the seed's), and lists them in the order they were created."""
    from ray import tune

    from orchestrator.live import run_live

    def settings(name):
        args = orchestrate.build_parser().parse_args(
            [*TINY, "--out", str(tmp_path / "out"), "--store", str(tmp_path / f"store-{name}"),
             "--searcher", "random", "--trials", "8",
             "--scheduler", "asha", "--experiment", name, "--workers", "1"])
        return settings_from_args(args).settings

    reference = run_live(settings("through"), tmp_path / "out" / "live" / "through", quiet=True).trials
    assert (reference["status"] == "stopped").any()  # the scheduler stopped some: decisions to keep

    interrupt = type("Interrupt", (InterruptOnce, tune.Callback), {"after": 7})
    first = run_live(settings("cut"), tmp_path / "out" / "live" / "cut", quiet=True, callbacks=[interrupt()])
    assert interrupt.fired and first.interrupted
    cut = tmp_path / "out" / "live" / "cut"
    resumed = run_live(LiveSettings.from_file(cut / SETTINGS_FILE), cut, resume=True, quiet=True)
    assert not resumed.interrupted
    columns = ["event", "arch_index", "epochs", "status"]
    assert resumed.trials[columns].to_dict("records") == reference[columns].to_dict("records")


@pytest.mark.parametrize("resumable", [True, False])
def test_a_restored_hyperband_puts_the_restored_trials_where_the_old_ones_were(resumable):
    """Ray's HyperBand keeps Trial objects in its brackets and a restored experiment makes new
    ones: re-added to Ray's own scheduler they open new brackets (False: the control), to ours
    they take their old places."""
    import ray.cloudpickle as pickle  # as Tune saves callback state
    from ray.tune import PlacementGroupFactory
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import HyperBandScheduler

    from orchestrator.scheduler_state import ResumableHyperBand, SchedulerState

    cls = ResumableHyperBand if resumable else HyperBandScheduler
    make = lambda: cls(time_attr="training_iteration", max_t=9, reduction_factor=3,  # noqa: E731
                       metric="valid_acc", mode="max")
    def trials() -> list:
        made = [Trial("TrainArch", trial_id=f"t{i}", stub=True, placement_group_factory=PlacementGroupFactory(
            [{"CPU": 1}])) for i in range(7)]
        for t in made:
            t.create_placement_group_factory()  # as the controller does when it adds one
        return made
    before = make()
    for t in trials():
        before.on_trial_add(None, t)
    saved = pickle.loads(pickle.dumps(SchedulerState(before).get_state()))  # as the checkpoint file holds it
    after = make()
    SchedulerState(after).set_state(saved)
    restored = trials()
    for t in restored:
        after.on_trial_add(None, t)

    def layout(s):
        return [[sorted(t.trial_id for t in b._all_trials) for b in band] for band in s._hyperbands]
    assert (layout(after) == layout(before)) is resumable
    in_brackets = [t for band in after._hyperbands for b in band for t in b._all_trials]
    assert all(any(t is r for r in restored) for t in in_brackets) is resumable


@pytest.mark.ray
@pytest.mark.slow  # one more Ray search: ~1 min here
def test_hyperband_scheduler_runs_a_single_fidelity_searcher(local_ray, tmp_path):
    code, stdout, err = cli(*TINY, "--out", str(tmp_path / "out"), "--store", str(tmp_path / "s"),
                            "--searcher", "tpe", "--scheduler", "hyperband", "--trials", "4",
                            "--experiment", "hb")
    assert code == 0, err
    trials = trials_of(tmp_path / "out", "hb")
    assert len(trials) == 4 and (trials["status"] == "ok").all()
    assert trials["epochs"].between(1, 3).all()


@pytest.mark.ray
@pytest.mark.slow  # one more Ray search: ~30 s here
def test_a_crashed_trial_is_retried_from_its_checkpoint(local_ray, tmp_path):
    """The first trial's actor is killed after its first checkpoint; Tune restores it elsewhere."""
    import json
    import signal as signals

    from ray import tune

    from orchestrator.live import run_live

    class KillOnce(tune.Callback):
        killed: list = []  # on the class: Tune may hold a copy of the instance

        def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
            if not self.killed:
                self.killed.append(trial.trial_id)
                os.kill(trial.last_result["pid"], signals.SIGKILL)  # the actor this test started

    args = orchestrate.build_parser().parse_args(
        [*TINY, "--out", str(tmp_path / "out"), "--store", str(tmp_path / "store"),
         "--searcher", "random", "--trials", "2", "--experiment", "crash", "--workers", "1"])
    settings = settings_from_args(args).settings
    outcome = run_live(settings, tmp_path / "out" / "live" / "crash", quiet=True, callbacks=[KillOnce()])
    trials = outcome.trials
    assert KillOnce.killed and (trials["status"] == "ok").all() and (trials["epochs"] == 3).all()
    crashed = Path(outcome.experiment_dir, f"trial_{KillOnce.killed[0]}", "result.json")
    last = json.loads(crashed.read_text().splitlines()[-1])
    assert last["training_iteration"] == 3 and last["iterations_since_restore"] < 3  # restored
    rows = stored_epochs(tmp_path / "store")  # each epoch once, the crashed trial's included
    assert not rows.duplicated(["arch_index", "seed", "epoch"]).any()
    assert set(zip(rows["arch_index"], rows["epoch"])) == {
        (a, e) for a in trials["arch_index"] for e in (1, 2, 3)}
