"""A torch engine hosted as a Ray Tune Trainable, with an exact checkpoint after every epoch.

Both Tune trainables of the project wrap an engine that trains one epoch per call and whose
``state_dict()`` restores it exactly: ``trainables.train.TrainArch`` (one trial = one architecture,
``engine.TrainEngine``) and ``trainables.oneshot.search.OneShotSearch`` (one trial = one one-shot
search, ``SearchEngine``). What hosting such an engine takes is here, once:

  * ``EngineHost``, the mixin that saves and loads a checkpoint: the engine's state plus whatever
    the trainable keeps beside it (``extra_state`` / ``load_extra_state``), in one ``torch.save``
    file per checkpoint folder. Tune calls these on pause, on failure and when it restores a
    trial, so a restored trial continues exactly as an uninterrupted one;
  * ``tune_class``, which mixes a host into ``tune.Trainable`` on first use and
    ``module_getattr``, which lets a module offer that class as a plain attribute: importing an
    engine (the tests, the builder's workers, a simulated search) must not pay ~1 s for importing
    ray.tune;
  * ``absolute_path``: Tune runs a trainable inside its trial folder, so a relative path in a
    config means the folder the run was launched from.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch


class EngineHost:
    """Checkpointing for a Tune trainable whose ``setup()`` sets ``self.engine``.

    The engine needs ``state_dict()`` / ``load_state_dict(state)``; a checkpoint is the file
    ``CHECKPOINT_FILE`` holding ``{"engine": engine.state_dict(), **extra_state()}``.
    """

    CHECKPOINT_FILE = "state.pt"
    engine: Any

    def extra_state(self) -> dict[str, Any]:
        """What the trainable keeps beside the engine and must survive a restore."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what ``extra_state`` saved (``state`` is the whole checkpoint)."""

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save({"engine": self.engine.state_dict(), **self.extra_state()},
                   os.path.join(checkpoint_dir, self.CHECKPOINT_FILE))

    def load_checkpoint(self, checkpoint: str | dict) -> None:
        # Tune passes the checkpoint folder (older Ray versions: a dict holding its path).
        folder = checkpoint if isinstance(checkpoint, str) else checkpoint["path"]
        state = torch.load(os.path.join(folder, self.CHECKPOINT_FILE), weights_only=False)
        self.engine.load_state_dict(state["engine"])
        self.load_extra_state(state)


@functools.cache
def tune_class(host: type, name: str) -> type:
    """``host`` mixed into ``ray.tune.Trainable`` as the class ``name`` of ``host``'s module.

    Built once per process; the class is also set as that module's attribute, so that later
    lookups and pickling by reference (Ray ships trainables to workers) find it directly.
    """
    from ray import tune

    cls = type(name, (host, tune.Trainable), {
        "__module__": host.__module__, "__qualname__": name, "__doc__": host.__doc__})
    setattr(sys.modules[host.__module__], name, cls)
    return cls


def module_getattr(module: str, hosts: Mapping[str, type]) -> Callable[[str], type]:
    """A module-level ``__getattr__`` offering ``tune_class(hosts[name], name)`` as ``name``."""
    def __getattr__(name: str) -> type:
        if name in hosts:
            return tune_class(hosts[name], name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def absolute_path(path: Any) -> Path:
    """``path`` as an absolute path, relative ones taken from the folder the run started in."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(os.environ.get("TUNE_ORIG_WORKING_DIR", os.getcwd())) / p
