"""``ray up cluster.local.yaml`` against this machine, as the README tells a user to do it.

A throwaway sshd (the apt package's binary, run by the test on loopback, a free port, a key made for
the test) makes this machine the file's head node. Each SSH session gets a home of its own under
the test's folder (sshd's ``SetEnv``), so the file's setup commands (a venv, ``pip install -e .``,
a line in ``~/.bashrc``, the token in ``~/.ray``) run exactly as written without touching the real
home; its Ray temp folder is private too (``RAY_TMPDIR``), so no other ``ray.init()`` here finds it.

What the test changes in the file, and why (``on_this_machine``): the addresses, the user and the
key; a ``ProxyCommand`` to the free port (the file format has no SSH port); the head's ports, free
ones (6379 and the dashboard's may be taken); ``--node-ip-address`` (this machine's outward address
is not the loopback head_ip); no workers (Ray's head reaches workers on port 22 with
``~/ray_bootstrap_key.pem``, which ssh resolves in the real home); and after the install, a ``ray``
whose ``stop`` stops this node only (``loopback_node.py``): ``ray up`` and ``ray down`` run a bare
``ray stop``, which on a shared machine kills every Ray process of the user.

Then, through the CLI only: the head is up with token authentication (the token made on the node,
mode 600, nowhere in the repository; a driver without it is refused), the dashboard listens on
127.0.0.1 only, ``ray exec`` and ``ray job submit`` (through ``ray dashboard``'s SSH forward) run
``orchestrate.py simulate --address auto`` on the cluster, ``ray rsync-down`` brings the tables back
as the README writes it, and ``ray down`` stops every process the node started.
"""

from __future__ import annotations

import copy
import getpass
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cluster_fixtures import free_port
from loopback_node import marked_processes

ROOT = Path(__file__).resolve().parents[1]
NODE_TOOLS = Path(__file__).resolve().parent / "loopback_node.py"
RAY = Path(sys.executable).parent / "ray"
SSHD = shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/usr/local/sbin")
MISSING = [tool for tool, path in [("sshd (apt: openssh-server)", SSHD), ("ssh", shutil.which("ssh")),
                                   ("ssh-keygen", shutil.which("ssh-keygen")), ("rsync", shutil.which("rsync")),
                                   ("python3.11 (the file's setup commands)", shutil.which("python3.11"))]
           if path is None]

pytestmark = [
    pytest.mark.slow,  # a venv and `pip install -e .` on the node, as the file does it: ~3 min here
    pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)}"),
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc"),
]


def replaced(command: str, old: str, new: str) -> str:
    assert old in command, f"cluster.local.yaml changed: {old!r} is no longer in {command!r}"
    return command.replace(old, new)


def on_this_machine(cfg: dict, *, name: str, key: Path, ssh_port: int, ray_port: int, dashboard_port: int,
                    shim: Path) -> dict:
    """cluster.local.yaml with only what must differ on this machine changed (the module's doc says why)."""
    cfg = copy.deepcopy(cfg)
    cfg["cluster_name"] = name
    cfg["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    cfg["min_workers"] = cfg["max_workers"] = 0
    cfg["auth"] = {"ssh_user": getpass.getuser(), "ssh_private_key": str(key),
                   "ssh_proxy_command": f"{sys.executable} {NODE_TOOLS} relay %h {ssh_port}"}
    venv_bin = "~/natsflow/.venv/bin"
    cfg["setup_commands"] = [*cfg["setup_commands"],
                             f"cd {venv_bin} && {{ grep -q {NODE_TOOLS.name} ray || mv ray ray-unscoped; }} "
                             f"&& install -m 755 {shim} ray"]
    *stops, start = cfg["head_start_ray_commands"]
    start = replaced(start, "--port=6379", f"--port={ray_port}")
    cfg["head_start_ray_commands"] = [*stops, f"{start} --dashboard-port={dashboard_port} --node-ip-address=127.0.0.1"]
    return cfg


def wait_for_port(port: int, *, timeout_s: float, alive=lambda: True, why=lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert alive() and time.monotonic() < deadline, f"nothing listens on 127.0.0.1:{port}: {why()}"
        time.sleep(0.1)


class LoopbackSSHD:
    """sshd on 127.0.0.1:port for this user only, key login only; every session's HOME is ``home``."""

    def __init__(self, tmp: Path, *, mark: str) -> None:
        self.tmp, self.port, self.home = tmp, free_port(), tmp / "node"
        self.key = tmp / "id_ed25519"
        for key in (self.key, tmp / "host_ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (tmp / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        if Path("/etc/skel").is_dir():  # what a new user's home starts with (.profile, .bashrc)
            shutil.copytree("/etc/skel", self.home)
        else:
            self.home.mkdir()
        (tmp / "sshd_config").write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {tmp / 'host_ed25519'}",
            f"AuthorizedKeysFile {tmp / 'authorized_keys'}", f"PidFile {tmp / 'sshd.pid'}",
            f"AllowUsers {getpass.getuser()}", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
            "StrictModes no",  # the test's files live under /tmp, which sshd's strict mode refuses
            f"SetEnv HOME={self.home} RAY_TMPDIR={tmp} NATSFLOW_TEST_NODE={mark}", ""]))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder, when run as root
        self.log = open(tmp / "sshd.log", "w")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp / "sshd_config")], stderr=self.log)
        wait_for_port(self.port, timeout_s=30, alive=lambda: self.proc.poll() is None,
                      why=lambda: (tmp / "sshd.log").read_text())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.log.close()


def listening_addresses(port: int) -> set[str]:
    """The local addresses on which something listens on TCP ``port`` (/proc/net/tcp, tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                local, _, state = row.split()[1:4]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1])
                              if len(address) == 8 else address)
    return found


def test_ray_up_on_this_machine_runs_a_job_with_token_auth_and_ray_down_stops_it():
    tmp = Path(tempfile.mkdtemp(prefix="rup", dir="/tmp"))  # short: Ray's socket paths have a length limit
    mark = f"natsflow-test-{secrets.token_hex(3)}"
    sshd = LoopbackSSHD(tmp, mark=mark)
    env = {**os.environ, "RAY_TMPDIR": str(tmp), "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        shim = tmp / "ray-shim"
        shim.write_text(f'#!/bin/sh\n# {NODE_TOOLS.name}: this node\'s own `ray stop`\n'
                        f'[ "$1" = stop ] && exec "$(dirname "$0")/python" {NODE_TOOLS} stop "$NATSFLOW_TEST_NODE"\n'
                        'exec "$(dirname "$0")/ray-unscoped" "$@"\n')
        ray_port, dashboard_port = free_port(), free_port()
        cfg_path = tmp / "cluster.yaml"
        cfg_path.write_text(yaml.safe_dump(on_this_machine(
            yaml.safe_load((ROOT / "cluster.local.yaml").read_text()), name=mark, key=sshd.key,
            ssh_port=sshd.port, ray_port=ray_port, dashboard_port=dashboard_port, shim=shim)))

        def ray(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
            done = subprocess.run([str(RAY), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=timeout)
            assert done.returncode == 0, f"ray {' '.join(args)}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            return done

        ray("up", "-y", "--no-config-cache", str(cfg_path), timeout=1200)

        # The token was made on the node, is private to it and is nowhere in the repository.
        token_file = sshd.home / ".ray" / "auth_token"
        token = token_file.read_text().strip()
        assert len(token) >= 16 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert subprocess.run(["git", "grep", "-q", "-F", token], cwd=ROOT).returncode == 1
        # The dashboard is on loopback only.
        assert listening_addresses(dashboard_port) == {"127.0.0.1"}
        # A driver with the cluster's token joins; one with another token is refused. (The node's own
        # Python: a driver must match the cluster's Python to the patch version.)
        node_venv = sshd.home / "natsflow" / ".venv" / "bin"
        probe = [str(node_venv / "python"), "-c", f"import ray; ray.init(address='127.0.0.1:{ray_port}', "
                                       "logging_level='ERROR'); print('CPUs', ray.cluster_resources()['CPU'])"]
        joined = subprocess.run(probe, env={**env, "RAY_AUTH_TOKEN_PATH": str(token_file)}, capture_output=True,
                                text=True, timeout=120)
        assert joined.returncode == 0 and "CPUs" in joined.stdout, joined.stderr[-3000:]
        refused = subprocess.run(probe, env={**env, "RAY_AUTH_TOKEN": "0" * len(token)}, capture_output=True,
                                 text=True, timeout=120)
        assert refused.returncode != 0 and "auth" in refused.stderr.lower(), refused.stderr[-3000:]

        # A job on the cluster, as the README runs one, and its tables back here as the README fetches them.
        ray("exec", str(cfg_path), "cd ~/natsflow && python orchestrate.py simulate --searcher random --runs 4 "
                                   "--budget 600s --quiet --address auto --out ~/results --experiment onprem",
            timeout=600)
        # The same through Ray's job API, the dashboard forwarded over SSH, the token for this shell only.
        local_port = free_port()
        forward = subprocess.Popen([str(RAY), "dashboard", "-p", str(local_port), "--remote-port",
                                    str(dashboard_port), str(cfg_path)], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port(local_port, timeout_s=60)
            submitted = subprocess.run(  # the jobs CLI needs the cluster extra: the node's venv has it
                [str(node_venv / "ray"), "job", "submit", "--address", f"http://localhost:{local_port}",
                 "--working-dir", ".",
                 "--", *"python orchestrate.py simulate --searcher random --runs 2 --budget 600s --quiet "
                        "--address auto --out ~/results --experiment job".split()],
                cwd=ROOT, env={**env, "RAY_AUTH_TOKEN": token}, capture_output=True, text=True, timeout=600)
            assert submitted.returncode == 0 and "succeeded" in submitted.stdout, \
                submitted.stdout[-3000:] + submitted.stderr[-3000:]
        finally:
            os.killpg(forward.pid, signal.SIGKILL)
            forward.wait(timeout=30)

        fetched = tmp / "fetched"
        ray("rsync-down", str(cfg_path), "~/results/", str(fetched))  # the slash: its contents, as the README
        for experiment, seeds in (("onprem", [0, 1, 2, 3]), ("job", [0, 1])):
            runs = pd.read_parquet(fetched / "runs" / f"experiment={experiment}")
            assert sorted(runs["run_seed"].unique()) == seeds and runs["searcher"].eq("random").all()

        ray("down", "-y", str(cfg_path))
        deadline, left = time.monotonic() + 60, marked_processes(mark)
        while left and time.monotonic() < deadline:
            time.sleep(1)
            left = marked_processes(mark)
        assert not left, f"processes of the node still running after `ray down`: {left}"
    finally:
        subprocess.run([sys.executable, str(NODE_TOOLS), "stop", mark], capture_output=True)
        sshd.close()
        shutil.rmtree(tmp, ignore_errors=True)
