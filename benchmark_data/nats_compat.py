"""A NATS-Bench-compatible API over our Parquet store, so existing scripts port by one import.

``from nats_bench import create`` becomes ``from benchmark_data.nats_compat import create``; the
object has the call names, signatures and return shapes of ``nats_bench`` 1.8, but reads lazily
from the store (no tens of GB in memory). Random seed choices use Python's global ``random``
module exactly as NATS-Bench does, so ``random.seed(s)`` reproduces the same picks as the
official API.

Which index it answers by (``api.index_kind``):

* ``"nats"``: the store holds official NATS-Bench indices (``archs.nats_index``, written by the
  importers); index ``i`` is NATS-Bench's ``i``-th architecture, exactly as in ``nats_bench``.
* ``"project"``: the store has no official index (e.g. the embedded benchmark, built by us);
  index ``i`` is the project index (``spaces.get_space(space)``: topology = the six ops as a
  base-5 number, size = the five channel counts as a base-8 number), and ``len(api)`` is the
  size of the space. ``create`` warns once per store when it falls back to this.

Values come from the store, which keeps metrics as float32: every number returned is the
float64-exact value of the stored float32 (NATS-Bench's own float64 originals differ by float32
rounding, at most ~6e-8 relative); means over seeds are taken in float64 of those values.

Where ``nats_bench`` returns its own ``ArchResults`` / ``ResultsCount`` objects
(``query_meta_info_by_index``, ``query_by_index``), this module returns ``StoreArchResults`` /
``StoreTrial``: small read-only views with the same query methods (``get_metrics``,
``get_compute_costs``, ``get_dataset_names``, ``get_dataset_seeds``, ``query``, ``get_train``,
``get_eval``, ...) answering from the store. The store holds no trained weights:
``get_net_param`` is a UserError, and ``clear_params`` / ``reload`` / ``reset_fast_mode`` are
accepted and do nothing (there is nothing loaded to clear or reload).

Conversions made here, and the few documented differences:

* our ``epoch`` column is 1-based (epochs completed); NATS-Bench's ``iepoch`` is 0-based;
* ``hp`` may be given as in NATS-Bench ('12', '200', '01', '90') or as an int;
* NATS-Bench's evaluation sets map to our columns as ``benchmark_data.importers`` documents;
  ``valtest-*`` of cifar100 / ImageNet16-120 (their ``ori-test``, the union of the two equal
  halves) is derived as the mean of the valid and test values;
* the store keeps the time of the validation pass only: ``test-*-time``, ``valtest-*-time`` and
  ``T-ori-test`` / ``T-x-test`` costs are ``None`` (NATS-Bench's own value for "not available");
* where the store has no value (a gap), a set's keys are left out, as NATS-Bench does for sets
  it did not evaluate at that epoch; errors are ``UserError`` (a ``ValueError``, as NATS raises).

Surrogate predictions (the store's ``surrogate`` table, merged in by the reader unless
``create(..., surrogate=False)``) answer for the architectures that were never trained, and every
answer says which it is: ``get_more_info``'s dict gets a ``"surrogate"`` key (True for a
prediction) whenever the table it reads, (dataset, hp), holds predictions, and only then, so that
on a trained table the dicts stay exactly NATS-Bench's; ``StoreArchResults.surrogate`` /
``StoreTrial.surrogate`` say the same, ``show`` and ``query_info_str_by_arch`` print "surrogate
prediction", and the first answer of a facade that uses a prediction warns (``UserWarning``
naming the model and how to leave predictions out). A prediction's only seed is -1.
``evaluated_indexes`` lists the architectures the facade can answer for, predictions included.
"""

from __future__ import annotations

import random as _random
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spaces import get_space
from spaces.errors import UserError

from . import schema as S
from .reader import Benchmark
from .task import decode_cv, describe_surrogate, feedback_dataset, is_feedback_twin

TSS_NAMES, SSS_NAMES = ("tss", "topology"), ("sss", "size")
_COMMENT = ("In this dict, train-loss/accuracy/time is the metric on the {train} of CIFAR-10. The "
            "test-loss/accuracy/time is the performance of the CIFAR-10 test set after training "
            "on the {train} by {hp} epochs. The per-time and total-time indicate the per epoch "
            "and total time costs, respectively.")
_TRAIN_SET = {"cifar10-valid": "train set", "cifar10": "train+valid sets"}
_METRICS = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
            "epoch_time_s", "eval_time_s")
TOPOLOGY_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# The fixed cell of every size-space network: NATS-Bench's best topology cell on CIFAR-100
# validation (AutoDL-Projects, exps/NATS-Bench/main-sss.py:190-192).
SSS_GENOTYPE = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                "nor_conv_3x3~1|nor_conv_3x3~2|")
_WARNED_PROJECT_INDEX: set[tuple[Path, str]] = set()


def _set_names(dataset: str) -> tuple[str | None, str, str | None]:
    """NATS-Bench's names of (valid, test, valtest) for a dataset (see remap_dataset_set_names)."""
    if dataset == "cifar10-valid":
        return "x-valid", "ori-test", None
    if dataset == "cifar10":
        return None, "ori-test", None
    if dataset in ("cifar100", "ImageNet16-120"):
        return "x-valid", "x-test", "ori-test"
    return "x-valid", "x-test", None  # our own datasets: separate valid and test splits


def _mean(values: np.ndarray) -> float | None:
    """Mean over seeds as NATS-Bench takes it (sum / len of floats); None when one is missing.

    Plain Python on purpose: there is one value per seed, and NumPy's reductions cost more than
    the arithmetic on a handful of numbers (this is the simulator's hot path).
    """
    vals = values.tolist()
    if not vals or any(v != v for v in vals):
        return None
    return sum(vals) / len(vals)


def create(file_path_or_dir: str | Path | None, search_space: str, fast_mode: bool = True,
           verbose: bool = False, *, surrogate: bool = True) -> NATSCompat:
    """Open a store (None: the embedded benchmark) with NATS-Bench's ``create`` signature.

    ``fast_mode`` is accepted for compatibility; the store is always read lazily.
    ``surrogate=False`` answers from trained rows only (see the module docstring).
    """
    if search_space in TSS_NAMES:
        space = "tss"
    elif search_space in SSS_NAMES:
        space = "sss"
    else:
        raise UserError(f"invalid search space {search_space!r}; use one of "
                        f"{', '.join(TSS_NAMES + SSS_NAMES)}")
    if file_path_or_dir is not None and (Path(file_path_or_dir) / "meta.pickle.pbz2").is_file():
        raise UserError(f"{file_path_or_dir} is an official NATS-Bench archive, not a store; import "
                        "it once with `python -m benchmark_data import SRC --store DEST` and open DEST")
    return NATSCompat(Benchmark.open(file_path_or_dir, surrogate=surrogate), space, verbose)


class NATSCompat:
    """The subset of ``nats_bench``'s API that a store can answer faithfully (see module doc)."""

    def __init__(self, bench: Benchmark, space: str, verbose: bool = False):
        self.bench, self.space, self.verbose = bench, space, verbose
        self._used_time = 0.0
        self._warned_surrogate = False  # the first answer from a prediction warns, once per facade
        self._curve_cache: dict[tuple[str, int], dict[str, Any]] = {}
        self._datasets = bench.datasets(space) if space in bench.spaces() else []
        pairs: dict[int, int] = {}
        for dataset in self._datasets:
            try:
                table = bench.arch_table(space, dataset)
            except UserError:  # a dataset with results but no archs rows: nothing to map
                continue
            table = table[table["nats_index"].notna()]
            for nats, arch in zip(table["nats_index"].astype(int), table["arch_index"].astype(int)):
                if pairs.setdefault(nats, arch) != arch:
                    raise UserError(f"the store maps NATS-Bench index {nats} to two architectures "
                                    f"({pairs[nats]} and {arch}); re-import from one official source")
        sp = get_space(space)
        if pairs:
            self.index_kind = "nats"
            self._to_project = np.full(max(pairs) + 1, -1, np.int64)
            for nats, arch in pairs.items():
                self._to_project[nats] = arch
        else:
            if not self._datasets:
                raise UserError(f"the store {bench.root} has no results for space {space!r}; "
                                "import an official archive or table (python -m benchmark_data "
                                "import --help) or build one (python -m benchmark_data build)")
            self.index_kind = "project"
            self._to_project = np.arange(sp.size, dtype=np.int64)
            if (bench.root, space) not in _WARNED_PROJECT_INDEX:
                _WARNED_PROJECT_INDEX.add((bench.root, space))
                warnings.warn(f"the store {bench.root} holds no official NATS-Bench indices for "
                              f"space {space!r}: this API answers by the project index "
                              f"(spaces.get_space({space!r}); index_kind='project'), not by "
                              "NATS-Bench's", stacklevel=3)
        self.meta_archs = [sp.to_str(int(a)) if a >= 0 else None for a in self._to_project]
        self.archstr2index = {s: i for i, s in enumerate(self.meta_archs) if s is not None}
        self._evaluated: set[int] | None = None
        if verbose:
            print(f"Create the NATS-Bench-compatible ({self.search_space_name}) API over "
                  f"{bench.root} with {len(self.archstr2index)} architectures.")

    # --- the cheap properties of NASBenchMetaAPI ---------------------------------------------
    def __len__(self) -> int:
        return len(self.meta_archs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self.archstr2index)}/{len(self)} architectures, "
                f"fast_mode=True, file={self.bench.root.name})")

    @property
    def search_space_name(self) -> str:
        return "topology" if self.space == "tss" else "size"

    @property
    def is_topology(self) -> bool:
        return self.space == "tss"

    @property
    def is_size(self) -> bool:
        return self.space == "sss"

    @property
    def full_epochs_in_paper(self) -> int:
        return 200 if self.space == "tss" else 90

    full_train_epochs = full_epochs_in_paper

    @property
    def fast_mode(self) -> bool:
        return True

    @property
    def used_time(self) -> float:
        return self._used_time

    def reset_time(self) -> None:
        self._used_time = 0

    @property
    def avaliable_hps(self) -> list[str]:  # sic: NATS-Bench's spelling
        hps = {hp for d in self._datasets for hp in self.bench.hps(self.space, d)}
        return [self._hp_str(hp) for hp in sorted(hps)]

    def _hp_str(self, hp: int) -> str:
        return f"{hp:02d}" if self.space == "sss" else str(hp)

    # --- indices -------------------------------------------------------------------------------
    def arch(self, index: int) -> str:
        """The official string of the ``index``-th architecture."""
        if not isinstance(index, (int, np.integer)) or not 0 <= index < len(self) \
                or self.meta_archs[index] is None:
            raise UserError(f"invalid index : {index} vs. {len(self)}.")
        return self.meta_archs[index]

    def __getitem__(self, index: Any) -> str | None:
        """``meta_archs[index]`` as in NATS-Bench (list indexing: IndexError past the end)."""
        return self.meta_archs[index]

    def __iter__(self) -> Iterator[str | None]:
        """The architecture strings in index order (None where a NATS index is not stored)."""
        return iter(list(self.meta_archs))

    def query_index_by_arch(self, arch: Any) -> int:
        """Official index of an index, string or object with ``tostr()``; -1 if unknown."""
        if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool):
            if 0 <= arch < len(self):
                return int(arch)
            raise UserError(f"Invalid architecture index {arch} vs [0, {len(self)}].")
        if isinstance(arch, str):
            return self.archstr2index.get(arch, -1)
        if hasattr(arch, "tostr"):
            return self.archstr2index.get(arch.tostr(), -1)
        return -1

    def random(self) -> int:
        """A random official index (Python's global ``random``, as NATS-Bench)."""
        return _random.randint(0, len(self) - 1)

    def _project(self, index: Any) -> tuple[int, int]:
        nats = self.query_index_by_arch(index)
        if nats < 0 or self._to_project[nats] < 0:
            raise UserError(f"architecture {index!r} is not in this benchmark; give an official "
                            f"index in 0..{len(self) - 1} or an official architecture string")
        return nats, int(self._to_project[nats])

    # --- results -------------------------------------------------------------------------------
    def _hp(self, hp: Any) -> int:
        try:
            return int(str(hp))
        except ValueError:
            raise UserError(f"invalid hp {hp!r}; use one of {self.avaliable_hps}") from None

    def _curves(self, dataset: str, hp: int) -> dict[str, Any]:
        key = (dataset, hp)
        curves = self._curve_cache.get(key)
        if curves is None:  # the reader caches the arrays; this saves re-validating each call
            curves = {m: self.bench.curve(self.space, dataset, hp, m) for m in _METRICS}
            self._curve_cache[key] = curves
        return curves

    def _trials(self, index: Any, dataset: str, hp: Any) -> tuple[int, dict, np.ndarray]:
        """(project index, curves by metric, the seeds this arch was trained with); an answer
        from a surrogate prediction is announced (``_predicted``)."""
        _, arch = self._project(index)
        curves = self._curves(dataset, self._hp(hp))
        any_curve = curves["train_acc"]
        seeds = any_curve.seeds[any_curve.seed_present[arch]]
        if seeds.size == 0:
            raise UserError(f"the store has no results of architecture {index!r} on {dataset} "
                            f"with hp={hp}")
        self._predicted(arch, dataset, self._hp(hp))
        return arch, curves, seeds

    def _predicted(self, arch: int, dataset: str, hp: int) -> bool:
        """Whether ``arch``'s values on (dataset, hp) are surrogate predictions; the facade's first
        answer from one warns, naming the model."""
        if not self._curves(dataset, hp)["train_acc"].surrogate[arch]:
            return False
        if not self._warned_surrogate:
            self._warned_surrogate = True
            warnings.warn(f"this answer ({self.space}/{dataset} hp={hp}) and others of this facade are a "
                          f"surrogate model's predictions, not trainings: {self._model(dataset, hp)}; "
                          "create(..., surrogate=False) leaves them out", UserWarning, stacklevel=4)
        return True

    def _model(self, dataset: str, hp: int) -> str:
        """The surrogate model of (dataset, hp) and its cross-validation figures, in words."""
        info = self.bench.surrogate_info(self.space, dataset, hp) or {}
        return describe_surrogate(info.get("surrogate_model"), decode_cv(info))

    @staticmethod
    def _iepoch(curves: dict, iepoch: Any) -> int:
        n = len(curves["train_acc"].epochs)
        if iepoch is None:
            return n - 1
        if not isinstance(iepoch, (int, np.integer)) or not 0 <= iepoch < n:
            raise UserError(f"invalid iepoch={iepoch}; it must be in 0..{n - 1} (0-based)")
        return int(iepoch)

    @staticmethod
    def _seed_positions(curves: dict, seeds: np.ndarray, is_random: Any) -> np.ndarray:
        """Seed-axis positions averaged over: all trained seeds, or the one chosen/given."""
        all_seeds = curves["train_acc"].seeds
        if isinstance(is_random, bool):
            chosen = [int(_random.choice(seeds.tolist()))] if is_random else seeds.tolist()
        elif isinstance(is_random, (int, np.integer)):
            if is_random not in seeds:
                raise UserError(f"can not find random seed ({is_random}) from {seeds.tolist()}")
            chosen = [int(is_random)]
        else:
            raise UserError(f"invalid value for is_random: {is_random!r}; give True, False or a seed")
        return np.searchsorted(all_seeds, chosen)

    @staticmethod
    def _set(curves: dict, arch: int, pos: np.ndarray, e: int, acc: str, loss: str,
             time_col: str | None) -> dict[str, Any] | None:
        """loss / accuracy / per-time / all-time of one evaluation set; None if not recorded."""
        accuracy = _mean(curves[acc].values[arch, pos, e])
        if accuracy is None:
            return None
        all_time = None
        if time_col is not None:  # per seed: the times of epochs 0..e summed, then averaged
            all_time = _mean(curves[time_col].values[arch, pos, : e + 1]
                             .astype(np.float64).sum(axis=-1))
        return {"loss": _mean(curves[loss].values[arch, pos, e]), "accuracy": accuracy,
                "per-time": None if all_time is None else all_time / (e + 1), "all-time": all_time}

    def get_more_info(self, index: Any, dataset: str, iepoch: int | None = None, hp: Any = "12",
                      is_random: bool | int = True) -> dict[str, Any]:
        """Metrics of the ``index``-th architecture after 0-based ``iepoch`` (None: the last).

        ``is_random``: True picks one trained seed at random, False averages them, an int is that
        seed.
        """
        if self.verbose:
            print(f"Call get_more_info with index={index}, dataset={dataset}, iepoch={iepoch}, "
                  f"hp={hp}, is_random={is_random}")
        arch, curves, seeds = self._trials(index, dataset, hp)
        e = self._iepoch(curves, iepoch)
        pos = self._seed_positions(curves, seeds, is_random)
        valid_name, _, valtest_name = _set_names(dataset)
        sets = {"train": self._set(curves, arch, pos, e, "train_acc", "train_loss", "epoch_time_s"),
                "valid": self._set(curves, arch, pos, e, "valid_acc", "valid_loss", "eval_time_s")
                if valid_name else None,
                "test": self._set(curves, arch, pos, e, "test_acc", "test_loss", None)}
        if valtest_name and sets["valid"] and sets["test"]:
            # ori-test is the union of the equal-sized x-valid and x-test halves
            sets["valtest"] = {
                k: None if sets["valid"][k] is None or sets["test"][k] is None
                else (sets["valid"][k] + sets["test"][k]) / 2 for k in ("loss", "accuracy")}
            sets["valtest"].update({"per-time": None, "all-time": None})
        info: dict[str, Any] = {}
        for name, values in sets.items():
            if values is not None:
                info.update({f"{name}-{k}": v for k, v in values.items()})
            if name == "train" and dataset in _TRAIN_SET:
                info["comment"] = _COMMENT.format(train=_TRAIN_SET[dataset], hp=hp)
        if self.bench.uses_surrogate(self.space, dataset, self._hp(hp)):  # only where it can be True
            info["surrogate"] = bool(curves["train_acc"].surrogate[arch])
        return info

    def get_cost_info(self, index: Any, dataset: str, hp: Any = "12") -> dict[str, Any]:
        """flops (M), params (M), latency (s) and mean/total train and eval times over seeds."""
        arch, curves, seeds = self._trials(index, dataset, hp)
        cost = self._costs(arch, dataset, curves)
        info: dict[str, Any] = {k: None if np.isnan(cost[col]) else float(cost[col]) * scale
                                for k, col, scale in (("flops", "flops_m", 1), ("params", "params_m", 1),
                                                      ("latency", "latency_ms", 1e-3))}
        pos = np.searchsorted(curves["train_acc"].seeds, seeds)
        valid_name, test_name, valtest_name = _set_names(dataset)
        names = [("train", "epoch_time_s")]
        if valtest_name:
            names.append((valtest_name, None))
        if valid_name and not np.isnan(curves["valid_acc"].values[arch, pos]).all():
            names.append((valid_name, "eval_time_s"))
        if test_name != valtest_name:
            names.append((test_name, None))
        for name, col in names:
            times = curves[col].values[arch, pos].astype(np.float64) if col else None
            info[f"T-{name}@epoch"] = None if times is None else _mean(times.mean(axis=-1))
            info[f"T-{name}@total"] = None if times is None else _mean(times.sum(axis=-1))
        return info

    def get_latency(self, index: Any, dataset: str, hp: Any = "12") -> float | None:
        """Latency in seconds (NATS-Bench's unit; our store keeps milliseconds)."""
        arch, curves, _ = self._trials(index, dataset, hp)  # the same checks as get_cost_info
        latency = self._costs(arch, dataset, curves)["latency_ms"]
        return None if np.isnan(latency) else latency * 1e-3

    def _costs(self, arch: int, dataset: str, curves: dict) -> dict[str, Any]:
        """The store's costs of ``arch``; a surrogate prediction's, never measured, are NaN."""
        return self.bench.cost(self.space, dataset, arch, missing_ok=bool(curves["train_acc"].surrogate[arch]))

    def simulate_train_eval(self, arch: Any, dataset: str, iepoch: int | None = None,
                            hp: Any = "12", account_time: bool = True
                            ) -> tuple[float, float | None, float, float]:
        """(valid accuracy, latency, time cost, total used time) as NATS-Bench: one random seed;
        the feedback dataset and the time cost are the task view's (``benchmark_data.task``:
        ``cifar10`` reads ``cifar10-valid``; ``nats_time_cost``: training up to ``iepoch`` plus
        the mean validation pass), so the facade charges what the simulator charges."""
        index = self.query_index_by_arch(arch)
        if is_feedback_twin(dataset) or dataset not in self._datasets:
            raise UserError(f"Invalid dataset name : {dataset} vs "
                            f"{[d for d in self._datasets if not is_feedback_twin(d)]}")
        feedback = self.bench.feedback_dataset(self.space, dataset)
        project, curves, seeds = self._trials(index, feedback, hp)
        e = self._iepoch(curves, iepoch)
        # one seed drawn with Python's random, exactly as get_more_info(is_random=True) draws it
        (pos,) = self._seed_positions(curves, seeds, True)
        valid_acc = _mean(curves["valid_acc"].values[project, [pos], e])
        if valid_acc is None:
            raise UserError(f"the store has no validation accuracy of architecture {arch!r} on "
                            f"{feedback} with hp={hp}")
        time_cost = float(self.bench.time_cost_curve(self.space, feedback, self._hp(hp)).values[project, pos, e])
        if time_cost != time_cost:
            raise UserError(f"the store has no training/evaluation times of architecture {arch!r} "
                            f"on {feedback} with hp={hp}, so no time can be simulated")
        latency = self.get_latency(index, dataset, hp=hp)
        if account_time:
            self._used_time += time_cost
        return valid_acc, latency, time_cost, self._used_time

    def find_best(self, dataset: str, metric_on_set: str, flop_max: float | None = None,
                  param_max: float | None = None, hp: Any = "12",
                  enforce_all: bool | None = None) -> tuple[int, float | None]:
        """(official index, accuracy) of the best seed-mean accuracy at the last epoch, among
        architectures within the FLOP / parameter limits; ties go to the smaller official index."""
        if metric_on_set == "valid" and feedback_dataset(dataset) != dataset:
            # NATS-Bench: cifar10's validation accuracy is its feedback twin's (cifar10-valid)
            dataset = feedback_dataset(dataset)
            metric_on_set = _set_names(dataset)[0]
        elif metric_on_set in ("valid", "test"):
            metric_on_set = {"valid": "x-valid", "test": "ori-test" if dataset == "cifar10"
                             else "x-test"}[metric_on_set]
        valid_name, test_name, valtest_name = _set_names(dataset)
        columns = {"train": ("train_acc",), valid_name: ("valid_acc",), test_name: ("test_acc",)}
        if valtest_name:
            columns[valtest_name] = ("valid_acc", "test_acc")
        if metric_on_set not in columns or metric_on_set is None:
            raise UserError(f"invalid metric_on_set {metric_on_set!r} for {dataset}; use one of "
                            f"{', '.join(c for c in columns if c)}")
        hp_i = self._hp(hp)
        present = self._to_project >= 0
        archs = np.where(present, self._to_project, 0)
        acc = np.zeros(len(archs))
        for col in columns[metric_on_set]:
            curve = self.bench.curve(self.space, dataset, hp_i, col)
            values = np.where(curve.seed_present[..., None], curve.values, np.nan)[archs, :, -1]
            with warnings.catch_warnings():  # archs without a value stay NaN, silently
                warnings.simplefilter("ignore", RuntimeWarning)
                acc += np.nanmean(values.astype(np.float64), axis=1) / len(columns[metric_on_set])
        acc[~present] = np.nan
        if flop_max is not None or param_max is not None:
            # surrogate predictions have no archs row: unmeasured, they cannot be shown to fit
            surrogate = self.bench.curve(self.space, dataset, hp_i, "train_acc").surrogate
            cost = self.bench.cost(self.space, dataset, archs[present], missing_ok=bool(surrogate.any()))
            ok = np.ones(len(archs), bool)
            for limit, col in ((flop_max, "flops_m"), (param_max, "params_m")):
                if limit is not None:
                    ok[present] &= ~(cost[col] > limit) & ~(np.isnan(cost[col]) & surrogate[archs[present]])
            acc[~ok] = np.nan
        if np.isnan(acc).all():
            return -1, None
        best = int(np.nanargmax(acc))
        self._predicted(int(archs[best]), dataset, hp_i)
        return best, float(acc[best])

    # --- the rest of nats_bench's surface -----------------------------------------------------
    @property
    def archive_dir(self) -> Path:
        """The store folder (NATS-Bench: the folder of the per-architecture pickles)."""
        return self.bench.root

    @property
    def evaluated_indexes(self) -> set[int]:
        """Indices with results in the store (any dataset and hp; surrogate predictions count when
        the facade reads them). NATS-Bench's fast mode lists only the records it has loaded so
        far; the store knows them all at once."""
        if self._evaluated is None:
            present = np.zeros(get_space(self.space).size, bool)
            for dataset in self._datasets:  # key columns only: no metric is read for this
                for hp in self.bench.hps(self.space, dataset):
                    present[self.bench.archs(self.space, dataset, hp)] = True
            ok = self._to_project >= 0
            hit = np.zeros(len(self._to_project), bool)
            hit[ok] = present[self._to_project[ok]]
            self._evaluated = set(np.flatnonzero(hit).tolist())
        return set(self._evaluated)

    def reset_fast_mode(self, fast_mode: bool) -> None:
        """Accepted and ignored: the store is always read lazily (fast_mode stays True)."""

    def reset_archive_dir(self, archive_dir: Any) -> None:
        """Accepted and ignored: a facade reads the one store it was created on."""

    def clear_params(self, index: int, hp: Any = None) -> None:
        """No-op: the store holds no weights, so there is nothing to clear (NATS-Bench frees the
        weights of loaded records here)."""

    def reload(self, archive_root: Any = None, index: Any = None) -> None:
        """No-op: nothing is loaded up front; every query reads the store as it is opened. Open a
        new facade to see rows written after this one was created."""

    def _dataset_order(self, datasets: Sequence[str]) -> list[str]:
        # NATS-Bench lists a record's datasets in collection order: cifar10-valid, cifar10,
        # cifar100, ImageNet16-120 (the order of schema.DATASETS); unknown names go last.
        known = [d for d in S.DATASETS if d in datasets]
        return known + sorted(d for d in datasets if d not in S.DATASETS)

    def _arch_seeds(self, arch: int, dataset: str, hp: int) -> list[int]:
        curve = self._curves(dataset, hp)["train_acc"]
        return curve.seeds[curve.seed_present[arch]].tolist()

    def query_meta_info_by_index(self, arch_index: Any, hp: Any = "12") -> StoreArchResults:
        """A ``StoreArchResults`` (NATS-Bench: a copy of its ``ArchResults``) for one recipe."""
        if self.verbose:
            print(f"Call query_meta_info_by_index with arch_index={arch_index}, hp={hp}")
        nats, arch = self._project(arch_index)
        hp_i = self._hp(hp)
        dataset_seed: dict[str, list[int]] = {}
        for dataset in self._dataset_order(self._datasets):
            if hp_i in self.bench.hps(self.space, dataset):
                seeds = self._arch_seeds(arch, dataset, hp_i)
                if seeds:
                    dataset_seed[dataset] = seeds
                    self._predicted(arch, dataset, hp_i)
        if not dataset_seed:
            have = sorted({h for d in self._datasets for h in self.bench.hps(self.space, d)
                           if self._arch_seeds(arch, d, h)})
            raise UserError(f"The {nats}-th architecture only has hyper-parameters of "
                            f"{[self._hp_str(h) for h in have]} instead of {hp}.")
        return StoreArchResults(self, nats, arch, hp_i, dataset_seed)

    def query_by_index(self, arch_index: Any, dataname: str | None = None, hp: Any = "12"
                       ) -> StoreArchResults | dict[int, StoreTrial]:
        """``dataname`` None: the ``StoreArchResults``; else {seed: ``StoreTrial``} of that
        dataset, as NATS-Bench's ``query_by_index``."""
        info = self.query_meta_info_by_index(arch_index, hp)
        if dataname is None:
            return info
        if dataname not in info.get_dataset_names():
            raise UserError(f"invalid dataset-name : {dataname} vs. {info.get_dataset_names()}")
        return info.query(dataname)

    def query_info_str_by_arch(self, arch: Any, hp: Any = "12") -> str | None:
        """The text NATS-Bench prints for one architecture and recipe; None (with a warning) for
        an architecture of the space that the store has no results for."""
        nats = self.query_index_by_arch(arch)
        if nats < 0 or nats not in self.evaluated_indexes:
            warnings.warn(f"Find this arch-index : {nats}, but this arch is not evaluated.",
                          stacklevel=2)
            return None
        info = self.query_meta_info_by_index(nats, hp)
        return "\n".join(self._info_strings(info, f"arch-index={nats}"))

    def query_by_arch(self, arch: Any, hp: Any) -> str | None:
        """NAS-Bench-201's name of ``query_info_str_by_arch``."""
        return self.query_info_str_by_arch(arch, hp)

    def _info_strings(self, info: StoreArchResults, extra_info: Any = None) -> list[str]:
        """NATS-Bench's ``print_information`` (api_topology.py / api_size.py, lines 33-80):
        costs and last-epoch seed-mean metrics per dataset."""
        names = info.get_dataset_names()
        lines = [info.arch_str, f"datasets : {names}, extra-info : {extra_info}"]

        def pair(metrics: dict) -> str:
            return "loss = {:.3f} & top1 = {:.2f}%".format(metrics["loss"], metrics["accuracy"])

        for dataset in names:
            if self._curves(dataset, info.hp)["train_acc"].surrogate[info._arch]:
                lines.append(f"{dataset:14s} surrogate prediction, not a training: {self._model(dataset, info.hp)}")
            cost = info.get_compute_costs(dataset)
            latency = cost["latency"]
            latency_text = f"{latency * 1000:.2f}" if latency is not None and latency > 0 else None
            # (a surrogate prediction was never built, so the store has no costs of it: n/a)
            flops, params = (("n/a" if v is None else format(v, spec))
                             for v, spec in ((cost["flops"], "6.2f"), (cost["params"], ".3f")))
            lines.append(f"{dataset:14s} FLOP={flops:>6s} M, Params={params} MB, latency={latency_text} ms.")
            train = pair(info.get_metrics(dataset, "train"))
            valid_name, test_name, _ = _set_names(dataset)
            if dataset == "cifar10":
                test = pair(info.get_metrics(dataset, test_name))
                lines.append(f"{dataset:14s} train : [{train}], test  : [{test}]")
            elif dataset == "cifar10-valid" and self.space == "tss":
                valid = pair(info.get_metrics(dataset, valid_name))
                lines.append(f"{dataset:14s} train : [{train}], valid : [{valid}]")
            else:  # the size space's text also shows cifar10-valid's test set
                valid = pair(info.get_metrics(dataset, valid_name))
                test = pair(info.get_metrics(dataset, test_name))
                lines.append(f"{dataset:14s} train : [{train}], valid : [{valid}], test : [{test}]")
        return lines

    def show(self, index: int = -1) -> None:
        """Print one architecture's results per recipe (``index`` < 0: every evaluated one)."""
        def one(nats: int) -> None:
            for hp in sorted({h for d in self._datasets for h in self.bench.hps(self.space, d)}):
                try:
                    info = self.query_meta_info_by_index(nats, hp)
                except UserError:  # not trained with this recipe
                    continue
                print(">" * 40 + f" {info.get_total_epoch():03d} epochs " + ">" * 40)
                print("\n".join(self._info_strings(info)))
            print("<" * 40 + "------------" + "<" * 40)

        evaluated = self.evaluated_indexes
        if index < 0:
            print(self)
            order = sorted(evaluated)
            for i, nats in enumerate(order):
                print("\n" + "-" * 10 + f" The ({i:5d}/{len(order):5d}) {nats:06d}-th architecture! " + "-" * 10)
                print(f"arch : {self.meta_archs[nats]}")
                one(nats)
        elif index < len(self):
            if index in evaluated:
                one(index)
            else:
                print(f"The {index}-th architecture has not been evaluated or not saved.")
        else:
            print(f"This index ({index}) is out of range (0~{len(self)}).")

    def statistics(self, dataset: str, hp: Any) -> dict[int, int]:
        """{number of seeds: number of evaluated architectures trained with that many} on
        ``dataset`` with ``hp`` (0 counts evaluated architectures without a run there)."""
        if dataset not in self._datasets:
            raise UserError(f"{dataset} not in {self._dataset_order(self._datasets)}")
        hp_i = self._hp(hp)
        curve = self._curves(dataset, hp_i)["train_acc"]
        counts = curve.seed_present.sum(axis=1)
        nums: dict[int, int] = {}
        for nats in self.evaluated_indexes:
            n = int(counts[self._to_project[nats]])
            nums[n] = nums.get(n, 0) + 1
        return nums

    def get_net_config(self, index: Any, dataset: str) -> dict[str, Any]:
        """The network's config as NATS-Bench's ``get_net_config`` (api_utils.py:644-675,
        ``ResultsCount.get_config(None)``); the cell width/depth (tss) come from the skeleton
        the store's files record."""
        if self.verbose:
            print(f"Call the get_net_config function with index={index}, dataset={dataset}.")
        nats, arch = self._project(index)
        if dataset not in self._datasets:
            raise UserError(f"dataset {dataset!r} is not in the store for space {self.space!r}; "
                            f"it has: {', '.join(self._datasets)}")
        if dataset not in S.NUM_CLASSES:
            raise UserError(f"the class count of dataset {dataset!r} is unknown; known datasets: "
                            f"{', '.join(S.DATASETS)}")
        arch_str = self.meta_archs[nats]
        if self.space == "sss":
            return {"name": "infer.shape.tiny", "channels": arch_str, "genotype": SSS_GENOTYPE,
                    "num_classes": S.NUM_CLASSES[dataset]}
        skeleton = self._skeleton(dataset)
        return {"name": "infer.tiny", "C": skeleton["C"], "N": skeleton["N"], "arch_str": arch_str,
                "num_classes": S.NUM_CLASSES[dataset]}

    def _skeleton(self, dataset: str) -> dict[str, Any]:
        import json
        for hp in self.bench.hps(self.space, dataset):  # NATS-Bench takes its first recipe's
            text = self.bench.metadata(self.space, dataset, hp).get("skeleton") or "{}"
            try:
                skeleton = json.loads(text)
            except ValueError:
                continue
            if isinstance(skeleton, dict) and {"C", "N"} <= set(skeleton):
                return skeleton
        raise UserError(f"the files of {self.space}/{dataset} record no network skeleton (C, N); "
                        "re-import or rebuild them with provenance")

    def get_net_param(self, index: Any, dataset: str, seed: int | None, hp: Any = "12") -> Any:
        """Always a UserError: the store keeps no trained weights."""
        self._project(index)
        raise UserError("the store holds no trained weights (only metrics and costs), so "
                        "get_net_param cannot answer; train the network with trainables "
                        "(orchestrate.py train) or use nats_bench with the official "
                        "'-full' archive")

    def get_unique_str(self, arch: Any) -> str:
        """NATS-Bench's isomorphism key of a topology (``to_unique_str(consider_zero=True)``,
        genotype_utils.py:79-102): architectures with equal strings compute the same function."""
        if self.space != "tss":
            raise UserError("get_unique_str is a topology-space (tss) call; size-space "
                            "architectures are all distinct")
        nats, _ = self._project(arch)
        node_text = {0: "0"}
        for node, edges in enumerate(self.str2lists(self.meta_archs[nats]), start=1):
            terms = []
            for op, source in edges:
                # a zero edge, or any edge out of a node that is zero, adds nothing; a skip
                # passes its input on unchanged; any other op wraps it
                if op == "none" or node_text[source] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(node_text[source])
                else:
                    terms.append(f"({node_text[source]})@{op}")
            node_text[node] = "+".join(sorted(terms))  # the sum of a node's inputs is unordered
        return node_text[len(node_text) - 1]

    @staticmethod
    def str2lists(arch_str: str) -> list[tuple[tuple[str, int], ...]]:
        """Per node after the input, its (op, input node) pairs, as NATS-Bench's ``str2lists``."""
        nodes = []
        for node_text in arch_str.split("+"):
            edges = []
            for item in (x for x in node_text.split("|") if x):
                parts = item.split("~")
                if len(parts) != 2:
                    raise UserError(f"invalid input length : {item}")
                edges.append((parts[0], int(parts[1])))
            nodes.append(tuple(edges))
        return nodes

    @staticmethod
    def str2matrix(arch_str: str, search_space: Sequence[str] = TOPOLOGY_OPS) -> np.ndarray:
        """NAS-Bench-101-style matrix: ``m[i, j]`` = index in ``search_space`` of the op on the
        edge from node j into node i (float zeros elsewhere, as NATS-Bench's ``str2matrix``)."""
        nodes = NATSCompat.str2lists(arch_str)
        matrix = np.zeros((len(nodes) + 1, len(nodes) + 1))
        for i, edges in enumerate(nodes):
            for op, source in edges:
                if op not in search_space:
                    raise UserError(f"this op ({op}) is not in {search_space}")
                matrix[i + 1, source] = list(search_space).index(op)
        return matrix


class StoreArchResults:
    """One architecture under one recipe: the store's answer where ``nats_bench`` gives an
    ``ArchResults``. Read-only; every value is read from the store on demand.

    ``arch_index`` (the facade's index), ``arch_str`` and ``dataset_seed`` ({dataset: seeds})
    are plain attributes as in NATS-Bench; ``all_results`` maps (dataset, seed) to a
    ``StoreTrial``. ``surrogate``: whether any of its results is a surrogate prediction (each
    ``StoreTrial`` says which).
    """

    def __init__(self, api: NATSCompat, index: int, arch: int, hp: int,
                 dataset_seed: dict[str, list[int]]):
        self._api, self._arch, self.hp = api, arch, hp
        self.arch_index, self.arch_str = index, api.meta_archs[index]
        self.dataset_seed = dataset_seed
        self.all_results = {(d, seed): StoreTrial(api, arch, d, seed, hp)
                            for d, seeds in dataset_seed.items() for seed in seeds}
        self.surrogate = any(t.surrogate for t in self.all_results.values())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(arch-index={self.arch_index:5d}, arch={self.arch_str}, "
                f"hp={self._api._hp_str(self.hp)}, {len(self.all_results)} runs)")

    def arch_idx_str(self) -> str:
        return f"{self.arch_index:06d}"

    def get_dataset_names(self) -> list[str]:
        return list(self.dataset_seed)

    def _check(self, dataset: str) -> None:
        if dataset not in self.dataset_seed:
            raise UserError(f"invalid dataset-name : {dataset} vs. {self.get_dataset_names()}")

    def get_dataset_seeds(self, dataset: str) -> list[int]:
        self._check(dataset)
        return list(self.dataset_seed[dataset])

    def get_total_epoch(self, dataset: str | None = None) -> int:
        names = [dataset] if dataset is not None else self.get_dataset_names()
        for name in names:
            self._check(name)
        totals = {self._api.bench.num_epochs(self._api.space, d, self.hp) for d in names}
        if len(totals) != 1:
            raise UserError(f"the datasets of this record have different epoch counts {totals}; "
                            "pass dataset=")
        return totals.pop()

    def get_compute_costs(self, dataset: str) -> dict[str, Any]:
        """flops, params, latency and the T-* times, as ``get_cost_info``."""
        self._check(dataset)
        return self._api.get_cost_info(self.arch_index, dataset, self.hp)

    def get_latency(self, dataset: str) -> float:
        latency = self.get_compute_costs(dataset)["latency"]
        if latency is None or latency <= 0:
            raise UserError(f"invalid latency of {dataset} : {latency} (the store has none)")
        return latency

    def get_metrics(self, dataset: str, setname: str, iepoch: int | None = None,
                    is_random: bool | int = False) -> dict[str, Any]:
        """iepoch / loss / accuracy / cur_time / all_time of one evaluation set, as NATS-Bench's
        ``ArchResults.get_metrics``: the seed mean (is_random False), one seed at random (True,
        Python's ``random`` as NATS-Bench) or that seed (an int)."""
        self._check(dataset)
        seeds = self.dataset_seed[dataset]
        per_seed = [self.all_results[(dataset, s)].get_train(iepoch) if setname == "train"
                    else self.all_results[(dataset, s)].get_eval(setname, iepoch) for s in seeds]
        if isinstance(is_random, bool) and is_random:
            return dict(per_seed[_random.randint(0, len(per_seed) - 1)])
        if isinstance(is_random, bool):
            return {k: None if any(r[k] is None for r in per_seed)
                    else sum(r[k] for r in per_seed) / len(per_seed) for k in per_seed[0]}
        if isinstance(is_random, (int, np.integer)):
            if is_random not in seeds:
                raise UserError(f"can not find random seed ({is_random}) from {seeds}")
            return dict(per_seed[seeds.index(is_random)])
        raise UserError(f"invalid value for is_random: {is_random}")

    def query(self, dataset: str, seed: int | None = None) -> dict[int, StoreTrial] | StoreTrial:
        self._check(dataset)
        if seed is None:
            return {s: self.all_results[(dataset, s)] for s in self.dataset_seed[dataset]}
        if (dataset, seed) not in self.all_results:
            raise UserError(f"key={(dataset, seed)} not in {list(self.all_results)}")
        return self.all_results[(dataset, seed)]

    def get_net_param(self, dataset: str, seed: int | None = None) -> Any:
        self._api.get_net_param(self.arch_index, dataset, seed, self.hp)

    def clear_params(self) -> None:
        """No-op: there are no weights."""


class StoreTrial:
    """One training run (dataset, seed) of one architecture and recipe: the store's answer where
    ``nats_bench`` gives a ``ResultsCount``. ``get_eval`` knows the sets NATS-Bench names for the
    dataset (x-valid / ori-test / x-test, "valid" meaning x-valid); times of test sets are None
    (the store keeps only the validation pass's time). ``surrogate``: the run is a surrogate
    model's prediction (seed -1), not a training."""

    def __init__(self, api: NATSCompat, arch: int, dataset: str, seed: int, hp: int):
        self._api, self._arch, self.hp = api, arch, hp
        self.name, self.seed = dataset, seed
        curves = api._curves(dataset, hp)
        self._curves = curves
        self._pos = int(np.searchsorted(curves["train_acc"].seeds, seed))
        self.epochs = len(curves["train_acc"].epochs)
        self.surrogate = bool(curves["train_acc"].surrogate[arch])

    def __repr__(self) -> str:
        what = ", surrogate prediction" if self.surrogate else ""
        return f"{type(self).__name__}({self.name}, seed={self.seed}, epochs={self.epochs}{what})"

    def get_total_epoch(self) -> int:
        return self.epochs

    def _value(self, column: str, e: int) -> float | None:
        v = float(self._curves[column].values[self._arch, self._pos, e])
        return None if v != v else v

    def _iepoch(self, iepoch: int | None) -> int:
        e = self.epochs - 1 if iepoch is None else iepoch
        if not isinstance(e, (int, np.integer)) or not 0 <= e < self.epochs:
            raise UserError(f"invalid iepoch={iepoch} < {self.epochs}")
        return int(e)

    def _times(self, column: str, e: int) -> tuple[float | None, float | None]:
        series = self._curves[column].values[self._arch, self._pos, : e + 1].astype(np.float64)
        if np.isnan(series).any():
            return None, None
        return float(series[-1]), float(series.sum())

    def get_train(self, iepoch: int | None = None) -> dict[str, Any]:
        e = self._iepoch(iepoch)
        cur, total = self._times("epoch_time_s", e)
        return {"iepoch": e, "loss": self._value("train_loss", e),
                "accuracy": self._value("train_acc", e), "cur_time": cur, "all_time": total}

    def get_eval_set(self) -> list[str]:
        return [n for n in _set_names(self.name) if n is not None]

    def get_eval(self, name: str, iepoch: int | None = None) -> dict[str, Any]:
        e = self._iepoch(iepoch)
        valid_name, test_name, valtest_name = _set_names(self.name)
        name = "x-valid" if name == "valid" else name
        if name is not None and name == valid_name:
            acc, loss = self._value("valid_acc", e), self._value("valid_loss", e)
            cur, total = self._times("eval_time_s", e)
        elif name == test_name:
            acc, loss = self._value("test_acc", e), self._value("test_loss", e)
            cur = total = None
        elif name is not None and name == valtest_name:  # the union of the two equal halves
            parts = [self._value(c, e) for c in ("valid_acc", "test_acc", "valid_loss", "test_loss")]
            acc = None if None in parts[:2] else (parts[0] + parts[1]) / 2
            loss = None if None in parts[2:] else (parts[2] + parts[3]) / 2
            cur = total = None
        else:
            raise UserError(f"{self.name} has no evaluation set {name!r}; it has "
                            f"{self.get_eval_set()}")
        if acc is None:
            raise UserError(f"the store has no {name} accuracy of this run ({self.name}, seed "
                            f"{self.seed}) at iepoch {e}")
        return {"iepoch": e, "loss": loss, "accuracy": acc, "cur_time": cur, "all_time": total}

    def get_latency(self) -> float | None:
        latency = self._api._costs(self._arch, self.name, self._curves)["latency_ms"]
        return None if latency != latency else latency * 1e-3

    def get_net_param(self, clone: bool = False) -> Any:
        raise UserError("the store holds no trained weights (only metrics and costs); see "
                        "NATSCompat.get_net_param")

    def get_config(self, str2structure: Any = None) -> dict[str, Any]:
        """``get_net_config``'s dict; with ``str2structure``, the cell string is passed through
        it and stored as "genotype", as NATS-Bench does."""
        index = int(np.flatnonzero(self._api._to_project == self._arch)[0])
        config = self._api.get_net_config(index, self.name)
        if str2structure is not None:  # same keys, the cell string replaced by its structure
            cell = config.pop("genotype" if self._api.space == "sss" else "arch_str")
            num_classes = config.pop("num_classes")
            config.update(genotype=str2structure(cell), num_classes=num_classes)
        return config
