"""What a benchmark store says about itself (the thesis' Figures 5.2-5.5 and the recipes).

A *table* is one (store, space, dataset, hp): every architecture's final test accuracy (the mean
over its seeds at the recipe's last epoch), its validation accuracy where the table records one,
and its per-epoch feedback (validation accuracy, else test accuracy). From the tables:

* ``costs``: accuracy against parameters and FLOPs (Figure 5.3), with the costs the store
  measured or, for a store without them (an imported NATS-Bench table), the topology space's
  exact cost table for NATS-Bench's skeleton (C=16, N=5; 32x32 inputs, 16x16 for ImageNet16);
* ``rank_pairs`` / ``topk``: every two tables of one space, each architecture's rank on one
  against its rank on the other (Figure 5.2), and their Kendall tau / Spearman rho over all
  common architectures and over the top k of the *reference* table, the one with the longer
  recipe (Figure 5.5);
* ``valid_test``: validation against test accuracy of one table (Figure 5.4);
* ``recipes``: within one store, how a short recipe's feedback after each of its epochs ranks
  the architectures against a longer recipe's final test accuracy (hp=12 against hp=48 on the
  embedded table).

Surrogate predictions are read where the store has them (the view searches read), and every
table and figure says how many of its architectures they are and which model made them.
"""

from __future__ import annotations

import itertools
import json
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark_data import schema as S
from spaces import get_space

from . import stats

TOP_K = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
COST_INPUT_SIZE = {"ImageNet16-120": 16, "cifar10": 32, "cifar10-valid": 32, "cifar100": 32}


def _seed_mean(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # an architecture without a value stays NaN, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=1)


@dataclass
class BenchTable:
    store: str
    space: str
    dataset: str
    hp: int
    final: np.ndarray          # [archs] test accuracy, seed mean at the last epoch (NaN: none)
    valid: np.ndarray | None   # [archs] validation accuracy likewise; None when never recorded
    feedback: np.ndarray       # [archs, epochs] valid_acc per epoch (test_acc without one)
    feedback_source: str
    surrogate: np.ndarray      # [archs] bool: the values are surrogate predictions
    surrogate_model: str | None  # benchmark_data.task.describe_surrogate's line

    @property
    def name(self) -> str:
        return f"{self.space}/{self.dataset} hp={self.hp} ({self.store})"

    @property
    def archs(self) -> int:
        return int(np.isfinite(self.final).sum())

    def surrogate_note(self, used: np.ndarray | None = None) -> str | None:
        """"N of M architectures of TABLE are surrogate predictions (MODEL)" or None."""
        used = np.isfinite(self.final) if used is None else used
        n = int((self.surrogate & used).sum())
        if not n:
            return None
        return f"{n:,} of {int(used.sum()):,} architectures of {self.name} are surrogate predictions " \
               f"({self.surrogate_model})"


def bench_tables(stores) -> list[BenchTable]:
    """Every (space, dataset, hp) of the stores with a test accuracy, in store order."""
    from benchmark_data.task import decode_cv, describe_surrogate

    out = []
    for store in stores:
        bench = store.view(surrogate=True)
        for space in bench.spaces():
            for dataset in bench.datasets(space):
                for hp in bench.hps(space, dataset):
                    test = bench.curve(space, dataset, hp, "test_acc")
                    final = _seed_mean(test.values[:, :, -1])
                    if not np.isfinite(final).any():
                        continue
                    valid = bench.curve(space, dataset, hp, "valid_acc")
                    has_valid = bool(np.isfinite(valid.values).any())
                    info = bench.surrogate_info(space, dataset, hp)
                    feedback = valid if has_valid else test
                    out.append(BenchTable(
                        store.label, space, dataset, hp, final,
                        _seed_mean(valid.values[:, :, -1]) if has_valid else None, _seed_mean(feedback.values),
                        "valid_acc" if has_valid else "test_acc", np.asarray(test.surrogate, bool),
                        None if info is None else describe_surrogate(info.get("surrogate_model"), decode_cv(info))))
    return out


def tables_table(tables: list[BenchTable], stores) -> pd.DataFrame:
    """What each table holds (its architectures, how many are predictions, its best value) and
    the provenance of its newest file."""
    by_label = {s.label: s for s in stores}
    rows = []
    for t in tables:
        store = by_label[t.store]
        meta = store.view(surrogate=True).metadata(t.space, t.dataset, t.hp)
        try:
            recipe = json.loads(meta.get("recipe") or "{}")
        except ValueError:
            recipe = {}
        rows.append({"table": t.name, "root": str(store.root), "archs": t.archs,
                     "surrogate_archs": int((t.surrogate & np.isfinite(t.final)).sum()),
                     "best_test_acc": float(np.nanmax(t.final)), "valid_acc": t.valid is not None,
                     "schema_version": meta.get("schema_version", ""), "code_version": meta.get("code_version", ""),
                     "recipe": recipe.get("name", ""), "recipe_hash": recipe.get("hash", ""),
                     "skeleton": meta.get("skeleton", ""), "dataset_fingerprint": meta.get("dataset_fingerprint", ""),
                     "source": meta.get("source", ""), "surrogate_model": t.surrogate_model or ""})
    return pd.DataFrame(rows, columns=["table", "root", "archs", "surrogate_archs", "best_test_acc", "valid_acc",
                                       "schema_version", "code_version", "recipe", "recipe_hash", "skeleton",
                                       "dataset_fingerprint", "source", "surrogate_model"])


# --- Figure 5.3: accuracy against costs -------------------------------------------------------------
def costs_of(store, space: str, dataset: str) -> tuple[dict[str, np.ndarray] | None, str]:
    """(params_m and flops_m of every architecture, where they come from), or (None, why not)."""
    from spaces.errors import UserError

    bench = store.view(surrogate=True)
    size = get_space(space).size
    try:
        cost = bench.cost(space, dataset, np.arange(size), missing_ok=True)
        if np.isfinite(cost["params_m"]).any():
            return {k: np.asarray(cost[k], np.float64) for k in ("params_m", "flops_m")}, "measured (the store's archs)"
    except UserError:
        pass
    if space != "tss" or dataset not in COST_INPUT_SIZE:
        return None, f"the store has no costs for {space}/{dataset}"
    table = get_space(space).cost_table(S.NUM_CLASSES[dataset], input_size=COST_INPUT_SIZE[dataset], C=16, N=5)
    return {k: np.asarray(table[k], np.float64) for k in ("params_m", "flops_m")}, \
        f"computed (topology cost table, C=16, N=5, {COST_INPUT_SIZE[dataset]}x{COST_INPUT_SIZE[dataset]} inputs)"


def costs(tables: list[BenchTable], stores) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Per table: how its accuracy ranks with parameters and with FLOPs; and each table's costs
    (by table name) for the figure."""
    by_label = {s.label: s for s in stores}
    cache: dict[tuple, tuple] = {}
    rows, arrays = [], {}
    for t in tables:
        key = (t.store, t.space, t.dataset)
        if key not in cache:
            cache[key] = costs_of(by_label[t.store], t.space, t.dataset)
        cost, source = cache[key]
        row = {"table": t.name, "cost_source": source}
        if cost is not None:
            arrays[t.name] = cost
            for name in ("params_m", "flops_m"):
                n, tau, rho = stats.agreement(cost[name], t.final)
                known = np.isfinite(cost[name]) & np.isfinite(t.final)
                row.update({"archs": n, "surrogate_archs": int((known & t.surrogate).sum()),
                            f"{name}_min": np.nanmin(cost[name][known]) if n else np.nan,
                            f"{name}_max": np.nanmax(cost[name][known]) if n else np.nan,
                            f"{name}_kendall": tau, f"{name}_spearman": rho})
        rows.append(row)
    columns = ["table", "cost_source", "archs", "surrogate_archs", "params_m_min", "params_m_max", "params_m_kendall",
               "params_m_spearman", "flops_m_min", "flops_m_max", "flops_m_kendall", "flops_m_spearman"]
    return pd.DataFrame(rows).reindex(columns=columns), arrays


# --- Figures 5.2 and 5.5: one table against another --------------------------------------------------
def pairs(tables: list[BenchTable]) -> list[tuple[BenchTable, BenchTable]]:
    """(reference, other) for every two tables of one space with common architectures; the
    reference is the longer recipe (the later table on a tie)."""
    out = []
    for a, b in itertools.combinations(tables, 2):
        if a.space != b.space or not (np.isfinite(a.final) & np.isfinite(b.final)).any():
            continue
        out.append((b, a) if b.hp >= a.hp else (a, b))
    return out


def ranks(values: np.ndarray) -> np.ndarray:
    from benchmark_data.task import rank_descending  # the task view's one ranking rule

    return rank_descending(values)


def rank_pairs(pair_list) -> pd.DataFrame:
    rows = []
    for ref, other in pair_list:
        n, tau, rho = stats.agreement(ref.final, other.final)
        rows.append({"space": ref.space, "reference": ref.name, "other": other.name, "archs": n,
                     "kendall": tau, "spearman": rho, "surrogate_archs": int(((ref.surrogate | other.surrogate)
                                                                             & np.isfinite(ref.final)
                                                                             & np.isfinite(other.final)).sum())})
    return pd.DataFrame(rows, columns=["space", "reference", "other", "archs", "kendall", "spearman",
                                       "surrogate_archs"])


def topk(pair_list, ks=TOP_K) -> pd.DataFrame:
    """Kendall tau and Spearman rho of each pair over the reference's top k common architectures
    (ties broken by the smaller index), for each k below their number, and over all of them."""
    rows = []
    for ref, other in pair_list:
        common = np.flatnonzero(np.isfinite(ref.final) & np.isfinite(other.final))
        order = common[np.argsort(-ref.final[common], kind="stable")]
        for k in [k for k in ks if k < order.size] + [order.size]:
            top = order[:k]
            n, tau, rho = stats.agreement(ref.final[top], other.final[top])
            rows.append({"space": ref.space, "reference": ref.name, "other": other.name, "k": k,
                         "all": k == order.size, "kendall": tau, "spearman": rho})
    return pd.DataFrame(rows, columns=["space", "reference", "other", "k", "all", "kendall", "spearman"])


# --- Figure 5.4 and the recipes ---------------------------------------------------------------------
def valid_test(tables: list[BenchTable]) -> pd.DataFrame:
    rows = []
    for t in tables:
        if t.valid is None:
            continue
        n, tau, rho = stats.agreement(t.valid, t.final)
        used = np.isfinite(t.valid) & np.isfinite(t.final)
        rows.append({"table": t.name, "archs": n, "surrogate_archs": int((used & t.surrogate).sum()), "kendall": tau,
                     "spearman": rho})
    return pd.DataFrame(rows, columns=["table", "archs", "surrogate_archs", "kendall", "spearman"])


def recipes(tables: list[BenchTable]) -> pd.DataFrame:
    """For every short and longer recipe of one (store, space, dataset): after each epoch of the
    short recipe, how its feedback ranks the common architectures against the longer recipe's
    final test accuracy."""
    rows = []
    for short, long in recipe_pairs(tables):
        for e in range(short.feedback.shape[1]):
            n, tau, rho = stats.agreement(short.feedback[:, e], long.final)
            used = np.isfinite(short.feedback[:, e]) & np.isfinite(long.final)
            rows.append({"store": short.store, "space": short.space, "dataset": short.dataset, "short_hp": short.hp,
                         "long_hp": long.hp, "epoch": e + 1, "feedback": short.feedback_source, "archs": n,
                         "surrogate_archs": int((used & (short.surrogate | long.surrogate)).sum()),
                         "kendall": tau, "spearman": rho})
    return pd.DataFrame(rows, columns=["store", "space", "dataset", "short_hp", "long_hp", "epoch", "feedback",
                                       "archs", "surrogate_archs", "kendall", "spearman"])


def recipe_pairs(tables: list[BenchTable]) -> list[tuple[BenchTable, BenchTable]]:
    """(short, long) recipes of one (store, space, dataset), as ``recipes`` compares them."""
    out = []
    for a, b in itertools.combinations(tables, 2):
        if (a.store, a.space, a.dataset) == (b.store, b.space, b.dataset):
            out.append((a, b) if a.hp < b.hp else (b, a))
    return out


def pair_notes(pair_list) -> list[str]:
    """The surrogate notes of tables compared in pairs, over the architectures both hold."""
    notes = []
    for a, b in pair_list:
        used = np.isfinite(a.final) & np.isfinite(b.final)
        notes += [n for n in (a.surrogate_note(used), b.surrogate_note(used)) if n and n not in notes]
    return notes
