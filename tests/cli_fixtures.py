"""The command lines (``orchestrate.py``, ``python -m benchmark_data``) run in-process, as a user runs them.

In-process (not a subprocess) so tests share one local Ray and skip a Python start; the exit status
includes argparse's own exits, so bad-input tests read the same status a shell would see.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def captured(main: Callable[[list[str]], int | None], *args: object) -> tuple[int, str, str]:
    """``main(ARGS)`` of a command line in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def orchestrate_cli(*args: str) -> tuple[int, str, str]:
    """``python orchestrate.py ARGS...`` in this process: (exit status, stdout, stderr)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import orchestrate

    return captured(orchestrate.main, *args)


def store_cli(*args: str) -> tuple[int, str, str]:
    """``python -m benchmark_data ARGS...`` in this process, its errors printed as the command prints them."""
    from benchmark_data.__main__ import _run

    return captured(_run, *args)
