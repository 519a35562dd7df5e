"""benchmarks/bench_peers.py at tiny sizes: natsflow's figures without the peer, the table the peer
would replay, and its refusals. With syne-tune importable, one tiny side-by-side run as well."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_peers.py"
TINY = ["--seeds", "2", "--rounds", "1", "--processes", "1", "--budget", "40"]


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_without_the_peer_it_prints_natsflows_figures_and_how_to_install_the_peer(tmp_path):
    r = bench(*TINY, "--searchers", "random,asha", "--no-peer", "--json", str(tmp_path / "m.json"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name in ("random", "asha"):
        assert f"{name}_ms_per_run: " in r.stdout and f"{name}_ms_per_process: " in r.stdout
    assert "peer: none" in r.stdout and "pip install .[peers]" in r.stdout and "--peer-python" in r.stdout
    measured = json.loads((tmp_path / "m.json").read_text())
    assert [row["seed"] for row in measured["runs"]["natsflow"]["random"]] == [0, 1]
    assert all(row["evaluations"] > 0 for row in measured["runs"]["natsflow"]["asha"])
    assert len(measured["processes"]["natsflow"]["random"]) == 1 and measured["peer"] is None


def test_the_exported_table_is_the_one_natsflow_replays(tmp_path):
    from benchmark_data.reader import Benchmark

    out = tmp_path / "table.npz"
    r = bench("--worker", "natsflow", "--export", str(out), "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = np.load(out)
    task = Benchmark.open(None).task("tss")
    np.testing.assert_array_equal(data["feedback"], task.feedback)
    np.testing.assert_array_equal(data["cost"], task.cost)
    names = list(data["names"])
    for index in (0, 7, task.space.size - 1):
        config = task.space.index_to_config(index)
        assert list(data["configs"][index]) == [str(config[n]) for n in names]
    assert json.loads(str(data["choices"][0])) == list(task.space.hparams[names[0]].choices)


@pytest.mark.parametrize("args, message", [
    (["--searchers", "random,bogus"], "--searchers: unknown ['bogus']; choose from random, rea"),
    (["--seeds", "0"], "--seeds must be at least 1, got 0"),
    (["--budget", "-5"], "--budget and --peer-sleep must be positive"),
    (["--peer-python", "/nonexistent/python"], "--peer-python: no Python at /nonexistent/python; install the peer"),
    (["--peer-python", sys.executable, "--searchers", "random"], "cannot import syne-tune's blackbox repository"),
])
def test_bad_input_is_refused_with_what_to_do(tmp_path, args, message):
    if "cannot import" in message and importlib.util.find_spec("syne_tune") is not None:
        pytest.skip("syne-tune is installed here, so this interpreter is a valid peer")
    r = bench(*TINY, *args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_side_by_side_with_the_peer_when_it_is_installed(tmp_path):
    pytest.importorskip("syne_tune.blackbox_repository")
    r = bench("--seeds", "1", "--rounds", "1", "--processes", "1", "--budget", "20", "--searchers",
              "random,reinforce", "--peer-python", sys.executable, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "random_ratio_per_run: " in r.stdout and "random_peer_ms_per_process: " in r.stdout
    assert "reinforce_peer" not in r.stdout  # no peer for REINFORCE
