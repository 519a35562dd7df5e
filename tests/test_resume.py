"""Resume of long jobs after a killed or interrupted driver, through the real command line.

A 500-run simulated comparison is killed (SIGKILL) or interrupted (SIGINT, as Ctrl-C) while it
runs, in a subprocess; rerunning the command with ``--resume`` must end with the same ``runs`` and
``curves`` tables as an uninterrupted run with the same seeds: no run lost, none counted twice.
Only the wall-clock columns (``wall_time_s``, ``searcher_time_s``) may differ, as between any
two runs.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_fixtures import orchestrate_cli as cli

ROOT = Path(__file__).resolve().parents[1]
# 500 runs of about 400 evaluations each: ~5 s of CPU, long enough to be stopped in the middle.
SIM = ("simulate", "--searcher", "random", "--runs", "500", "--budget", "600s", "--quiet")
CLOCK_COLUMNS = ["wall_time_s", "searcher_time_s"]


def table_of(out: Path, table: str, experiment: str) -> pd.DataFrame:
    df = pd.read_parquet(out / table / f"experiment={experiment}")
    df = df.drop(columns=[c for c in [*CLOCK_COLUMNS, "experiment"] if c in df.columns])
    keys = ["searcher", "run_seed"] + (["event"] if table == "runs" else ["sim_time_s"])
    return df.sort_values(keys).reset_index(drop=True)


def start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "orchestrate.py"), *SIM, "--out", str(out), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_when(proc: subprocess.Popen, folder: Path, pattern: str, sig: int, wait_s: float = 120) -> tuple[str, str]:
    """Send ``sig`` once ``folder`` holds a file matching ``pattern`` (the job is under way)."""
    deadline = time.monotonic() + wait_s
    while not list(folder.glob(pattern)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {pattern} in {folder} within {wait_s:g} s"
        time.sleep(0.05)
    proc.send_signal(sig)
    return proc.communicate(timeout=300)


def stop_mid_run(proc: subprocess.Popen, log: Path, sig: int) -> tuple[str, str]:
    """Send ``sig`` once the first batch of finished runs is on disk."""
    return stop_when(proc, log, "runs-*.parquet", sig)


def started(folder: Path) -> Path:
    """The folder of the one experiment a fresh command started under ``folder``, once it exists."""
    deadline = time.monotonic() + 120
    while not (found := list(folder.glob("*/experiment.json"))):
        assert time.monotonic() < deadline, f"no experiment appeared under {folder}"
        time.sleep(0.05)
    return found[0].parent


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("whole")
    code, _, err = cli(*SIM, "--out", str(out), "--experiment", "whole")
    assert code == 0, err
    return table_of(out, "runs", "whole"), table_of(out, "curves", "whole")


def test_a_killed_simulated_comparison_resumes_to_the_tables_of_an_uninterrupted_run(tmp_path, uninterrupted):
    out = tmp_path / "res"
    proc = start(out, "--experiment", "cut")
    stop_mid_run(proc, out / "simulate" / "cut", signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "runs" / "experiment=cut").exists()  # killed before the end: no final table yet
    kept = pd.concat(pd.read_parquet(p) for p in (out / "simulate" / "cut").glob("runs-*.parquet"))
    kept_runs = kept.groupby(["searcher", "run_seed"]).ngroups
    assert 0 < kept_runs < 500  # stopped in the middle, with some runs kept

    code, stdout, err = cli(*SIM, "--out", str(out), "--experiment", "cut", "--resume")
    assert code == 0, err
    runs, curves = uninterrupted
    pd.testing.assert_frame_equal(table_of(out, "runs", "cut"), runs)
    pd.testing.assert_frame_equal(table_of(out, "curves", "cut"), curves)
    assert table_of(out, "runs", "cut").groupby(["searcher", "run_seed"]).ngroups == 500
    assert not (out / "simulate" / "cut").exists()  # the finished runs live in the tables now

    code, _, err = cli(*SIM, "--out", str(out), "--experiment", "cut", "--resume")
    assert code == 2 and "experiment 'cut' is complete already" in err


def test_ctrl_c_ends_a_simulated_comparison_cleanly_and_its_printed_command_finishes_it(tmp_path, uninterrupted):
    out = tmp_path / "res"
    proc = start(out)  # no --experiment: the resume command must name the generated one
    _, err = stop_mid_run(proc, started(out / "simulate"), signal.SIGINT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted:" in err
    command = err.strip().splitlines()[-1].strip()
    words = shlex.split(command)
    assert words[:2] == ["orchestrate.py", "simulate"] and "--resume" in words and "--experiment" in words
    done = subprocess.run([sys.executable, str(ROOT / words[0]), *words[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    name = words[words.index("--experiment") + 1]
    runs, curves = uninterrupted
    pd.testing.assert_frame_equal(table_of(out, "runs", name), runs)
    pd.testing.assert_frame_equal(table_of(out, "curves", name), curves)


@pytest.mark.parametrize("extra, message", [
    (["--resume", "--experiment", "nope"], "no interrupted experiment 'nope' under"),
    (["--resume"], "no interrupted experiment under"),
])
def test_resume_without_an_interrupted_experiment_is_refused(tmp_path, extra, message):
    code, _, err = cli("simulate", "--searcher", "random", "--budget", "20ev", "--out", str(tmp_path), *extra)
    assert code == 2 and message in err and "Traceback" not in err


def test_resume_with_other_flags_names_what_differs(tmp_path):
    proc = start(tmp_path, "--experiment", "e")
    started(tmp_path / "simulate")
    proc.kill()
    proc.communicate()
    flags = [w if w != "600s" else "500s" for w in SIM]
    code, _, err = cli(*flags, "--out", str(tmp_path), "--experiment", "e", "--resume")
    assert code == 2 and "--resume needs the flags experiment 'e' was started with" in err
    assert "budget: started with '600 s', now '500 s'" in err


def test_an_unwritable_out_is_refused_before_any_run():
    # /sys refuses new files even to root (chmod does not stop root), as a read-only mount would.
    code, out, err = cli("simulate", "--searcher", "random", "--budget", "20ev", "--out", "/sys/h15-results")
    assert code == 2 and "--out /sys/h15-results is not writable" in err and "Traceback" not in err
    assert "budget:" not in out  # refused before the runs were even announced


# ----- one-shot searches: Ray Tune trials with a checkpoint per search epoch -------------------------
ONESHOT = ("oneshot", "--searcher", "rsps", "--epochs", "5", "--runs", "2", "--seed", "3", "--parallel", "2",
           "--quiet")


def oneshot_rows(out: Path, experiment: str) -> pd.DataFrame:
    df = pd.read_parquet(out / "runs" / f"experiment={experiment}")
    keep = ["searcher", "run_seed", "event", "arch_index", "best_test_acc", "feedback", "best_rank"]
    return df[keep].sort_values(["searcher", "run_seed", "event"]).reset_index(drop=True)


@pytest.mark.slow
def test_a_killed_or_interrupted_oneshot_search_resumes_from_its_checkpoints_to_the_uninterrupted_result(tmp_path):
    whole = tmp_path / "whole"
    code, _, err = cli(*ONESHOT, "--out", str(whole), "--experiment", "os")
    assert code == 0, err

    out = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, str(ROOT / "orchestrate.py"), *ONESHOT, "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    exp_dir = started(out / "oneshot")
    stdout, err = stop_when(proc, exp_dir, "trial_*/checkpoint_*", signal.SIGINT, wait_s=300)  # Ctrl-C
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "interrupted:" in err
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())  # no partial runs table
    words = shlex.split(err.strip().splitlines()[-1].strip())
    assert words[:2] == ["orchestrate.py", "oneshot"] and "--resume" in words

    # The resume command is killed in its turn (SIGKILL, after a further checkpoint), then run again.
    proc = subprocess.Popen([sys.executable, str(ROOT / words[0]), *words[1:]], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    before = {p.name for p in exp_dir.glob("trial_*/checkpoint_*")}
    deadline = time.monotonic() + 300
    while {p.name for p in exp_dir.glob("trial_*/checkpoint_*")} <= before and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.kill()
    proc.communicate()
    done = subprocess.run([sys.executable, str(ROOT / words[0]), *words[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    name = words[words.index("--experiment") + 1]
    pd.testing.assert_frame_equal(oneshot_rows(out, name), oneshot_rows(whole, "os"))


def test_oneshot_resume_of_an_unknown_experiment_is_refused(tmp_path):
    code, _, err = cli("oneshot", "--searcher", "rsps", "--epochs", "2", "--out", str(tmp_path), "--resume",
                       "--experiment", "nope")
    assert code == 2 and "no interrupted experiment 'nope' under" in err


@pytest.mark.ray
def test_runs_spread_over_ray_are_kept_and_skipped_as_in_process_ones(tmp_path):
    """Three runs in-process, then all eight over a local Ray with the same log: the three are read
    back, not run again, and the eight equal eight runs made without a log."""
    import numpy as np

    from benchmark_data.reader import Benchmark
    from orchestrator.experiment import RunLog, RunSpec, run_experiment
    from orchestrator.simulator import Budget

    table = Benchmark.open().task("tss", None)
    specs = [RunSpec("random", Budget(evaluations=30)), RunSpec("rea", Budget(evaluations=30))]
    seeds = list(range(8))
    log = RunLog(tmp_path / "log", flush_s=0.0)
    first = run_experiment(table, specs, seeds[:3], progress=False, log=log)
    resumed = run_experiment(table, specs, seeds, parallel=2, progress=False, log=log)
    plain = run_experiment(table, specs, seeds, progress=False)
    assert len(log.load()) == 16 and len({(r.searcher, r.seed) for r in log.load()}) == 16
    kept = {(r.searcher, r.seed): r.wall_s for r in first.runs}
    assert all(resumed.wall_s[key] == wall for key, wall in kept.items())  # read back, not run again
    got, want = resumed.columns(), plain.columns()
    for name in want:
        if name not in CLOCK_COLUMNS:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_a_restored_progress_callback_drives_this_runs_bar_not_a_pickled_one():
    """Tune pickles callbacks into an experiment's state and Tuner.restore unpickles them; a tqdm
    bar inside one recursed without end on unpickling (a non-quiet prune or oneshot --resume)."""
    import io

    import ray.cloudpickle as cloudpickle
    from tqdm import tqdm

    from orchestrator.common import tune_progress

    saved = cloudpickle.dumps(tune_progress(tqdm(total=3, file=io.StringIO())))
    seen = []
    bar = tqdm(total=3, file=io.StringIO())
    tune_progress(bar, lambda trial, result: seen.append(result["epoch"]))  # the resumed run's bar and hook
    restored = cloudpickle.loads(saved)
    for epoch in (1, 2):
        restored.on_trial_result(epoch, [], None, {"epoch": epoch})
    assert bar.n == 2 and seen == [1, 2]
