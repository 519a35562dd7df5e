"""``orchestrate.main`` run in-process, as a user's command line would run it.

In-process (not a subprocess) so tests share one local Ray and skip a Python start; the exit status
includes argparse's own exits, so bad-input tests read the same status a shell would see.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def orchestrate_cli(*args: str) -> tuple[int, str, str]:
    """``python orchestrate.py ARGS...`` in this process: (exit status, stdout, stderr)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import orchestrate

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = orchestrate.main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()
