"""Live search: any multi-trial searcher proposes architectures that Ray Tune trains for real.

``python orchestrate.py train --searcher rea --dataset digits --C 8 --N 1 --trials 20``

One Tune trial = one architecture trained by ``trainables.train.TrainArch`` (one ``step()`` per
epoch, a checkpoint per epoch, its rows appended to the Parquet store). The searcher is one of
ours behind ``orchestrator.tune_adapter.TuneSearcher``, told the validation accuracy (percent,
maximised) and the epochs actually trained, so the same object that runs in the simulator runs
here.

Choices that are not obvious:
  * One CPU and one torch thread per trial, and ``reuse_actors=True``. On the 2-core development
    machine two 1-thread trials beat one 2-thread trial, and reusing actors cut the per-trial
    overhead from 2-4 s to ~0.1 s when the machine was quiet (17 s to 3 s under heavy load): a
    new actor re-imports torch and reloads the data set.
  * Concurrency: by default as many trials as free CPUs. A searcher asked while results are
    pending proposes without them (BOHB then opens its next bracket, as hpbandster does);
    ``--workers 1`` makes every ask see every earlier result.
  * Schedulers: ``fifo`` trains every trial to its end (the recipe's epochs, or the fidelity a
    multi-fidelity searcher asked for); ``asha`` (ASHAScheduler, grace 1 epoch, reduction 3) and
    ``hyperband`` (HyperBandScheduler, reduction 3) stop weak trials early, over
    ``training_iteration`` = epochs. BOHB brings its own HyperBand brackets through the config's
    ``fidelity``, so BOHB runs under FIFO only: a second early-stopping layer would cut trials
    below the budgets its model is fitted on. Asking for asha/hyperband with bohb is a UserError.
  * Fault tolerance: a crashed trial is retried from its last checkpoint (``--max-failures``);
    only the newest checkpoint of a trial is kept. ``--resume`` continues an interrupted
    experiment with ``Tuner.restore``; Ray restores the searcher from the state that
    ``TuneSearcher.save`` wrote, and the settings come from the experiment's
    ``live_settings.json`` (so the searcher is rebuilt exactly as it was). ``load_searcher``
    reads that state back, e.g. to ask the searcher what it believes best.
  * Results: every trained epoch lands in the store's ``epochs`` table (and the architecture in
    ``archs``) through TrainArch; the experiment folder ``<out>/live/<experiment>/`` holds Ray's
    files and ``live_settings.json``; ``<out>/trials/experiment=<name>/`` holds the ``trials``
    table (one row per trial; ``benchmark_data.schema``, docs/SCHEMA.md), replaced as a whole
    each time the experiment's run ends (a resumed run rewrites it with every trial).
  * Everything a user can get wrong is checked before Ray starts and before anything is written
    (``orchestrator.modes.train`` checks the flags; the data set is loaded once in the driver).
    That includes a ``--store``
    whose rows of this space and dataset were trained with another skeleton (C, N) or, at this
    hp, another recipe (``trainables.train.check_store``): neither is a key column, so the
    trials would train and then find every key they share with those rows taken.
  * The size space has one cell per stage only (NATS-Bench's ``infer.shape.tiny``): ``--N``
    defaults to 1 there and any other value is refused; tss keeps NATS-Bench's N=5.
  * On a multi-node cluster (``--address``) the store and the experiment folder must be on a
    file system every node sees: trials write their rows and checkpoints from where they run.

This module imports Ray only inside functions, so the CLI stays fast for bad input and for the
simulated mode. Its flags and their checks are ``orchestrator.modes.train``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spaces.errors import UserError

from .common import GRACE_PERIOD, REDUCTION_FACTOR, absolute, ray_session, run_config, trial_dirname

METRIC, MODE = "valid_acc", "max"
SETTINGS_FILE = "live_settings.json"
LIVE_FOLDER = "live"  # experiments live in <out>/live/<experiment>

@dataclass(frozen=True)
class LiveSettings:
    """Everything that defines a live experiment; saved with it so that --resume rebuilds it."""

    experiment: str
    searcher: str
    space: str
    dataset: str
    data_dir: str | None
    recipe: str
    epochs: int  # the recipe's length after any --epochs override
    trials: int
    scheduler: str
    store: str  # absolute
    C: int
    N: int
    seed: int
    max_concurrent: int | None
    max_failures: int
    gpus_per_trial: float
    lr_schedule_step: str = "epoch"  # the recipe's cosine step (trainables.recipes)

    def recipe_spec(self) -> dict[str, Any]:
        """The recipe as a TrainArch config carries it: name, (possibly new) length, cosine step."""
        return {"name": self.recipe, "epochs": self.epochs, "lr_schedule_step": self.lr_schedule_step}

    def trial_constants(self) -> dict[str, Any]:
        """The config keys every trial shares (the searcher adds its decisions and fidelity)."""
        return {"space": self.space, "dataset": self.dataset, "data_dir": self.data_dir,
                "recipe": self.recipe_spec(), "seed": self.seed, "C": self.C, "N": self.N,
                "store": self.store, "threads": 1,
                "device": "cuda" if self.gpus_per_trial > 0 else "cpu"}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_file(cls, path: Path) -> LiveSettings:
        try:
            data = json.loads(path.read_text())
            # Settings saved before the field existed come from runs whose cosine stepped per
            # iteration (the only schedule then): resuming one must keep it.
            data.setdefault("lr_schedule_step", "iteration")
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"cannot read the experiment settings {path} ({exc}); the folder was "
                            "not written by this version of orchestrate.py train") from None


@dataclass
class LiveOutcome:
    """What a finished (or interrupted) live search produced."""

    settings: LiveSettings
    trials: Any  # pandas.DataFrame: the trials table's columns
    experiment_dir: Path
    trials_path: Path  # the trials partition's folder
    wall_time_s: float  # of Tuner.fit (Ray's start-up not included)
    interrupted: bool


def experiment_dir(out: str | Path, experiment: str) -> Path:
    return absolute(out) / LIVE_FOLDER / experiment


def check_store(settings: LiveSettings) -> None:
    """UserError before any training when --store holds rows of another skeleton or recipe."""
    from trainables.recipes import get_recipe
    from trainables.train import check_store as check

    check(settings.store, settings.space, settings.dataset, get_recipe(settings.recipe_spec()),
          C=settings.C, N=settings.N, flag="--store")


def check_dataset(settings: LiveSettings) -> None:
    """Load the data set once in the driver: missing or corrupt files fail here, not in trials."""
    from trainables.train import cached_dataset

    cached_dataset(settings.dataset, settings.data_dir)


# ----- the Tune experiment ----------------------------------------------------------------------
def make_searcher(settings: LiveSettings):
    """The searcher wrapped for Tune; told the epochs actually trained (a scheduler may stop early)."""
    from orchestrator.searchers import make_searcher as build
    from orchestrator.tune_adapter import TuneSearcher
    from spaces import get_space

    searcher = build(settings.searcher, get_space(settings.space).hparams, settings.seed,
                     min_fidelity=1, max_fidelity=settings.epochs)
    return TuneSearcher(searcher, metric=METRIC, mode=MODE, fidelity_key="training_iteration")


def make_scheduler(settings: LiveSettings):
    """FIFO, or early stopping over training_iteration (= epochs) up to the recipe's length, by
    Ray's ASHA / HyperBand in the form whose state a resumed experiment keeps
    (``orchestrator.scheduler_state``)."""
    from ray.tune.schedulers import FIFOScheduler

    from orchestrator.scheduler_state import ResumableASHA, ResumableHyperBand

    if settings.scheduler == "asha":
        return ResumableASHA(time_attr="training_iteration", max_t=settings.epochs,
                             grace_period=GRACE_PERIOD, reduction_factor=REDUCTION_FACTOR)
    if settings.scheduler == "hyperband":
        return ResumableHyperBand(time_attr="training_iteration", max_t=settings.epochs,
                                  reduction_factor=REDUCTION_FACTOR)
    return FIFOScheduler()


def make_trainable(settings: LiveSettings):
    from ray import tune

    from trainables.train import TrainArch

    resources = {"cpu": 1, **({"gpu": settings.gpus_per_trial} if settings.gpus_per_trial else {})}
    return tune.with_resources(TrainArch, resources)


def make_tuner(settings: LiveSettings, exp_dir: Path, *, quiet: bool, callbacks: Sequence = ()):
    """A new Tuner for a fresh experiment in ``exp_dir`` (``callbacks``: extra ray.tune.Callback)."""
    from ray import tune

    from orchestrator.scheduler_state import SchedulerState

    scheduler = make_scheduler(settings)
    tune_config = tune.TuneConfig(
        search_alg=make_searcher(settings), scheduler=scheduler, metric=METRIC,
        mode=MODE, num_samples=settings.trials, max_concurrent_trials=settings.max_concurrent,
        reuse_actors=True, trial_dirname_creator=trial_dirname)
    return tune.Tuner(make_trainable(settings), param_space=settings.trial_constants(), tune_config=tune_config,
                      run_config=run_config(exp_dir, max_failures=settings.max_failures, quiet=quiet,
                                            callbacks=[*callbacks, SchedulerState(scheduler)]))


def load_searcher(settings: LiveSettings, exp_dir: Path):
    """The ask/tell searcher as the experiment's last checkpoint left it (history, best, RNG).

    Restored the way ``Tuner.restore`` restores it (Ray's SearchGenerator reading the
    experiment folder), so this also shows what a ``--resume`` would continue from.
    """
    from ray.tune.search import SearchGenerator

    wrapped = make_searcher(settings)
    SearchGenerator(wrapped).restore_from_dir(str(exp_dir))
    return wrapped.inner


def restore_tuner(settings: LiveSettings, exp_dir: Path):
    """The interrupted experiment's Tuner: unfinished trials continue, errored ones retry."""
    from ray import tune

    return tune.Tuner.restore(str(exp_dir), trainable=make_trainable(settings),
                              resume_unfinished=True, resume_errored=True)


def run_live(settings: LiveSettings, exp_dir: Path, *, out: str | Path | None = None, resume: bool = False,
             address: str | None = None, quiet: bool = False, callbacks: Sequence = ()) -> LiveOutcome:
    """Run (or continue) the search on Ray Tune and write its trials table; returns the outcome.

    ``callbacks`` (ray.tune.Callback, e.g. progress hooks) apply to a new experiment; a resumed
    one keeps those it was started with. ``out``: the results folder (default: two levels above
    ``exp_dir``, where ``experiment_dir`` puts it).
    """
    check_dataset(settings)
    with ray_session(address=address, quiet=quiet):
        started = time.perf_counter()  # the search itself; Ray's start-up is the machine's matter
        if resume:
            tuner = restore_tuner(settings, exp_dir)
        else:  # only once Ray is up: a Ray that fails to start leaves no half-made experiment
            exp_dir.mkdir(parents=True)
            _write_atomic(exp_dir / SETTINGS_FILE, lambda tmp: tmp.write_text(settings.to_json()))
            tuner = make_tuner(settings, exp_dir, quiet=quiet, callbacks=callbacks)
        results = tuner.fit()
    wall = time.perf_counter() - started
    trials = trials_table(results, settings, ask_order(settings, exp_dir))
    path = write_trials(trials, settings, exp_dir.parent.parent if out is None else out)
    interrupted = (trials["status"] == "unfinished").any() or len(trials) < settings.trials
    return LiveOutcome(settings, trials, exp_dir, path, wall, interrupted=bool(interrupted))


# ----- results -----------------------------------------------------------------------------------
def ask_order(settings: LiveSettings, exp_dir: Path) -> dict[str, int]:
    """Trial id -> the order the searcher was asked for it (the order Tune created the trials),
    from the searcher's last checkpoint; empty when none was saved."""
    try:
        searcher = load_searcher(settings, exp_dir)
    except (OSError, ValueError, KeyError, RuntimeError):
        return {}
    state = searcher.state_dict()
    return {str(r["trial_id"]): int(r["ask_index"]) for r in searcher.history} | {
        str(tid): int(i) for tid, _, i in state["pending"]}


def trials_table(results, settings: LiveSettings, order: dict[str, int] | None = None):
    """One row per trial (the ``trials`` table's columns), in the order Tune created the trials:
    ``order`` (``ask_order``) where given, since a restored experiment lists its trials in
    another order (Ray re-adds them newest result first); else the results' own order."""
    import pandas as pd

    from spaces import get_space

    space = get_space(settings.space)
    interrupted = results.num_terminated + results.num_errors < len(results)
    listed = list(results)
    if order:  # sorted() is stable: trials the searcher does not know keep their place at the end
        listed.sort(key=lambda r: order.get((r.metrics or {}).get("trial_id") or _trial_id_from(r.path),
                                            len(order)))
    # A trial Tune had created but not started when Ctrl-C came has no config yet (nor params.json):
    # no architecture, nothing trained; the restored searcher proposes it again on --resume.
    # A trial that failed before its first result (an exception in setup: the actor died being
    # created) has neither; Tune's experiment state still holds the config it was created with.
    failed_configs = _failed_trial_configs(results) if results.num_errors else {}
    started = [(r, config) for r in listed
               if (config := _trial_config(r, space, failed_configs.get(r.path))) is not None]
    rows = [_trial_row(r, config, i, settings, space, interrupted) for i, (r, config) in enumerate(started)]
    from benchmark_data.schema import SCHEMAS

    df = pd.DataFrame(rows, columns=SCHEMAS["trials"].names)
    return df.astype({"event": "int32", "arch_index": "int32", "fidelity": "Int16",
                      "epochs": "int16", "feedback": "float32", "test_acc": "float32",
                      "hp": "int16", "run_seed": "int32"})


def _failed_trial_configs(results) -> dict[str, dict]:
    """Trial folder -> config, from the experiment state Tune saved (``ExperimentAnalysis``)."""
    import logging

    from ray.tune import ExperimentAnalysis

    # Its warning that failed trials have no metrics says what we already know.
    quiet = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        analysis = ExperimentAnalysis(results.experiment_path)
    except (OSError, ValueError, KeyError):  # no state saved yet: only the results' own configs
        return {}
    finally:
        quiet.setLevel(level)
    return {t.path: t.config for t in analysis.trials}


def _trial_config(result, space, created_with: dict | None = None) -> dict | None:
    """The trial's config as Tune reports it, else as its folder's params.json records it, else
    (a trial that errored before either existed) as Tune created it; None when none names every
    decision of the space."""
    config = dict(result.config or {})
    if result.error is not None:  # only a failed trial may lack what it was created with
        config = {**(created_with or {}), **config}
    if not all(n in config for n in space.hparams.names) and result.path:
        params = Path(result.path) / "params.json"
        try:
            config = {**json.loads(params.read_text()), **config}
        except (OSError, ValueError):
            pass
    return config if all(n in config for n in space.hparams.names) else None


def _trial_row(result, config: dict, event: int, settings: LiveSettings, space,
               interrupted: bool) -> dict[str, Any]:
    from orchestrator.searchers import FIDELITY

    metrics = result.metrics or {}
    epochs = int(metrics.get("training_iteration", 0))
    arch_index = space.config_to_index({n: config[n] for n in space.hparams.names})
    history = result.metrics_dataframe
    train_time = (float(history["epoch_time_s"].sum())
                  if history is not None and "epoch_time_s" in history else float("nan"))
    return {
        "experiment": settings.experiment, "searcher": settings.searcher, "space": settings.space,
        "dataset": settings.dataset, "hp": settings.epochs, "run_seed": settings.seed,
        "event": event, "trial_id": metrics.get("trial_id") or _trial_id_from(result.path),
        "arch_index": arch_index, "arch": space.to_str(arch_index),
        "fidelity": config.get(FIDELITY), "epochs": epochs,
        "feedback": metrics.get(METRIC, float("nan")),
        "test_acc": metrics.get("test_acc", float("nan")),
        "train_time_s": train_time, "trial_time_s": float(metrics.get("time_total_s", float("nan"))),
        "status": _status(result, epochs, config.get(FIDELITY) or settings.epochs, interrupted),
        "error": error_message(result.error),
    }


ERROR_CHARS = 300
_TYPED_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b: ")


def error_message(error: BaseException | None) -> str | None:
    """A failed trial's exception as ``Type: message``, for the trials table: Ray wraps what the
    trainable raised (``RayTaskError(ValueError)``, the original as ``cause``); the message's
    last line is the trainable's own (Ray's adds the remote traceback above it)."""
    if error is None:
        return None
    cause = getattr(error, "cause", None) or error
    lines = str(cause).strip().splitlines()
    last = lines[-1].strip() if lines else ""
    # An actor that died in setup reports the trainable's exception as its last line, typed.
    text = last if _TYPED_LINE.match(last) else f"{type(cause).__name__}: {last}".rstrip(": ")
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS - 3] + "..."


def _trial_id_from(path: str | None) -> str:
    """A trial that failed before its first result has no metrics; its folder names it."""
    name = Path(path or "").name
    return name.removeprefix("trial_") if name.startswith("trial_") else ""


def _status(result, epochs: int, target: int, interrupted: bool) -> str:
    # Ray's Result does not say whether a trial short of its epochs was stopped by the scheduler
    # or cut by the end of an interrupted run (Ray sets "done" on the last result of both), so an
    # interrupted run calls both "unfinished".
    if result.error is not None:
        return "error"
    if (result.metrics or {}).get("status") == "diverged":
        return "diverged"  # the loss became non-finite or far above chance: stopped, told as a failure
    if epochs >= target:
        return "ok"
    return "unfinished" if interrupted else "stopped"


def best_trial(trials) -> dict | None:
    """The searchers' rule (Searcher.best): the best feedback among the trials trained the most
    epochs, ties to the earliest; None when no trial reported a result."""
    told = trials["status"].isin(["ok", "stopped"])
    ok = trials[told & (trials["epochs"] > 0) & trials["feedback"].notna()]
    if ok.empty:
        return None
    top = ok[ok["epochs"] == ok["epochs"].max()]
    return top.sort_values(["feedback", "event"], ascending=[False, True]).iloc[0].to_dict()


def write_trials(trials, settings: LiveSettings, out: str | Path) -> Path:
    """The experiment's ``trials`` partition under ``out``, with the store's provenance. It
    replaces any earlier fragment of the experiment (a resumed run lists every trial again):
    the new fragment is complete on disk before the old ones go, so a reader never sees none."""
    from benchmark_data.schema import provenance
    from benchmark_data.writer import write_fragment

    folder = absolute(out) / "trials" / f"experiment={settings.experiment}"
    superseded = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
    meta = provenance("trials", recipe=settings.recipe_spec(), skeleton=_skeleton(settings),
                      extra={"experiment": settings.experiment, "settings": settings.to_json()})
    (path,) = write_fragment(out, "trials", trials, metadata=meta)
    for old in superseded:
        old.unlink()
    return path.parent


def read_trials(out: str | Path, experiment: str):
    """The ``trials`` rows of one live experiment under ``out``, in trial order."""
    from benchmark_data.reader import Benchmark

    return Benchmark.open(out).trials(experiment)


def _skeleton(settings: LiveSettings) -> dict[str, int]:
    from trainables.skeleton import skeleton  # no torch

    return skeleton(settings.space, settings.C, settings.N)


def _write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """``write(tmp)`` then rename: readers never see a half-written file (as the store's writer)."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def format_summary(outcome: LiveOutcome) -> str:
    """The end-of-run report: trials, epochs, best architecture, wall time, where things are."""
    s, df = outcome.settings, outcome.trials
    counts = ", ".join(f"{n} {status}" for status, n in df["status"].value_counts().items())
    lines = [f"\nlive search {s.experiment}: {len(df)} trial(s) of {s.trials} ({counts}), "
             f"{int(df['epochs'].sum())} epoch(s) trained; searcher {s.searcher}, scheduler "
             f"{s.scheduler}, recipe {s.recipe} ({s.epochs} epochs), {s.dataset}, "
             + " ".join(f"{k}={v}" for k, v in sorted(_skeleton(s).items()))]
    best = best_trial(df)
    if best is None:
        lines.append("no trial reported a result")
    else:
        lines.append(f"best architecture: {best['arch']}  (index {best['arch_index']}, valid_acc "
                     f"{best['feedback']:.2f} % after {best['epochs']} epoch(s); test_acc "
                     f"{best['test_acc']:.2f} %)")
    lines.append(f"search wall time {outcome.wall_time_s:.1f} s; trials table: {outcome.trials_path}; "
                 f"epochs in the store at {s.store}")
    if outcome.interrupted:
        lines.append(f"interrupted before all {s.trials} trials finished; continue with: "
                     f"orchestrate.py train --resume --experiment {s.experiment} "
                     f"--out {outcome.experiment_dir.parent.parent}")
    return "\n".join(lines)
