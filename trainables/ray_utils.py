"""Starting Ray the one way this project does it.

Several people (and CI jobs) share machines, so the project never touches a Ray it did not start:
``start_ray`` connects to a given cluster address, reuses a Ray already initialised in this
process, or starts a private local one without the dashboard; it shuts down only what it started
(never ``ray stop``, which kills every Ray process on the machine). ``RAY_AUTH_MODE=disabled`` is
set unless the caller chose otherwise, because token auth makes a local, single-user Ray refuse
driver connections without setup.

A cluster address is checked before ``ray.init``: for an address where nothing answers, Ray
retries for minutes and then prints a C++ log line, not an error this project can explain.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

from spaces.errors import UserError, short

CONNECT_TIMEOUT_S = 5.0  # a head node on the same network answers a TCP connect in milliseconds
_HOW = "check the address (`ray status` on the head node prints it) or omit it for a local Ray"


def check_address(address: str) -> None:
    """UserError unless ``address`` is ``auto`` or a ``[ray://]HOST:PORT`` that accepts a connection."""
    if address == "auto":  # Ray finds the running cluster itself, and says at once when there is none
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"--address {short(address)!r} is not a Ray address: give auto, HOST:PORT (the head "
                        f"node's GCS, e.g. 10.0.0.5:6379) or ray://HOST:PORT (Ray Client, e.g. ray://head:10001)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UserError(f"cannot connect to Ray at {short(address)!r}: nothing answers at {short(host)}:{port} "
                        f"({exc.strerror or exc}); {_HOW}") from None


@contextlib.contextmanager
def start_ray(address: str | None = None, num_cpus: int | None = None, *,
              worker_logs: bool = True) -> Iterator[None]:
    """Context manager: Ray is initialised inside, and shut down on exit if we started it.

    ``address`` (e.g. ``ray://head:10001`` or ``auto``) joins an existing cluster; ``None`` starts a
    local Ray with ``num_cpus`` CPUs (all of them when None). ``worker_logs=False`` keeps the
    workers' output (e.g. Tune's per-checkpoint lines) out of this console, for quiet runs; it
    stays in Ray's log files, and failures still reach the caller as exceptions.
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    if ray.is_initialized():
        yield
        return
    kwargs = {"include_dashboard": False, "log_to_driver": worker_logs, "configure_logging": False}
    if address is None:
        kwargs["num_cpus"] = num_cpus
    else:
        if num_cpus is not None:
            raise UserError("num_cpus applies to a local Ray only; a cluster at an address "
                            "brings its own CPUs (drop one of the two)")
        check_address(address)
        kwargs = {"address": address, "log_to_driver": worker_logs}
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError) as exc:  # ValueError: e.g. ray:// without the ray[client] extra
        raise UserError(f"cannot connect to Ray at {short(address)!r}: {exc}; {_HOW}") from exc
    try:
        yield
    finally:
        ray.shutdown()
