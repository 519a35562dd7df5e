"""`orchestrate.py` end to end on a real Parquet store, and its answers to bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from benchmark_data.schema import provenance
from benchmark_data.writer import write_fragment
from sim_fixtures import synthetic_table

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A complete tss store on 'digits' with hp=12 only, written through the project's writer."""
    root = tmp_path_factory.mktemp("store")
    t = synthetic_table(seeds=1)
    archs, epochs = np.meshgrid(np.arange(t.space.size), np.arange(1, 13), indexing="ij")
    rows = pd.DataFrame({
        "space": "tss", "dataset": "digits", "hp": 12, "arch_index": archs.ravel(), "seed": 0,
        "epoch": epochs.ravel(), "valid_acc": t.feedback[:, 0, :].ravel(),
        "test_acc": (t.feedback[:, 0, :] + 0.5).ravel(), "epoch_time_s": t.train_time[:, 0, :].ravel(),
        "eval_time_s": t.eval_time[:, 0, :].ravel(), "status": "ok",
    })
    write_fragment(root, "epochs", rows, metadata=provenance("epochs", recipe={"name": "synthetic"},
                                                             skeleton={"C": 8, "N": 1},
                                                             dataset_fingerprint="digits-test-fingerprint"))
    return root


def orchestrate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "orchestrate.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_main_job_finds_an_architecture_and_writes_the_runs_table(store, tmp_path):
    r = orchestrate("--searcher", "bohb", "--budget", "3000s", "--store", str(store),
                    "--out", "res", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "found: |" in r.stdout and "final value test_acc at hp=12" in r.stdout
    assert "longest recipe covering every architecture" in r.stdout  # no hp=200: said so
    files = list((tmp_path / "res" / "runs").rglob("*.parquet"))
    assert len(files) == 1
    df = pd.read_parquet(files[0])
    # As NATS-Bench's bohb.py (not bounded by the budget), BOHB goes on past the budget, but only
    # while an event can still be one of the two nearest to it (draw-table.py's interpolation).
    times = df["sim_time_s"]
    assert times.iloc[-1] >= 3000 and times.iloc[-1] - 3000 <= sorted(abs(times - 3000))[1]
    assert (df["searcher"] == "bohb").all()
    assert set(df["fidelity"]) <= {1, 4, 12} and len(set(df["fidelity"])) > 1
    meta = pq.read_metadata(files[0]).metadata
    assert b"code_version" in meta and b"library_versions" in meta and b"experiment" in meta
    # Provenance resolves what the run used: every knob with its default, the store's skeleton.
    knobs = json.loads(meta[b"knobs"])["bohb"]
    assert knobs["eta"] == 3 and knobs["min_fidelity"] == 1 and knobs["max_fidelity"] == 12
    assert json.loads(meta[b"skeleton"]) == {"C": 8, "N": 1}
    assert meta[b"dataset_fingerprint"] == b"digits-test-fingerprint"
    # Arch strings beside the indices: no join with the store needed.
    from spaces import get_space
    tss = get_space("tss")
    assert df["best_arch"].tolist() == [tss.to_str(int(i)) for i in df["best_arch_index"]]
    assert df["arch"].tolist() == [tss.to_str(int(i)) for i in df["arch_index"]]


def test_all_searchers_many_runs_print_one_summary_row_each(store, tmp_path):
    r = orchestrate("simulate", "--searcher", "all", "--runs", "3", "--budget", "25ev", "--store", str(store),
                    "--out", str(tmp_path / "o"), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = r.stdout.split("evals/run")[1]
    for name in ("random", "rea", "reinforce", "bohb", "tpe"):
        assert f"\n{name} " in table
    df = pd.concat(pd.read_parquet(f) for f in (tmp_path / "o").rglob("*.parquet"))
    assert df.groupby(["searcher", "run_seed"]).size().eq(25).all() and df["run_seed"].nunique() == 3


@pytest.mark.parametrize("args, message", [
    (["--searcher", "darts"], "invalid choice: 'darts'"),
    (["--budget", "lots"], "cannot read the budget 'lots'"),
    (["--budget=-2e4s"], "must be positive"),
    (["--dataset", "cifar100"], "no dataset 'cifar100'"),
    (["--hp", "200"], "hp=200 is not in the store"),
    (["--runs", "0"], "--runs must be at least 1"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--scheduler", "median"], "argument --scheduler: invalid choice: 'median'"),
    (["--searcher", "bohb", "--scheduler", "asha"], "bohb runs its own HyperBand brackets"),
    (["--space", "nas"], "argument --space: invalid choice: 'nas'"),
    (["--experiment", "a/b"], "cannot be a partition folder name"),
    # a flag of another mode is refused whatever its value, its default included
    (["--trials", "10"], "--trials is a flag of `orchestrate.py train`, not of simulate"),
    (["--epochs", "100"], "--epochs is a flag of `orchestrate.py train` and `orchestrate.py oneshot`"),
    (["--mode", "live"], "argument --mode: invalid choice: 'live'"),
    (["--work", "2"], "unrecognized arguments: --work 2"),  # no abbreviations
])
def test_bad_input_gets_one_clear_message_exit_2_and_writes_nothing(store, tmp_path, args, message):
    r = orchestrate("--store", str(store), "--out", str(tmp_path / "out"), *args, cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_missing_store_path_is_a_clear_error(tmp_path):
    r = orchestrate("--store", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 2 and "error:" in r.stderr and "nowhere" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_the_old_flat_command_lines_mean_what_they_meant(store, tmp_path):
    from orchestrator.cli import parse_args

    legacy = parse_args(["--searcher", "rea", "--benchmark", str(store), "--mode", "simulate", "--runs", "2"])
    new = parse_args(["simulate", "--searcher", "rea", "--store", str(store), "--runs", "2"])
    assert vars(legacy) == vars(new) and new.mode == "simulate"
    assert parse_args(["--searcher", "gdas", "--epochs", "3"]).mode == "oneshot"
    assert parse_args([]).mode == "simulate"


def test_help_explains_every_mode_and_every_option():
    top = orchestrate("--help", cwd=ROOT)
    assert top.returncode == 0
    for text in ("simulate", "train", "oneshot", "Without a MODE, simulate runs"):
        assert text in top.stdout
    r = orchestrate("simulate", "--help", cwd=ROOT)
    assert r.returncode == 0
    for opt in ("--searcher", "--space", "--dataset", "--budget", "--runs", "--seed", "--workers", "--scheduler",
                "--store", "--out", "--address", "--parallel", "--quiet", "150ev", "NATS-Bench's budget"):
        assert opt in r.stdout
    assert "--benchmark" not in r.stdout  # the old name is accepted, not advertised
    assert orchestrate("--searcher", "rea", "--help", cwd=ROOT).stdout == r.stdout


def test_quiet_prints_only_the_summary(store, tmp_path):
    r = orchestrate("--searcher", "random", "--budget", "30ev", "--runs", "2", "--parallel", "1", "--store", str(store),
                    "--out", str(tmp_path / "o"), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no bar, no Ray banner, no warning
    assert "std over 2 runs" in r.stdout and "+-" not in r.stdout


def test_output_says_n_a_and_counts_as_integers(store, tmp_path):
    r = orchestrate("--searcher", "random", "--budget", "30ev", "--store", str(store), "--out", str(tmp_path / "o"),
                    "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("random "))
    cells = row.split()
    assert "n/a" in cells  # one run: no spread
    assert "30" in cells and "30.0" not in cells  # evaluations per run
    assert "(one run: no spread)" in r.stdout
    assert "best by the searchers' feedback: |" in r.stdout


@pytest.mark.parametrize("scheduler", ["asha", "hyperband"])
def test_a_searcher_under_a_simulated_scheduler_with_four_workers(store, tmp_path, scheduler):
    r = orchestrate("simulate", "--searcher", "random", "--scheduler", scheduler, "--workers", "4", "--budget",
                    "3000s", "--store", str(store), "--out", str(tmp_path / "o"), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "scheduler " + scheduler in r.stdout
    df = pd.read_parquet(next((tmp_path / "o" / "runs").rglob("*.parquet")))
    # one row per ended trial, its fidelity the epochs it trained: stopped ones end on a rung
    assert df["fidelity"].between(1, 12).all() and (df["fidelity"] < 12).any() and (df["fidelity"] == 12).any()
    assert (df["clock"] == "simulated").all() and df["sim_time_s"].is_monotonic_increasing
    meta = pq.read_metadata(next((tmp_path / "o" / "runs").rglob("*.parquet"))).metadata
    assert meta[b"scheduler"] == scheduler.encode()


def test_a_simulated_search_imports_only_what_it_needs(store, tmp_path):
    """No Ray, torch, Tune, Optuna, pandas or tqdm in a quiet random search's process: imports are
    most of a short run's time (benchmarks/bench_peers.py measures the process)."""
    code = ("import sys, orchestrate\n"
            f"rc = orchestrate.main(['--searcher', 'random', '--budget', '30ev', '--store', {str(store)!r}, "
            f"'--out', {str(tmp_path / 'o')!r}, '--quiet'])\n"
            "heavy = ('pandas', 'ray', 'torch', 'optuna', 'hpbandster', 'ConfigSpace', 'tqdm', 'scipy')\n"
            "print(rc, sorted(m for m in heavy if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "0 []"
