"""A real two-node Ray cluster on this machine (loopback): a head node and one worker node.

Shared by the multi-node fault test (tests/test_faults.py) and the fault campaign
(benchmarks/bench_faults.py). Every node is ``ray start ... --block`` in its own process group, so
a node is killed whole (raylet, workers, everything it started) by its own id and nothing else on
the machine is touched; no bare ``ray stop``.

A private Ray temp folder (short: socket paths have a length limit): ``ray start --head`` records
"the current cluster" there, where every later ``ray.init()`` on this machine would otherwise look.
``env`` is what every process talking to the cluster must run with: that folder, and
``RAY_AUTH_MODE`` as every other Ray process the tests start (``disabled``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY_BIN = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_node(*args: str, env: dict) -> subprocess.Popen:
    """``ray start ... --block`` in its own process group, so the node can be killed whole by its id."""
    return subprocess.Popen([str(RAY_BIN), "start", *args, "--block", "--disable-usage-stats"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill_node(proc: subprocess.Popen) -> None:
    """SIGKILL to the node's whole process group (a lost machine gives its tasks no warning)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


class LoopbackCluster:
    """A head node (``head_cpus`` CPUs, custom resource ``head``) and a worker node (``worker_cpus``
    CPUs, custom resource ``side``) on 127.0.0.1; a context manager that kills both on exit.

    The head gets fewer CPUs than the worker, so most of a job's tasks land on the worker node and
    a lost worker takes work in flight with it; the head's CPU is where that work is re-run."""

    def __init__(self, head_cpus: int = 1, worker_cpus: int = 2) -> None:
        self.head_cpus, self.worker_cpus = head_cpus, worker_cpus
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": self.tmp}
        self.head: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def __enter__(self) -> LoopbackCluster:
        try:
            self.head = ray_node("--head", f"--port={self.port}", "--node-ip-address=127.0.0.1",
                                 f"--num-cpus={self.head_cpus}", "--resources={\"head\": 1}",
                                 "--include-dashboard=false", env=self.env)
            self.start_worker()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start_worker(self, timeout_s: float = 180) -> None:
        """A (new) worker node; returns once the cluster counts exactly two live nodes and all CPUs,
        so a node killed before is known dead and no task is sent to it any more."""
        self.worker = ray_node(f"--address={self.address}", "--node-ip-address=127.0.0.1",
                               f"--num-cpus={self.worker_cpus}", "--resources={\"side\": 1}", env=self.env)
        self.wait_for(nodes=2, cpus=self.head_cpus + self.worker_cpus, timeout_s=timeout_s)

    def kill_worker(self) -> None:
        if self.worker is not None:
            kill_node(self.worker)

    def wait_for(self, *, nodes: int, cpus: int, timeout_s: float) -> None:
        probe = (f"import ray; ray.init(address='{self.address}', logging_level='ERROR'); "
                 "alive = [n for n in ray.nodes() if n['Alive']]; "
                 "print(len(alive), int(sum(n['Resources'].get('CPU', 0) for n in alive)))")
        deadline = time.monotonic() + timeout_s
        while True:
            got = subprocess.run([sys.executable, "-c", probe], env=self.env, capture_output=True, text=True,
                                 timeout=timeout_s)
            if got.stdout.split()[-2:] == [str(nodes), str(cpus)]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster at {self.address} did not reach {nodes} nodes and {cpus} CPUs "
                                   f"within {timeout_s:g} s: {got.stdout[-500:]} {got.stderr[-2000:]}")
            time.sleep(1)

    def close(self) -> None:
        for node in (self.worker, self.head):
            if node is not None:
                kill_node(node)
        shutil.rmtree(self.tmp, ignore_errors=True)
