#!/usr/bin/env python
"""Search neural architectures on a tabular benchmark (simulated clock), live on Ray Tune, or by weight sharing.

    python orchestrate.py --searcher bohb --budget 2e4s            # the main job: simulate, embedded benchmark
    python orchestrate.py simulate --searcher all --runs 500 --store path/to/store --dataset cifar10
    python orchestrate.py train --searcher rea --C 8 --N 1 --trials 20   # live, on Ray Tune
    python orchestrate.py oneshot --searcher gdas --epochs 50 --runs 3

The command line is ``orchestrator.cli``; each mode is a module of ``orchestrator.modes``.
"""

from __future__ import annotations

import sys

from benchmark_data.cli import run_cli
from orchestrator.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(run_cli(main))  # errors as `error: ...` (exit 2); output piped into `head` ends quietly
