"""The run modes of ``orchestrate.py``: one module per mode, one line per mode in ``MODES``.

A mode module provides
  ``HELP`` (one line for the command list), ``DESCRIPTION`` and ``EPILOG`` (its ``--help``),
  ``add_arguments(parser)``   its flags, and only its flags (argparse rejects any other),
  ``settings_from_args(args)`` every check of the flags, returning the mode's frozen settings
                               dataclass; it writes nothing and starts nothing,
  ``run(settings, quiet)``     does the work and prints the summary; returns the exit status.
Runners never see ``argparse.Namespace``: what crosses from the command line into a run is the
settings object. Shared machinery (common flags, experiment names, the Tune run, summary tables)
is in ``orchestrator.common``. Mode modules import their heavy parts (Ray, torch, the
benchmark arrays) inside functions, so building the parser stays cheap.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# name -> module; the first one is the default (``orchestrate.py --searcher bohb`` = simulate).
MODES = {
    "simulate": "orchestrator.modes.simulate",
    "train": "orchestrator.modes.train",
    "oneshot": "orchestrator.modes.oneshot",
    "prune": "orchestrator.modes.prune",
}
DEFAULT_MODE = next(iter(MODES))


def mode_module(name: str) -> ModuleType:
    return importlib.import_module(MODES[name])


__all__ = ["DEFAULT_MODE", "MODES", "mode_module"]
