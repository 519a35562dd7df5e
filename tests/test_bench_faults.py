"""benchmarks/bench_faults.py at its smallest: one simulated comparison whose driver is killed and
resumed through the real command line (no cluster, no live search), and its refusals. The full
campaign (worker-node kills on a two-node cluster, live searches) is measured by running the
script itself; its figures are in README.md."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_faults.py"


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_one_killed_and_resumed_comparison_is_counted_and_compared(tmp_path):
    r = bench("--driver-kills", "1", "--worker-kills", "0", "--train-kills", "0", "--runs", "40", "--seed", "3",
              "--json", str(tmp_path / "f.json"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "driver/simulate scenario 1 (1 kills wanted): " in r.stdout
    measured = json.loads((tmp_path / "f.json").read_text())
    (row,) = measured["summary"]
    # one kill: one scenario, or two where the first job ended before its kill moment
    assert (row["kind"], row["job"], row["faults"]) == ("driver", "simulate", 1)
    assert row["completed"] == row["scenarios"] and f"driver_simulate_completed: {row['scenarios']} / " in r.stdout
    assert row["lost"] == row["duplicated"] == row["extra"] == row["unrepeatable_references"] == 0
    assert row["retried"] is None  # Ray's task retries are not recorded by the project
    scenarios = measured["scenarios"]
    assert row["reference_wall_median_s"] == statistics.median(x["reference_wall_s"] for x in scenarios)
    s = scenarios[-1]  # the campaign stops at the kill it wanted
    assert s["faulted"] and s["equal"] and s["differs"] == []
    # killed: a --resume (and the command again, where the kill came before it started anything)
    assert s["processes"] in (2, 3)
    assert 0 <= s["fault_at_s"] < s["reference_wall_s"]
    assert s["overhead"] == pytest.approx((s["wall_s"] - s["reference_wall_s"]) / s["reference_wall_s"])


@pytest.mark.parametrize("args, message", [
    (["--driver-kills", "-1"], "--driver-kills must be at least 0, got -1"),
    (["--runs", "0"], "--runs must be at least 1, got 0"),
    (["--quick", "--worker-kills", "-2"], "--worker-kills must be at least 0, got -2"),
])
def test_bad_input_is_refused_before_any_run(tmp_path, args, message):
    r = bench(*args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert r.stdout == ""
