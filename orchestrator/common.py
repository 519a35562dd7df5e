"""What every run mode does the same way: common flags, experiment names, checks before any work,
the Ray Tune run, and the summary tables.

One vocabulary for every command line of the project:
  ``--store PATH``   a Parquet benchmark store, wherever one is read or written (``embedded``: the
                     digits benchmark shipped with the package, wherever a store is read);
  ``--out DIR``      the results folder (runs, curves, trials, Ray's files), nothing else;
  ``--workers W``    how many evaluations run at once inside one search;
  ``--parallel K``   CPUs of a local Ray over which independent runs are spread;
  ``--quiet``        only the summary and errors: no progress bar, no Ray output.
Nothing here imports Ray, torch or the benchmark arrays at module level.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shlex
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from spaces.errors import UserError, short

from .schedulers import SCHEDULERS  # the same names simulated and live (Ray Tune's schedulers)

# Early stopping over epochs, the same in simulated and live runs: ASHA's first rung after one
# epoch, a third of each rung promoted (Ray's AsyncHyperBandScheduler / HyperBandScheduler).
GRACE_PERIOD, REDUCTION_FACTOR = 1, 3
CHECKPOINT_LINES_ENV = "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"


# ----- flags ---------------------------------------------------------------------------------
def add_store_flag(p: argparse.ArgumentParser, *, reads: bool, help: str, default: str | None = None) -> None:
    """``--store`` (``benchmark_data.cli``'s, the same in every CLI). A store that is read keeps
    ``--benchmark`` as a hidden alias, for command lines written before."""
    from benchmark_data.cli import add_store_flag as add

    if reads:
        add(p, reads=True, help=help)
        p.add_argument("--benchmark", dest="store", help=argparse.SUPPRESS)
    else:
        p.add_argument("--store", default=default, metavar="PATH", help=help)


def add_output_flags(p: argparse.ArgumentParser, *, experiment_help: str) -> None:
    p.add_argument("--out", default="results", metavar="DIR",
                   help="results folder: runs, curves, trials and Ray's files go below it (default results/)")
    p.add_argument("--experiment", default=None, metavar="NAME", help=experiment_help)
    p.add_argument("--quiet", action="store_true",
                   help="print only the summary and errors (no progress bar, no Ray output)")


def seed_value(text: str) -> int:
    """``--seed``: numpy's and Ray's generators take only non-negative integers, so a negative one
    is refused while parsing, not after the experiment was set up (or inside every trial)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {short(text)!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is a non-negative integer, got {value}")
    return value


def add_seed_flag(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--seed", type=seed_value, default=0, help=help)


def add_ray_flags(p: argparse.ArgumentParser, *, parallel_help: str | None) -> None:
    p.add_argument("--address", default=None,
                   help="Ray cluster address (e.g. auto or ray://head:10001); default: a private local Ray")
    if parallel_help is not None:
        p.add_argument("--parallel", type=int, default=None, metavar="K", help=parallel_help)


def add_trial_flags(p: argparse.ArgumentParser) -> None:
    """``--max-failures`` and ``--gpus-per-trial``: how the Tune trials of a live mode run."""
    p.add_argument("--max-failures", type=int, default=2, metavar="K",
                   help="retries of a crashed trial, each from its last checkpoint (default 2)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="G",
                   help="GPUs per trial, fractions allowed; 0 trains on the CPU (default 0)")


def add_surrogate_flags(p: argparse.ArgumentParser) -> None:
    """``--no-surrogate`` and ``--allow-gaps``: what a mode that reads a benchmark's task view does
    with a table that covers only part of the space (``benchmark_data.task``)."""
    p.add_argument("--no-surrogate", dest="surrogate", action="store_false",
                   help="read trained rows only, leaving out the store's surrogate predictions (by default they "
                        "complete a partial table, and the output says how much of a result came from them)")
    p.add_argument("--allow-gaps", action="store_true",
                   help="search a table that covers only part of the space as it is: a proposal without data is a "
                        "failed evaluation that costs nothing (default: refused, with the command that completes it)")


def add_scheduler_flag(p: argparse.ArgumentParser, *, default: str = "fifo") -> None:
    p.add_argument("--scheduler", default=default, choices=SCHEDULERS,
                   help=f"fifo: every trial to its end (default); asha: asynchronous successive halving "
                        f"(grace {GRACE_PERIOD} epoch, reduction {REDUCTION_FACTOR}); hyperband: synchronous "
                        f"HyperBand (reduction {REDUCTION_FACTOR}); not with bohb, which runs its own brackets")


def at_least(flag: str, value: float | None, minimum: float) -> None:
    if value is not None and not value >= minimum:
        raise UserError(f"{flag} must be at least {minimum:g}, got {value:g}")


def absolute(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def folder_flag(flag: str, path: str | Path) -> str:
    """A folder flag's absolute path; it must not name a file (writes into it would fail late)."""
    p = absolute(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{flag} {p} is a file; give a folder (it is created when missing)")
    return str(p)


def check_scheduler(searcher: str, scheduler: str) -> None:
    """BOHB asks each trial for a number of epochs (its own HyperBand brackets): a second layer of
    early stopping would cut trials below the budgets its model is fitted on."""
    if scheduler not in SCHEDULERS:
        raise UserError(f"unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
    if searcher == "bohb" and scheduler != "fifo":
        raise UserError(f"bohb runs its own HyperBand brackets (it asks each trial for a number of "
                        f"epochs), so it cannot run under --scheduler {scheduler}; use --scheduler fifo "
                        "(the default), or asha/hyperband with another searcher")


# ----- experiments -----------------------------------------------------------------------------
def experiment_name(requested: str | None, stem: str) -> str:
    """The name asked for, else ``stem``, the time and a random suffix (two runs started in the same
    second never share a default name); checked as a partition folder name either way."""
    from benchmark_data.schema import check_partition_value

    name = requested or f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}".replace(" ", "")
    check_partition_value("experiment", name)
    return name


def check_new_experiment(out: str | Path, experiment: str, *folders: str) -> None:
    """Refuse a name whose results exist already under ``out``: its ``runs`` (and ``trials``)
    partitions, or the mode's own folders (``folders``, e.g. "live"), so nothing is appended to or
    overwritten (readers would stitch two runs under one key)."""
    root = absolute(out)
    taken = [root / table / f"experiment={experiment}" for table in ("runs", "trials")]
    taken += [root / f / experiment for f in folders]
    for folder in taken:
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise UserError(f"experiment {experiment!r} exists already ({folder}); choose another "
                            "--experiment (or leave it out for a fresh name), or remove that folder to redo it")


INTERRUPTED_STATUS = 130  # a shell's status for a command ended by Ctrl-C (128 + SIGINT)


def add_resume_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--resume", action="store_true",
                   help=f"finish an interrupted experiment: {what}; the other flags must be the ones it was "
                        "started with (with --experiment NAME, or alone when only one experiment under --out "
                        "matches them)")


def resume_command(command_line: Sequence[str] | None, mode: str, experiment: str) -> str:
    """The command that finishes ``experiment``: the command line it was started with, plus
    ``--resume`` and ``--experiment NAME`` where missing (without a command line, a template)."""
    if command_line is None:
        return f"orchestrate.py {mode} <the same flags> --experiment {shlex.quote(experiment)} --resume"
    words = list(command_line)
    if words and words[0] == mode:
        words = words[1:]
    if not any(w == "--experiment" or w.startswith("--experiment=") for w in words):
        words += ["--experiment", experiment]
    if "--resume" not in words:
        words.append("--resume")
    return shlex.join(["orchestrate.py", mode, *words])


IDENTITY_FILE = "experiment.json"  # OUT/MODE/NAME/experiment.json: what --resume must find again


def read_saved(path: Path) -> Any:
    """The JSON an experiment keeps beside its results (its flags, its settings); a damaged or
    foreign file is a UserError saying what to do, not a traceback."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} ({exc}); it was not written by this version of orchestrate.py, "
                        f"or it is damaged: delete {path.parent} and start the experiment again without "
                        "--resume") from None


def write_identity(out: str | Path, folder: str, experiment: str, identity: dict) -> None:
    """What defines an experiment's results (its flags, resolved), in ``OUT/folder/NAME``, for
    ``--resume`` to check against the flags it is given (``find_resumable``)."""
    path = absolute(out) / folder / experiment
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".{IDENTITY_FILE}.tmp"
    tmp.write_text(json.dumps(identity, sort_keys=True, indent=1, default=str) + "\n")
    os.replace(tmp, path / IDENTITY_FILE)


def find_resumable(out: str | Path, folder: str, requested: str | None, identity: dict) -> str:
    """The experiment under ``OUT/folder`` that ``--resume`` finishes: the one named, else the only
    one these flags started; UserError when there is none, or when its flags differ (named)."""
    identity = json.loads(json.dumps(identity, default=str))  # as it reads back from the file
    root = absolute(out) / folder
    if requested is not None:
        path = root / requested / IDENTITY_FILE
        if not path.is_file():
            done = absolute(out) / "runs" / f"experiment={requested}"
            if done.is_dir() and any(done.iterdir()):
                raise UserError(f"experiment {requested!r} is complete already ({done}); nothing to resume")
            raise UserError(f"no interrupted experiment {requested!r} under {absolute(out)} (no {path}); "
                            "start it without --resume")
        saved = read_saved(path)
        differ = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
        if differ:
            shown = "; ".join(f"{k}: started with {saved.get(k)!r}, now {identity.get(k)!r}" for k in differ)
            raise UserError(f"--resume needs the flags experiment {requested!r} was started with ({shown})")
        return requested
    matches = sorted(p.parent.name for p in root.glob(f"*/{IDENTITY_FILE}") if read_saved(p) == identity)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(f"no interrupted experiment under {absolute(out)} was started with these flags; "
                        "name it with --experiment NAME, or start it without --resume")
    raise UserError(f"{len(matches)} interrupted experiments under {absolute(out)} match these flags "
                    f"({', '.join(matches)}); choose one with --experiment NAME")


def check_writable(flag: str, folder: str | Path) -> None:
    """UserError now, before any work, when ``folder`` (or, while it is missing, the nearest
    folder above it that exists) cannot be written: a run would otherwise compute everything and
    fail on its first write."""
    p = absolute(folder)
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:  # a real write, not os.access: that says yes to root, and knows nothing of read-only mounts
        if not probe.is_dir():
            raise NotADirectoryError(str(probe))
        tempfile.TemporaryFile(dir=probe).close()
    except OSError:
        where = "" if probe == p else f" (it would be created in {probe}, which cannot be written)"
        raise UserError(f"{flag} {p} is not writable{where}; give a folder you can write to") from None


# ----- Ray Tune ----------------------------------------------------------------------------------
@contextlib.contextmanager
def ray_session(*, address: str | None, num_cpus: int | None = None, quiet: bool) -> Iterator[None]:
    """Ray for one run. Workers' console output (Tune's per-checkpoint lines, prints of trials)
    stays in Ray's log files whenever a bar or quiet output is wanted, so it never lands inside a
    progress bar; failures still reach the driver as exceptions."""
    from trainables.ray_utils import start_ray

    # A checkpoint per epoch makes Tune snapshot the experiment every epoch, on purpose (a crash
    # loses at most one epoch); its warning about that is noise here. Tune's newer console output
    # prints a configuration box even at verbose=0.
    os.environ.setdefault(CHECKPOINT_LINES_ENV, "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    with _ray_logs_quiet(quiet), start_ray(address=address, num_cpus=num_cpus, worker_logs=False):
        yield


@contextlib.contextmanager
def _ray_logs_quiet(quiet: bool) -> Iterator[None]:
    if not quiet:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("ray", "ray.tune", "ray.train", "ray.data")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, before):
            lg.setLevel(level)


def trial_dirname(trial: Any) -> str:
    """Short trial folders (Ray's default spells the whole config into the name)."""
    return f"trial_{trial.trial_id}"


def run_config(exp_dir: Path, *, max_failures: int, quiet: bool, callbacks: Sequence = (),
               stop: dict | None = None):
    """Tune's RunConfig as every mode uses it: Ray's files in ``exp_dir``; a crashed trial retried
    from its last checkpoint up to ``max_failures`` times; a checkpoint per step (epoch), only the
    newest kept."""
    from ray import tune

    return tune.RunConfig(
        name=exp_dir.name, storage_path=str(exp_dir.parent), verbose=0 if quiet else 1,
        callbacks=list(callbacks), stop=stop,
        failure_config=tune.FailureConfig(max_failures=max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_frequency=1, checkpoint_at_end=True))


class _NoBar:
    """What a quiet run gets instead of a bar (tqdm is not even imported)."""

    def __init__(self, total: int) -> None:
        self.n, self.total = 0, total

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: float, *, desc: str, unit: str, quiet: bool):
    """A tqdm bar with a whole-number total; ``finish_bar`` brings it to 100 % at the end."""
    total = max(1, round(total))
    if quiet:
        return _NoBar(total)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)


# The bar (and per-result hook) of the Tune run this driver is running now, read by the callback of
# ``tune_progress`` at every result: Tune pickles callbacks into an experiment's saved state and
# ``Tuner.restore`` brings them back, and an unpickled tqdm bar recurses without end, so the
# callback holds no bar and finds this process's one here.
_TUNE_PROGRESS: dict[str, Any] = {"bar": None, "on_result": None}


def tune_progress(bar, on_result=None):
    """A ray.tune.Callback that advances ``bar`` by one at every trial result and then calls
    ``on_result(trial, result)``; a restored experiment's saved callback drives the bar and hook
    given here (call this before ``Tuner.restore`` too)."""
    from ray import tune

    _TUNE_PROGRESS.update(bar=bar, on_result=on_result)

    class Progress(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            from orchestrator.common import _TUNE_PROGRESS as now

            if now["bar"] is not None:
                now["bar"].update()
            if now["on_result"] is not None:
                now["on_result"](trial, result)

    return Progress()


def advance_bar(bar, done: float) -> None:
    """Move ``bar`` to ``done`` (rounded, never past the total, never backwards)."""
    target = min(bar.total, round(done))
    if target > bar.n:
        bar.update(target - bar.n)


def finish_bar(bar) -> None:
    advance_bar(bar, bar.total)
    bar.close()


# ----- summaries ---------------------------------------------------------------------------------
def fmt_count(x: float) -> str:
    """A count: an integer as one ("310"), a mean of counts with one decimal; n/a when unknown."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{int(x)}" if float(x).is_integer() else f"{x:.1f}"


def fmt_value(x: float | None, digits: int = 2, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}{unit}"


def fmt_spread(std: float | None, runs: int) -> str:
    """``+- s`` when there are several runs (the std over them), ``n/a`` for one run."""
    return "n/a" if runs < 2 or std is None or math.isnan(std) else f"+- {std:.2f}"


def fmt_duration(seconds: float | None) -> str:
    """4.0 ms, 72.5 s, 12.3 min: a wall time in a unit that reads at a glance."""
    if seconds is None or math.isnan(seconds):
        return "n/a"
    if seconds < 1:
        return f"{1e3 * seconds:.1f} ms"
    return f"{seconds:.1f} s" if seconds < 600 else f"{seconds / 60:.1f} min"


def format_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str]]) -> str:
    """Columns (header, "<" or ">") padded to their widest cell; cells are strings already."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, (h, _) in enumerate(columns)]
    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, (_, a), w in zip(cells, columns, widths)).rstrip()
    return "\n".join([line([h for h, _ in columns]), *(line(r) for r in rows)])
