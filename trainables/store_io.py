"""What the trainers read from and write to a store: rows, provenance, and the checks before training.

The skeleton (C, N) and the recipe are not key columns of the store, so rows of another skeleton
or recipe under the same key would be skipped as already present: writers call ``check_store``
before training (``stored`` rows of a different procedure are refused, never silently kept in
place of the new ones). ``stored_epochs``/``stored_archs`` tell a writer which keys are already
there, so a resumed or repeated training never writes a key twice.

No torch here: the driver checks a store before any training process starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark_data import schema
from benchmark_data.writer import read_fragment
from spaces.errors import UserError
from trainables.recipes import Recipe, get_recipe, recorded_recipe
from trainables.skeleton import get_space, skeleton

if TYPE_CHECKING:
    from trainables.data import Dataset
    from trainables.engine import TrainEngine


def epoch_row(engine: TrainEngine, epoch: int, metrics: Mapping[str, float], *,
              arch_index: int | None = None, status: str | None = None) -> dict[str, Any]:
    """One ``epochs`` row; ``arch_index``/``status`` override them for iso copies."""
    return {
        "space": engine.space.name, "dataset": engine.dataset.name, "hp": engine.recipe.hp,
        "arch_index": engine.arch_index if arch_index is None else arch_index,
        "seed": engine.seed, "epoch": epoch, **{m: metrics[m] for m in schema.EPOCH_METRICS},
        "status": status or ("diverged" if engine.diverged else "ok"),
    }


def arch_row(space: Any, arch_index: int, dataset: Dataset, *, C: int, N: int, iso_class: int,
             latency_ms: float | None) -> dict[str, Any]:
    """One ``archs`` row: costs from the space's counter, latency as measured by the caller."""
    space = get_space(space)
    cost = space.cost(arch_index, dataset.num_classes, input_size=dataset.image_size, C=C, N=N,
                      in_channels=dataset.in_channels)
    return {"space": space.name, "dataset": dataset.name, "arch_index": arch_index,
            "arch": space.to_str(arch_index), "iso_class": iso_class, "nats_index": None,
            "params_m": cost["params_m"], "flops_m": cost["flops_m"], "latency_ms": latency_ms}


def store_metadata(table: str, recipe: Recipe, dataset: Dataset, *, C: int, N: int,
                   extra: Mapping[str, Any] | None = None, space: Any = None) -> dict[str, str]:
    """Provenance of a fragment: recipe (with its hash), skeleton, data fingerprint, code."""
    return schema.provenance(
        table, recipe={**recipe.to_dict(), "hash": recipe.hash},
        skeleton=skeleton(space, C, N) if space is not None else {"C": C, "N": N},
        dataset_fingerprint=dataset.fingerprint,
        extra={k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
               for k, v in (extra or {}).items()})


def stored_epochs(root: str | Path, space: str, dataset: str, hp: int,
                  arch_index: int | None = None) -> pd.DataFrame:
    """(arch_index, seed, epoch) of every row already in one ``epochs`` partition of a store.

    Reads three int columns of each fragment only; corrupt fragments are skipped (the reader and
    ``compact`` report them), so a bad file makes its rows count as missing, not the build fail.
    """
    folder = schema.partition_path(root, "epochs", {"space": space, "dataset": dataset, "hp": hp})
    parts = []
    for path in schema.list_fragments(folder):
        try:
            tbl = read_fragment(path, "epochs", columns=["arch_index", "seed", "epoch"])
        except (FileNotFoundError, UserError):
            continue
        df = tbl.to_pandas()
        parts.append(df if arch_index is None else df[df["arch_index"] == arch_index])
    if not parts:
        return pd.DataFrame({"arch_index": pd.Series(dtype="int32"),
                             "seed": pd.Series(dtype="int32"), "epoch": pd.Series(dtype="int16")})
    return pd.concat(parts, ignore_index=True)


def stored_archs(root: str | Path, space: str, dataset: str) -> set[int]:
    """arch_index values already in the ``archs`` partition of (space, dataset)."""
    folder = schema.partition_path(root, "archs", {"space": space, "dataset": dataset})
    out: set[int] = set()
    for path in schema.list_fragments(folder):
        try:
            out.update(read_fragment(path, "archs", columns=["arch_index"])["arch_index"].to_pylist())
        except (FileNotFoundError, UserError):
            continue
    return out


def check_store(root: str | Path, space: Any, dataset: str, recipe: Recipe, *, C: int, N: int,
                flag: str = "--store") -> None:
    """UserError when the store holds rows this run's rows must not be mixed with.

    Refused: an ``archs`` or ``epochs`` file of (space, dataset) recording another skeleton (the
    costs and the curves of one key would come from two networks), and an ``epochs`` file of
    (space, dataset, hp) recording another recipe hash (a run with another schedule of the same
    length). Neither is a key column, so the writers would skip the new rows of every key already
    present and keep the old ones. Reads file footers only; files recording no skeleton or hash
    (imported tables, rows written without provenance) and unreadable files (the reader reports
    those) are not judged.
    """
    space = get_space(space)
    mine = skeleton(space, C, N)
    root = Path(root)
    for table, values in (("archs", {"space": space.name, "dataset": dataset}),
                          ("epochs", {"space": space.name, "dataset": dataset, "hp": recipe.hp})):
        for path in schema.list_fragments(schema.partition_path(root, table, values)):
            try:
                meta = pq.read_schema(path).metadata or {}
            except (OSError, pa.ArrowException):  # gone (compacted meanwhile) or corrupt
                continue
            theirs = _recorded_skeleton(meta.get(b"skeleton"), space)
            if theirs is not None and theirs != mine:
                raise UserError(
                    f"{flag} {root} holds {space.name}/{dataset} rows of skeleton "
                    f"{_skeleton_text(theirs)} ({path.relative_to(root)}), this run trains "
                    f"{_skeleton_text(mine)}; the skeleton is not part of the store's key, so the "
                    f"two could not be told apart and rows already there would be kept instead "
                    f"of the new ones: give another {flag} (or train {_skeleton_text(theirs)})")
            if table == "epochs":
                _check_recipe(meta.get(b"recipe"), recipe, root, path, flag)


def _recorded_skeleton(raw: bytes | None, space: Any) -> dict[str, int] | None:
    """A file's skeleton in ``skeleton()``'s form, or None when it records none."""
    try:
        sk = json.loads(raw) if raw else {}
        if space.name == "sss":  # files written before skeleton() also recorded the unused C
            return {"N": int(sk["N"])} if "N" in sk else None
        return {"C": int(sk["C"]), "N": int(sk["N"])} if {"C", "N"} <= set(sk) else None
    except (ValueError, TypeError):
        return None


def _skeleton_text(sk: Mapping[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(sk.items()))


def _check_recipe(raw: bytes | None, recipe: Recipe, root: Path, path: Path, flag: str) -> None:
    try:
        spec = json.loads(raw) if raw else {}
    except ValueError:
        return
    theirs = spec.get("hash") if isinstance(spec, dict) else None
    if theirs is None or theirs == recipe.hash:
        return
    hint = ""
    try:
        old = recorded_recipe(spec)
        if old.lr_schedule_step != recipe.lr_schedule_step and \
                get_recipe(old, lr_schedule_step=recipe.lr_schedule_step).hash == recipe.hash:
            hint = (f"; the two differ only in lr_schedule_step: the store's rows were trained with "
                    f"the cosine stepped per {old.lr_schedule_step}, this run steps it per "
                    f"{recipe.lr_schedule_step}")
    except UserError:
        pass
    raise UserError(
        f"{flag} {root} holds rows of hp={recipe.hp} trained with another recipe (hash {theirs}, "
        f"{path.relative_to(root)}) than this run's {recipe.name!r} (hash {recipe.hash}){hint}. "
        f"The recipe is not part of the store's key, so rows already there would be kept instead "
        f"of the new ones: give another {flag}, or train with the store's recipe")
