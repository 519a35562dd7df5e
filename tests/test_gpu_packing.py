"""Many small trainings per GPU (``--gpus-per-trial`` fractions): the request each mode makes, and
the packing benchmark's path run on the CPU (no GPU here; its figures come from a GPU machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import orchestrate

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_gpu_packing.py"


def test_a_fraction_of_a_gpu_is_what_each_live_trial_asks_ray_for_and_it_trains_on_cuda(tmp_path):
    from orchestrator.live import make_trainable
    from orchestrator.modes.train import settings_from_args

    args = orchestrate.build_parser().parse_args(
        ["train", "--gpus-per-trial", "0.25", "--out", str(tmp_path / "out"), "--store", str(tmp_path / "s")])
    settings = settings_from_args(args).settings
    request = make_trainable(settings).default_resource_request({})
    assert request.bundles == [{"CPU": 1.0, "GPU": 0.25}]  # four such trials share one GPU
    assert settings.trial_constants()["device"] == "cuda"
    plain = settings_from_args(orchestrate.build_parser().parse_args(
        ["train", "--out", str(tmp_path / "out2"), "--store", str(tmp_path / "s")])).settings
    assert make_trainable(plain).default_resource_request({}).bundles == [{"CPU": 1.0}]
    assert plain.trial_constants()["device"] == "cpu"


def _bench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=ROOT)


@pytest.mark.ray
def test_the_packing_benchmark_runs_its_path_on_the_cpu_with_shares_of_a_cpu():
    proc = _bench("--device", "cpu", "--levels", "1,2", "--min-trials", "2", "--train-images", "256")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if line.startswith(("h0_", "nats_")))
    assert lines["nats_bench_h0_per_hour"] == "16.7 trainings/h"
    assert float(lines["h0_per_hour_1_per_cpu"].split()[0]) > 0 and "h0_per_hour_2_per_cpu" in lines


@pytest.mark.parametrize("args, message", [
    ((), "error: no CUDA GPU here"),
    (("--device", "cpu", "--levels", "1,x"), "--levels must be integers separated by commas, got '1,x'"),
    (("--device", "cpu", "--levels", "0"), "must be at least 1"),
])
def test_the_packing_benchmark_refuses_what_it_cannot_measure(args, message):
    import torch

    if not args and torch.cuda.is_available():
        pytest.skip("a GPU is here: the benchmark would run")
    proc = _bench(*args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
