"""A NATS-Bench-compatible API over our Parquet store, so existing scripts port by one import.

``from nats_bench import create`` becomes ``from benchmark_data.nats_compat import create``; the
object answers by the OFFICIAL NATS-Bench index (kept as ``nats_index`` by the importers) with the
same call names, signatures and return shapes as ``nats_bench`` 1.8, but reads lazily from the
store (no tens of GB in memory). Random seed choices use Python's global ``random`` module exactly
as NATS-Bench does, so ``random.seed(s)`` reproduces the same picks as the official API.

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
"""

from __future__ import annotations

import random as _random
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from spaces import get_space
from spaces.errors import UserError

from .reader import Benchmark

TSS_NAMES, SSS_NAMES = ("tss", "topology"), ("sss", "size")
_COMMENT = ("In this dict, train-loss/accuracy/time is the metric on the {train} of CIFAR-10. The "
            "test-loss/accuracy/time is the performance of the CIFAR-10 test set after training "
            "on the {train} by {hp} epochs. The per-time and total-time indicate the per epoch "
            "and total time costs, respectively.")
_TRAIN_SET = {"cifar10-valid": "train set", "cifar10": "train+valid sets"}
_METRICS = ("train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
            "epoch_time_s", "eval_time_s")


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
           verbose: bool = False) -> "NATSCompat":
    """Open a store (None: the embedded benchmark) with NATS-Bench's ``create`` signature.

    ``fast_mode`` is accepted for compatibility; the store is always read lazily.
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
                        "it once with `python -m benchmark_data import SRC DEST` and open DEST")
    return NATSCompat(Benchmark.open(file_path_or_dir), space, verbose)


class NATSCompat:
    """The subset of ``nats_bench``'s API that a store can answer faithfully (see module doc)."""

    def __init__(self, bench: Benchmark, space: str, verbose: bool = False):
        self.bench, self.space, self.verbose = bench, space, verbose
        self._used_time = 0.0
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
        if not pairs:
            raise UserError(f"the store {bench.root} has no NATS-Bench indices for space {space!r}; "
                            "import an official archive or table first (python -m benchmark_data "
                            "import --help)")
        self._to_project = np.full(max(pairs) + 1, -1, np.int64)
        for nats, arch in pairs.items():
            self._to_project[nats] = arch
        sp = get_space(space)
        self.meta_archs = [sp.to_str(int(a)) if a >= 0 else None for a in self._to_project]
        self.archstr2index = {s: i for i, s in enumerate(self.meta_archs) if s is not None}
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

    __getitem__ = arch

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

    def _trials(self, index: Any, dataset: str, hp: Any) -> tuple[int, dict, np.ndarray]:
        """(project index, curves by metric, the seeds this arch was trained with)."""
        _, arch = self._project(index)
        key = (dataset, self._hp(hp))
        curves = self._curve_cache.get(key)
        if curves is None:  # the reader caches the arrays; this saves re-validating each call
            curves = {m: self.bench.curve(self.space, dataset, key[1], m) for m in _METRICS}
            self._curve_cache[key] = curves
        any_curve = curves["train_acc"]
        seeds = any_curve.seeds[any_curve.seed_present[arch]]
        if seeds.size == 0:
            raise UserError(f"the store has no results of architecture {index!r} on {dataset} "
                            f"with hp={hp}")
        return arch, curves, seeds

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
        return info

    def get_cost_info(self, index: Any, dataset: str, hp: Any = "12") -> dict[str, Any]:
        """flops (M), params (M), latency (s) and mean/total train and eval times over seeds."""
        arch, curves, seeds = self._trials(index, dataset, hp)
        cost = self.bench.cost(self.space, dataset, arch)
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
        arch, _, _ = self._trials(index, dataset, hp)  # the same checks as get_cost_info
        latency = self.bench.cost(self.space, dataset, arch)["latency_ms"]
        return None if np.isnan(latency) else latency * 1e-3

    def simulate_train_eval(self, arch: Any, dataset: str, iepoch: int | None = None,
                            hp: Any = "12", account_time: bool = True
                            ) -> tuple[float, float | None, float, float]:
        """(valid accuracy, latency, time cost, total used time) as NATS-Bench: one random seed;
        ``cifar10`` takes its feedback from ``cifar10-valid``; time = training up to ``iepoch``
        plus one validation pass."""
        index = self.query_index_by_arch(arch)
        feedback = "cifar10-valid" if dataset == "cifar10" else dataset
        if dataset == "cifar10-valid" or dataset not in self._datasets:
            raise UserError(f"Invalid dataset name : {dataset} vs "
                            f"{[d for d in self._datasets if d != 'cifar10-valid']}")
        info = self.get_more_info(index, feedback, iepoch=iepoch, hp=hp, is_random=True)
        if "valid-accuracy" in info:
            valid_acc, per_time = info["valid-accuracy"], info["valid-per-time"]
        elif "valtest-accuracy" in info:
            valid_acc = info["valtest-accuracy"]
            per_time = self.get_more_info(index, dataset, None, hp, True).get("valid-per-time")
        else:
            raise UserError(f"the store has no validation accuracy of architecture {arch!r} on "
                            f"{feedback} with hp={hp}")
        if info.get("train-all-time") is None or per_time is None:
            raise UserError(f"the store has no training/evaluation times of architecture {arch!r} "
                            f"on {feedback} with hp={hp}, so no time can be simulated")
        time_cost = info["train-all-time"] + per_time
        latency = self.get_latency(index, dataset, hp=hp)
        if account_time:
            self._used_time += time_cost
        return valid_acc, latency, time_cost, self._used_time

    def find_best(self, dataset: str, metric_on_set: str, flop_max: float | None = None,
                  param_max: float | None = None, hp: Any = "12",
                  enforce_all: bool | None = None) -> tuple[int, float | None]:
        """(official index, accuracy) of the best seed-mean accuracy at the last epoch, among
        architectures within the FLOP / parameter limits; ties go to the smaller official index."""
        if dataset == "cifar10" and metric_on_set == "valid":
            dataset, metric_on_set = "cifar10-valid", "x-valid"
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
            cost = self.bench.cost(self.space, dataset, archs[present])
            ok = np.ones(len(archs), bool)
            for limit, col in ((flop_max, "flops_m"), (param_max, "params_m")):
                if limit is not None:
                    ok[present] &= ~(cost[col] > limit)
            acc[~ok] = np.nan
        if np.isnan(acc).all():
            return -1, None
        best = int(np.nanargmax(acc))
        return best, float(acc[best])
