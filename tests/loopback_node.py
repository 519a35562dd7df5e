"""Two small tools that let tests/test_ray_up_local.py treat this machine as an SSH-reachable
cluster node without touching anything else on it (run as scripts, no project imports):

``python loopback_node.py relay HOST PORT``
    An SSH ``ProxyCommand``: joins stdin/stdout to HOST:PORT. Ray's cluster files have no SSH port
    setting; this lets ``ray up`` reach the test's sshd on a free port instead of port 22.

``python loopback_node.py stop MARK``
    ``ray stop`` for one node only: kills every process whose environment holds
    ``NATSFLOW_TEST_NODE=MARK`` (the test's sshd gives every session on the node that variable, and
    Ray's processes inherit it). A bare ``ray stop`` kills every Ray process of the user on the
    machine, other tests' and other people's clusters included. Linux only (reads ``/proc``).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading

MARK_VARIABLE = "NATSFLOW_TEST_NODE"


def relay(host: str, port: int) -> None:
    conn = socket.create_connection((host, port))

    def upstream() -> None:
        while chunk := os.read(0, 1 << 16):
            conn.sendall(chunk)
        conn.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while chunk := conn.recv(1 << 16):
        os.write(1, chunk)


def own_lineage() -> set[int]:
    """This process and its ancestors: the shell that called ``ray stop`` carries the mark too."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        with open(f"/proc/{pid}/stat") as stat:
            pid = int(stat.read().rsplit(")", 1)[1].split()[1])  # field 4, after the command's name
    return pids


def marked_processes(mark: str) -> list[int]:
    wanted, spared, found = f"{MARK_VARIABLE}={mark}".encode(), own_lineage(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in spared:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if wanted in environ.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def stop(mark: str) -> int:
    pids = marked_processes(mark)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


if __name__ == "__main__":
    if sys.argv[1:2] == ["relay"] and len(sys.argv) == 4:
        relay(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["stop"] and len(sys.argv) == 3:
        print(f"stopped {stop(sys.argv[2])} processes of node {sys.argv[2]}")
    else:
        sys.exit("usage: loopback_node.py relay HOST PORT | stop MARK")
