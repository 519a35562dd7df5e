"""The pruning pipeline of ``orchestrate.py prune`` (thesis Algorithm 2), each step a Ray Tune experiment.

  1. ``unpruned``: train the unpruned network, one trial per seed;
  2. ``search``: TAS (one trial per seed, ``trainables.prune.search``); the pre-defined and random
     baselines are computed here (no training);
  3. ``retrain``: train every found network from scratch, w/ Init or w/ KD from step 1's network
     of the same seed, one trial per (method, transfer, seed).

Every trial checkpoints each epoch (``common.run_config``: a crashed trial is retried from its
last checkpoint); ``--resume`` continues an interrupted pipeline: finished steps are read back,
an interrupted one is restored with Tune (``Tuner.restore``), finished trials are not rerun. The
folder OUT/prune/EXPERIMENT holds ``settings.json``, step 1's weights (``unpruned-seedS.pt``) and
Ray's files of each step; OUT/prune/EXPERIMENT/prune.parquet the result rows (docs/SCHEMA.md,
"pruning results").
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spaces.errors import UserError

from .common import absolute, progress_bar, ray_session, read_saved, run_config, trial_dirname, tune_progress

PRUNE_FOLDER = "prune"
SETTINGS_FILE = "settings.json"
RESULTS_FILE = "prune.parquet"


@dataclass(frozen=True)
class PruneSettings:
    experiment: str
    model: str
    dataset: str
    data_dir: str | None
    subset: dict | None              # {train, valid, test, size} (trainables.prune.data) or None
    flops_target: float              # a share of the unpruned network's FLOPs, in (0, 1]
    methods: tuple[str, ...]         # tas | predefined | random
    transfers: tuple[str, ...]       # none | init | kd
    search_mode: str                 # tas | width | depth (TAS, TAS (W), TAS (D))
    seeds: tuple[int, ...]
    train_epochs: int
    search_epochs: int
    max_failures: int = 2
    gpus_per_trial: float = 0.0
    ratios: tuple[float, ...] | None = None   # width candidates (None: trainables.prune.supernet.RATIOS)

    def space_knobs(self) -> dict[str, Any]:
        return {"mode": self.search_mode, **({} if self.ratios is None else {"ratios": tuple(self.ratios)})}

    def base(self) -> dict[str, Any]:
        """What every trial's config shares (the trials train on the GPU they reserve, if any)."""
        return {"dataset": self.dataset, "data_dir": self.data_dir, "subset": self.subset, "model": self.model,
                "device": "cuda" if self.gpus_per_trial else "cpu"}

    def target_text(self) -> str:
        return f"{100 * self.flops_target:.6g}%"

    def to_file(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True))

    @classmethod
    def from_file(cls, path: Path) -> PruneSettings:
        raw = read_saved(path)
        try:
            for k in ("methods", "transfers", "seeds"):
                raw[k] = tuple(raw[k])
            if raw.get("ratios") is not None:
                raw["ratios"] = tuple(raw["ratios"])
            return cls(**raw)
        except (KeyError, TypeError, AttributeError) as exc:  # JSON, but not these settings
            raise UserError(f"{path} does not hold a pipeline's settings ({type(exc).__name__}: {exc}); it was not "
                            f"written by this version of orchestrate.py prune: delete {path.parent} and start "
                            "again without --resume") from None


class Interrupted(Exception):
    """A step stopped (Ctrl-C) before every trial ran its epochs; ``--resume`` continues it."""


def experiment_dir(out: str | Path, experiment: str) -> Path:
    return absolute(out) / PRUNE_FOLDER / experiment


def run_step(name: str, cases: list[dict], folder: Path, settings: PruneSettings, *, quiet: bool) -> list[dict]:
    """Run ``cases`` (trainable configs) as the Tune experiment ``folder/name`` (restored where an
    earlier run left it); per case, in order: its last result and its checkpoint folder."""
    from ray import tune

    from trainables.prune.engine import prune_trainable

    step_dir = folder / name
    resources = {"cpu": 1, **({"gpu": settings.gpus_per_trial} if settings.gpus_per_trial else {})}
    trainable = tune.with_resources(prune_trainable(), resources)
    total = sum(int(c["epochs"]) for c in cases)
    bar = progress_bar(total, desc=f"{name} epochs", unit="epoch", quiet=quiet)

    progress = tune_progress(bar)

    if tune.Tuner.can_restore(step_dir):
        tuner = tune.Tuner.restore(str(step_dir), trainable, resume_errored=True, resume_unfinished=True)
    else:
        tuner = tune.Tuner(trainable, param_space={"case": tune.grid_search(cases)},
                           tune_config=tune.TuneConfig(trial_dirname_creator=trial_dirname),
                           run_config=run_config(step_dir, max_failures=settings.max_failures, quiet=True,
                                                 callbacks=[progress]))
    try:
        results = tuner.fit()  # Ctrl-C: Tune saves the step's state and returns here
    finally:
        bar.close()
    for r in results:
        if r.error is not None:
            raise UserError(f"step {name}: a trial failed ({r.error}); rerun with --resume to continue it")
    if len(results) < len(cases) or not all((r.metrics or {}).get("done") for r in results):
        raise Interrupted(name)  # the later steps must not read a half-run step
    by_case = {}
    for r in results:
        by_case[json.dumps(r.config["case"], sort_keys=True)] = (r.metrics, r.checkpoint.path)
    return [by_case[json.dumps(c, sort_keys=True)] for c in cases]


def run_pipeline(settings: PruneSettings, folder: Path, *, address: str | None, parallel: int | None,
                 quiet: bool):
    """The three steps (module docstring); the result rows as a DataFrame."""
    import pandas as pd
    import torch

    from spaces.cifar_resnet import cost, full_arch
    from trainables.prune.baselines import predefined, random_arch
    from trainables.prune.engine import step_dataset
    from trainables.prune.search import PruneSpace

    data = step_dataset(settings.base())  # missing files fail here, before Ray starts
    shape = {"num_classes": data.num_classes, "in_channels": data.in_channels, "input_size": data.image_size}
    space = PruneSpace(settings.model, **shape, **settings.space_knobs())
    target = space.target(settings.target_text())

    def costs(arch) -> dict:
        return cost(arch, data.num_classes, in_channels=data.in_channels, input_size=data.image_size)

    full = full_arch(settings.model)
    base = settings.base()
    with ray_session(address=address, num_cpus=parallel, quiet=True):
        # step 1
        cases = [{**base, "step": "train", "arch": full.to_str(), "transfer": "none", "seed": s,
                  "epochs": settings.train_epochs} for s in settings.seeds]
        unpruned = {}
        for s, (metrics, ckpt) in zip(settings.seeds, run_step("unpruned", cases, folder, settings, quiet=quiet)):
            path = folder / f"unpruned-seed{s}.pt"
            if not path.exists():
                state = torch.load(Path(ckpt) / "prune.pt", weights_only=False)
                torch.save(state["engine"]["net"], path)
            unpruned[s] = (metrics["test_acc"], str(path))
        # step 2
        found: dict[tuple[str, int], tuple[str, float]] = {}
        if "tas" in settings.methods:
            cases = [{**base, "step": "search", "flops_target": settings.target_text(), **settings.space_knobs(),
                      "seed": s, "epochs": settings.search_epochs} for s in settings.seeds]
            for s, (metrics, _) in zip(settings.seeds, run_step("search", cases, folder, settings, quiet=quiet)):
                found["tas", s] = (metrics["arch"], float(metrics.get("time_total_s", float("nan"))))
        for s in settings.seeds:
            if "predefined" in settings.methods:
                found["predefined", s] = (predefined(space, target).to_str(), 0.0)
            if "random" in settings.methods:
                found["random", s] = (random_arch(space, target, s).to_str(), 0.0)
        # step 3
        keys = [(m, t, s) for m in settings.methods for t in settings.transfers for s in settings.seeds]
        cases = [{**base, "step": "train", "arch": found[m, s][0], "transfer": t, "seed": s,
                  "teacher": None if t == "none" else unpruned[s][1], "epochs": settings.train_epochs}
                 for m, t, s in keys]
        trained = run_step("retrain", cases, folder, settings, quiet=quiet)
    full_cost = costs(full)
    rows = [{"method": "unpruned", "transfer": "none", "seed": s, "arch": full.to_str(), **full_cost,
             "accuracy": acc, "unpruned_accuracy": acc, "search_time_s": 0.0} for s, (acc, _) in unpruned.items()]
    for (m, t, s), (metrics, _) in zip(keys, trained):
        rows.append({"method": m, "transfer": t, "seed": s, "arch": found[m, s][0], **costs(found[m, s][0]),
                     "accuracy": metrics["test_acc"], "unpruned_accuracy": unpruned[s][0],
                     "search_time_s": found[m, s][1]})
    df = pd.DataFrame(rows)
    df.insert(0, "experiment", settings.experiment)
    df.insert(1, "model", settings.model)
    df.insert(2, "dataset", settings.dataset)
    df["search_mode"] = [settings.search_mode if m == "tas" else "" for m in df["method"]]
    df["accuracy_drop"] = df["unpruned_accuracy"] - df["accuracy"]
    df["unpruned_flops_m"], df["unpruned_params_m"] = full_cost["flops_m"], full_cost["params_m"]
    df["flops_pruned_pct"] = 100.0 * (1 - df["flops_m"] / full_cost["flops_m"])
    df["params_pruned_pct"] = 100.0 * (1 - df["params_m"] / full_cost["params_m"])
    df["flops_target_m"] = target.value
    df["train_epochs"], df["search_epochs"] = settings.train_epochs, settings.search_epochs
    write_results(df, folder / RESULTS_FILE, settings, data.fingerprint)
    return df


def write_results(df, path: Path, settings: PruneSettings, fingerprint: str) -> None:
    """The rows as one Parquet file whose metadata records how they were produced (schema.provenance)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmark_data.schema import provenance

    meta = provenance("trials", recipe={"train": "SGD 0.1 nesterov cosine wd 5e-4", "search": "TAS"},
                      skeleton={"model": settings.model}, dataset_fingerprint=fingerprint,
                      extra={"table": "prune", "settings": json.dumps(dataclasses.asdict(settings), sort_keys=True)})
    for role in ("objective_column", "fidelity_column", "time_column"):
        meta.pop(role, None)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k: v for k, v in meta.items()}})
    tmp = path.with_name("." + path.name)
    pq.write_table(table, tmp)
    tmp.replace(path)


def format_summary(df) -> str:
    from .common import fmt_spread, fmt_value, format_table

    grouped = df.groupby(["method", "transfer"], sort=False)
    rows = []
    for (method, transfer), g in grouped:
        rows.append([method, transfer, fmt_value(g["flops_m"].mean()), f"{g['params_m'].mean():.3f}",
                     fmt_value(g["flops_pruned_pct"].mean(), 1, " %"), fmt_value(g["accuracy"].mean(), unit=" %"),
                     fmt_spread(g["accuracy"].std(ddof=0), len(g)), fmt_value(g["accuracy_drop"].mean())])
    return format_table([("method", "<"), ("transfer", "<"), ("MFLOPs", ">"), ("M params", ">"),
                         ("FLOPs pruned", ">"), ("accuracy", ">"), ("spread", ">"), ("drop", ">")], rows)
