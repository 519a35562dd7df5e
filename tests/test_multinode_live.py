"""A live search on a real two-node Ray cluster on this machine, whose worker node is killed
mid-run: trials run on both nodes, the ones the lost node held are retried from their last
checkpoint on the head, and the store and the trials table hold every trial and epoch once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # two Ray nodes and a live search of six small trainings: ~1 min here
def test_a_live_search_survives_its_worker_node_and_keeps_every_trial_once(tmp_path):
    from cluster_fixtures import LoopbackCluster

    out, store = tmp_path / "out", tmp_path / "store"
    train = [sys.executable, str(ROOT / "orchestrate.py"), "train", "--C", "4", "--N", "1", "--epochs", "40",
             "--searcher", "random", "--trials", "6", "--workers", "3", "--max-failures", "3", "--quiet",
             "--out", str(out), "--store", str(store), "--experiment", "two-nodes"]
    # 1 CPU on the head, 2 on the worker node: three trials at once take every CPU of both nodes.
    with LoopbackCluster(head_cpus=1, worker_cpus=2) as cluster:
        proc = subprocess.Popen([*train, "--address", cluster.address], cwd=tmp_path, env=cluster.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        exp = out / "live" / "two-nodes"

        def running() -> int:  # trials whose newest checkpoint is of their 2nd..39th epoch
            newest = {}  # per trial folder: while Tune replaces a checkpoint, two are there
            for c in exp.glob("trial_*/checkpoint_0*"):
                newest[c.parent] = max(newest.get(c.parent, 0), int(c.name.rsplit("_", 1)[1]) + 1)
            return sum(2 <= n < 40 for n in newest.values())

        # killed while two trials are under way: the head has one CPU, so one is on the worker node
        while running() < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        cluster.kill_worker()
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    trials = pd.read_parquet(out / "trials" / "experiment=two-nodes")
    assert len(trials) == 6 and trials["trial_id"].is_unique and (trials["status"] == "ok").all()
    assert (trials["epochs"] == 40).all()
    rows = pd.read_parquet(store / "epochs")
    assert not rows.duplicated(["arch_index", "seed", "epoch"]).any()
    assert len(rows) == 40 * trials["arch_index"].nunique()  # every epoch of every trial, once
    # The lost node's trials were restored from a checkpoint, not retrained from the start.
    restored = []
    for path in (out / "live" / "two-nodes").glob("*/result.json"):
        last = json.loads(path.read_text().splitlines()[-1])
        restored.append(last["iterations_since_restore"] < last["training_iteration"])
    assert len(restored) == 6 and any(restored)
