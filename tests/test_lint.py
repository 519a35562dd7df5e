"""The style rules and the layering contracts of pyproject.toml, run as part of the test suite.

``ruff check`` applies the project's rule set; ``lint-imports`` checks the import contracts
(orchestrator -> trainables -> spaces, benchmark_data on spaces only). Both are pinned in the
``test`` extra; a failure prints the tools' own report.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the test environment's scripts, not whatever is on PATH


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    exe = BIN / name
    if not exe.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed; install the test extra: pip install -e '.[test]'")
        exe = Path(found)
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    proc = run_tool("ruff", "check", "--no-cache", "--output-format", "concise", ".")
    assert proc.returncode == 0, f"ruff check found problems:\n{proc.stdout}{proc.stderr}"


def test_import_contracts_are_kept():
    # --no-cache: no cache folder left in the checkout.
    proc = run_tool("lint-imports", "--no-cache", "--no-logo")
    assert proc.returncode == 0, f"an import contract is broken:\n{proc.stdout}{proc.stderr}"
    assert "0 broken" in proc.stdout, proc.stdout
