"""The store's tables, their exact column types, keys, partitions and per-file provenance.

One module owns the schema so that every writer (the builder, the importers, the trainables, the
search runner) produces files the reader and outside tools (pandas, pyarrow, duckdb) agree on.
The column-by-column documentation lives in ``docs/SCHEMA.md``; the ``COLUMN_DOCS`` mapping below
holds the same text so that ``python -m benchmark_data info`` and tests can check they agree.

Partition columns are encoded in the hive-style folder names (``space=tss/dataset=digits/hp=12``)
and are NOT stored inside the files: pyarrow/pandas refuse a dataset where a column is both in the
path and in the file. Readers re-attach them from the path.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spaces.errors import UserError

# Bump when a column is added, removed or changes meaning; readers refuse newer major versions.
# 1.1: one-shot columns in runs; 1.2: arch/best_arch strings in runs (absent in older files:
# read as null); 1.3: runs.clock (older files get it from ``upgrade``), the trials table;
# 1.4: the surrogate table, runs.surrogate / runs.best_surrogate (older files: read as null);
# 1.5: trials.error (older files: read as null)
SCHEMA_VERSION = "1.5"

# ``surrogate`` holds model predictions for architectures the ``epochs`` table lacks: the same
# columns and partitions as ``epochs``, kept in a table of their own so that no reader of
# ``epochs`` (ours, pandas, duckdb) ever meets a predicted value it did not ask for.
TABLES: tuple[str, ...] = ("archs", "epochs", "runs", "trials", "surrogate")

# Every dataset a store may hold, and its class count (the width of the classifier head, e.g.
# what the NATS facade's get_net_config reports). NATS-Bench's four names first, as NATS-Bench
# spells them (api_utils.py, ``statistics``: cifar10-valid, cifar10, cifar100, ImageNet16-120),
# then ours. This is the one list: trainables and the importers take it from here, since
# benchmark_data may not import trainables.
NUM_CLASSES: dict[str, int] = {
    "cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120,
    "digits": 10, "fashion-mnist": 10,
}
DATASETS: tuple[str, ...] = tuple(NUM_CLASSES)
NATS_DATASETS: tuple[str, ...] = DATASETS[:4]

# Row status values for the `epochs` table (see docs/SCHEMA.md for their meaning).
STATUSES: tuple[str, ...] = ("ok", "diverged", "iso_copy", "no_path", "imported")
# The one status of a `surrogate` row (predicted by a model fitted on `epochs` rows; its seed is
# -1, since a prediction is of the mean over training seeds, not of any one seed).
SURROGATE_STATUS = "surrogate"
SURROGATE_SEED = -1
# Status of a live trial (`trials` table).
TRIAL_STATUSES: tuple[str, ...] = ("ok", "stopped", "error", "unfinished", "diverged")
# The clock a run's times are on (`runs.clock`), and the column that holds the run's time on it:
# a simulated search is charged the benchmark's recorded training time (sim_time_s); one-shot and
# live runs have no simulated clock, only the real time they took (wall_time_s).
CLOCK_COLUMNS: dict[str, str] = {"simulated": "sim_time_s", "wall": "wall_time_s"}
CLOCKS: tuple[str, ...] = tuple(CLOCK_COLUMNS)

# Float metric columns of `epochs`: the ones the reader serves as dense float32 arrays.
EPOCH_METRICS: tuple[str, ...] = (
    "train_loss", "train_acc", "valid_loss", "valid_acc", "test_loss", "test_acc",
    "epoch_time_s", "eval_time_s",
)
ARCH_COSTS: tuple[str, ...] = ("params_m", "flops_m", "latency_ms")

_f32, _i16, _i32, _str = pa.float32(), pa.int16(), pa.int32(), pa.string()


def _field(name: str, typ: pa.DataType, required: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=not required)


SCHEMAS: dict[str, pa.Schema] = {
    "archs": pa.schema([
        _field("space", _str, True),
        _field("dataset", _str, True),
        _field("arch_index", _i32, True),
        _field("arch", _str),
        _field("iso_class", _i32),
        _field("nats_index", _i32),
        _field("params_m", _f32),
        _field("flops_m", _f32),
        _field("latency_ms", _f32),
    ]),
    "epochs": pa.schema([
        _field("space", _str, True),
        _field("dataset", _str, True),
        _field("hp", _i16, True),
        _field("arch_index", _i32, True),
        _field("seed", _i32, True),
        _field("epoch", _i16, True),
        *[_field(m, _f32) for m in EPOCH_METRICS],
        _field("status", _str),
    ]),
    "runs": pa.schema([
        _field("experiment", _str, True),
        _field("searcher", _str, True),
        _field("space", _str),
        _field("dataset", _str),
        _field("budget_s", pa.float64()),
        _field("budget_evals", _i32),
        _field("run_seed", _i32, True),
        _field("event", _i32, True),
        _field("sim_time_s", pa.float64()),
        _field("arch_index", _i32),
        _field("fidelity", _i16),
        _field("feedback", _f32),
        _field("best_arch_index", _i32),
        _field("best_test_acc", _f32),
        _field("final_recipe_hp", _i16),
        _field("searcher_time_s", pa.float64()),
        _field("wall_time_s", pa.float64()),
        _field("best_rank", _i32),
        _field("search_loss", _f32),
        _field("supernet_valid_acc", _f32),
        _field("arch_entropy", _f32),
        _field("arch", _str),
        _field("best_arch", _str),
        _field("clock", _str),
        _field("surrogate", pa.bool_()),
        _field("best_surrogate", pa.bool_()),
    ]),
    "trials": pa.schema([
        _field("experiment", _str, True),
        _field("searcher", _str, True),
        _field("space", _str),
        _field("dataset", _str),
        _field("hp", _i16),
        _field("run_seed", _i32, True),
        _field("event", _i32, True),
        _field("trial_id", _str),
        _field("arch_index", _i32),
        _field("arch", _str),
        _field("fidelity", _i16),
        _field("epochs", _i16),
        _field("feedback", _f32),
        _field("test_acc", _f32),
        _field("train_time_s", pa.float64()),
        _field("trial_time_s", pa.float64()),
        _field("status", _str),
        _field("error", _str),
    ]),
}

SCHEMAS["surrogate"] = SCHEMAS["epochs"]

# The values a string column may hold, per table; the writer refuses others (a typo would
# otherwise become a category no reader expects).
ALLOWED_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "epochs": {"status": STATUSES},
    "surrogate": {"status": (SURROGATE_STATUS,)},
    "runs": {"clock": CLOCKS},
    "trials": {"status": TRIAL_STATUSES},
}

# Identity of a row: compaction and readers keep only the last written row per key.
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "archs": ("space", "dataset", "arch_index"),
    "epochs": ("space", "dataset", "hp", "arch_index", "seed", "epoch"),
    "runs": ("experiment", "searcher", "run_seed", "event"),
    "trials": ("experiment", "searcher", "run_seed", "event"),
}
KEY_COLUMNS["surrogate"] = KEY_COLUMNS["epochs"]

# Hive folder levels, outermost first. Chosen so that a query touches one folder: the simulator
# reads one (space, dataset, hp) at a time, a report reads one experiment at a time.
PARTITION_COLUMNS: dict[str, tuple[str, ...]] = {
    "archs": ("space", "dataset"),
    "epochs": ("space", "dataset", "hp"),
    "runs": ("experiment",),
    "trials": ("experiment",),
}
PARTITION_COLUMNS["surrogate"] = PARTITION_COLUMNS["epochs"]

# Which column a searcher sees, which is the fidelity and which is time, per table: recorded in
# every file so that a generic tool knows what to optimise without guessing.
ROLE_COLUMNS: dict[str, dict[str, str]] = {
    "archs": {"objective_column": "", "fidelity_column": "", "time_column": "latency_ms"},
    "epochs": {"objective_column": "valid_acc", "fidelity_column": "epoch",
               "time_column": "epoch_time_s"},
    "runs": {"objective_column": "feedback", "fidelity_column": "fidelity",
             "time_column": "sim_time_s"},  # a wall-clock run's file records wall_time_s
    "trials": {"objective_column": "feedback", "fidelity_column": "epochs",
               "time_column": "train_time_s"},
}
ROLE_COLUMNS["surrogate"] = ROLE_COLUMNS["epochs"]

COLUMN_DOCS: dict[str, dict[str, str]] = {
    "archs": {
        "space": "search space: 'tss' (topology) or 'sss' (size); partition folder",
        "dataset": "dataset the cost was measured for (class count changes the head); partition folder",
        "arch_index": "project architecture index (see spaces: base-5 ops / base-8 channels)",
        "arch": "canonical architecture string, e.g. |nor_conv_3x3~0|+|...| or 8:16:32:64:64",
        "iso_class": "isomorphism class id = smallest arch_index computing the same function",
        "nats_index": "official NATS-Bench index; null when the row was not imported from NATS-Bench",
        "params_m": "trainable parameters, millions",
        "flops_m": "multiply-accumulates of one forward pass of one image, millions",
        "latency_ms": "forward latency of one batch, milliseconds; null when not measured",
    },
    "epochs": {
        "space": "search space; partition folder",
        "dataset": "dataset name (NATS-Bench names: cifar10-valid, cifar10, cifar100, "
                   "ImageNet16-120; ours: digits, fashion-mnist); partition folder",
        "hp": "training recipe length in epochs (12 = search recipe H0, 200 = H1, 90 = H2); "
              "partition folder",
        "arch_index": "project architecture index",
        "seed": "training seed; -1 = an aggregate published without per-seed values",
        "epoch": "1-based number of training epochs completed when the metrics were taken",
        "train_loss": "mean cross-entropy on the training split during that epoch",
        "train_acc": "top-1 accuracy on the training split during that epoch, percent",
        "valid_loss": "cross-entropy on the validation split after that epoch",
        "valid_acc": "top-1 accuracy on the validation split after that epoch, percent "
                     "(the searcher-visible objective)",
        "test_loss": "cross-entropy on the test split after that epoch",
        "test_acc": "top-1 accuracy on the test split after that epoch, percent (reporting only)",
        "epoch_time_s": "training time of that one epoch, seconds",
        "eval_time_s": "time of one evaluation pass over the validation split, seconds",
        "status": "ok | diverged (loss not finite or over 100x chance; a simulated search's evaluation of it "
                  "fails, as in a live one) | iso_copy (copied from an isomorphic twin) | "
                  "no_path (no path from input to output: constant network) | imported",
    },
    "runs": {
        "experiment": "experiment name; partition folder",
        "searcher": "searcher name (random, rea, reinforce, bohb, tpe, ...)",
        "space": "search space searched",
        "dataset": "dataset searched",
        "budget_s": "simulated time budget, seconds (null when the budget counts evaluations)",
        "budget_evals": "evaluation budget; null when the budget is time",
        "run_seed": "seed of this search run",
        "event": "0-based index of the evaluation event within the run",
        "sim_time_s": "simulated clock when the event completed, seconds; null when clock is wall",
        "arch_index": "architecture evaluated at this event",
        "fidelity": "epochs the architecture was trained for at this event",
        "feedback": "value the searcher was told (validation accuracy, percent)",
        "best_arch_index": "architecture the searcher believed best after this event",
        "best_test_acc": "test accuracy of best_arch_index under the final recipe, percent",
        "final_recipe_hp": "hp of the recipe best_test_acc is taken from",
        "searcher_time_s": "real compute time spent in the searcher (not on the simulated clock)",
        "wall_time_s": "real elapsed time since the run started, seconds (the run's clock when clock is wall)",
        "best_rank": "one-shot: rank of best_arch_index by best_test_acc among all architectures (1 = best)",
        "search_loss": "one-shot: mean training loss of the supernet over this search epoch",
        "supernet_valid_acc": "one-shot: validation accuracy of the derived architecture with the shared "
                              "weights, percent",
        "arch_entropy": "one-shot: mean entropy of the per-edge op distribution, nats (log 5 = 1.609 is uniform)",
        "arch": "canonical string of arch_index (schema 1.2; null in older files)",
        "best_arch": "canonical string of best_arch_index (schema 1.2; null in older files)",
        "clock": "simulated (a replay of a benchmark: the run's times are sim_time_s) | wall (one-shot or "
                 "live: no simulated clock, sim_time_s is null, the run's times are wall_time_s); schema "
                 "1.3, filled in when older files are read",
        "surrogate": "whether this event's feedback came from a surrogate model (the surrogate table) rather "
                     "than a trained row; schema 1.4, null in older files and in one-shot/live runs",
        "best_surrogate": "whether best_test_acc (the incumbent's final value) came from a surrogate model; "
                          "schema 1.4, null in older files and in one-shot/live runs",
    },
    "trials": {
        "experiment": "experiment name; partition folder",
        "searcher": "searcher name",
        "space": "search space",
        "dataset": "dataset trained on",
        "hp": "recipe length in epochs (the store's hp)",
        "run_seed": "seed of the searcher and of the training",
        "event": "0-based trial number in the order Tune created the trials",
        "trial_id": "Ray Tune trial id (also the id the searcher was asked with)",
        "arch_index": "project architecture index",
        "arch": "canonical architecture string",
        "fidelity": "epochs the searcher asked for (multi-fidelity searchers; else null)",
        "epochs": "epochs trained (fewer than asked when a scheduler stopped the trial)",
        "feedback": "validation accuracy after the last trained epoch, percent (what the searcher saw)",
        "test_acc": "test accuracy after the last trained epoch, percent (reporting only)",
        "train_time_s": "sum of the trained epochs' training time, seconds",
        "trial_time_s": "Ray's time_total_s of the trial (training, evaluation, checkpoints), seconds",
        "status": "ok (trained the epochs it was meant to) | stopped (a scheduler stopped it early) | "
                  "error (it failed more often than --max-failures allowed) | unfinished (the run was "
                  "interrupted first; in an interrupted run, trials a scheduler stopped count here too) | "
                  "diverged (its training loss became non-finite or over 100x chance: stopped there, told to "
                  "the searcher as a failure)",
        "error": "for status error: the trainable's exception as type and message (its last line, at most "
                 "300 characters; the traceback is in the trial's folder); else null; schema 1.5, null in "
                 "older files",
    },
}
# A surrogate row means what an epochs row means, as a prediction for an architecture without one.
COLUMN_DOCS["surrogate"] = {
    **COLUMN_DOCS["epochs"],
    "seed": "always -1: a prediction of the mean over the training seeds of the rows the model was fitted on",
    "status": "surrogate (predicted by the model the file's metadata names, for an architecture with no "
              "epochs row; python -m benchmark_data surrogate writes them)",
}

# Partition values become folder names: keep them to characters that need no escaping anywhere.
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]*$")


def check_table(table: str) -> pa.Schema:
    """Return the schema of ``table``; UserError naming the tables that exist otherwise."""
    if table not in SCHEMAS:
        raise UserError(f"unknown table {table!r}; the store has tables {', '.join(TABLES)}")
    return SCHEMAS[table]


def check_dataset(name: Any, where: str = "") -> str:
    """``name`` if it is a known dataset; a UserError listing the known ones otherwise.

    A typo (``cifar11``) would otherwise become a partition of its own that no search ever finds.
    ``where`` prefixes the message (a file and line, an archive record).
    """
    if name not in DATASETS:
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}"
                        " (check the spelling; NATS-Bench writes ImageNet16-120 with capitals)")
    return name


def check_partition_value(column: str, value: Any) -> str:
    """Render one partition value as its folder text, refusing values unsafe in a path."""
    text = str(value)
    if not _SAFE_VALUE.match(text):
        raise UserError(
            f"{column}={text!r} cannot be a partition folder name: use letters, digits and _ . + - "
            "only, not starting with '.'")
    return text


def data_schema(table: str) -> pa.Schema:
    """Schema of the columns physically stored in a file (the partition columns removed)."""
    schema = check_table(table)
    parts = set(PARTITION_COLUMNS[table])
    return pa.schema([f for f in schema if f.name not in parts])


def upgrade(table: str, tbl: pa.Table) -> pa.Table:
    """One fragment's rows, as read with the file's metadata kept (``writer.read_fragment``),
    given the meaning of the current schema version where an older file left a gap.

    ``runs`` files before 1.3 have no ``clock`` (read as null). It becomes ``wall`` where the
    file's recipe says the run was a one-shot search (``{"search": "oneshot", ...}``), whose rows
    put the search's real time in ``sim_time_s`` as well as in ``wall_time_s`` (the same values),
    so ``sim_time_s`` becomes null there: no simulated clock ran. Every other such file is a
    replay of a benchmark: ``simulated``. Only null clocks are filled, so a file written at 1.3,
    or rows already upgraded (a compacted file), come back as they are; other tables, and reads
    that did not ask for ``clock``, are returned unchanged.
    """
    check_table(table)
    if table != "runs" or "clock" not in tbl.column_names:
        return tbl
    missing = tbl["clock"].is_null()
    if not pc.any(missing).as_py():
        return tbl
    clock = "wall" if _is_oneshot(tbl.schema.metadata or {}) else "simulated"
    out = tbl.set_column(tbl.column_names.index("clock"), tbl.schema.field("clock"),
                         pc.if_else(missing, pa.scalar(clock), tbl["clock"]))
    if clock == "wall" and "sim_time_s" in tbl.column_names:
        i = tbl.column_names.index("sim_time_s")
        field = tbl.schema.field("sim_time_s")
        out = out.set_column(i, field, pc.if_else(missing, pa.scalar(None, field.type),
                                                          tbl["sim_time_s"]))
    return out


def _is_oneshot(metadata: Mapping[bytes, bytes]) -> bool:
    """Whether a runs file's provenance recipe names a one-shot search (how 1.1-1.2 wrote it)."""
    try:
        recipe = json.loads(metadata.get(b"recipe", b"") or b"{}")
    except ValueError:
        return False
    return isinstance(recipe, dict) and recipe.get("search") == "oneshot"


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    """Package version plus the git commit of this checkout, so a file says what produced it."""
    try:
        from importlib.metadata import version
        pkg = version("natsflow")
    except Exception:  # not installed (e.g. run from a source tree): still record the commit
        pkg = "unknown"
    repo = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
        commit = out.stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True, timeout=5)
        if dirty.stdout.strip():
            commit += "-dirty"
    except (OSError, subprocess.SubprocessError):
        commit = "nogit"
    return f"{pkg}+{commit}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that can change numbers; torch only when the caller uses it."""
    from importlib.metadata import version

    import numpy
    # pandas' version from its metadata: importing it costs a simulated search a third of a second
    out = {"python": platform.python_version(), "numpy": numpy.__version__,
           "pyarrow": pa.__version__, "pandas": version("pandas")}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = getattr(torch, "__version__", "unknown")
    return out


def provenance(table: str = "epochs", *, recipe: Mapping[str, Any] | None = None,
               skeleton: Mapping[str, Any] | None = None, dataset_fingerprint: str | None = None,
               objective_column: str | None = None, fidelity_column: str | None = None,
               time_column: str | None = None, extra: Mapping[str, str] | None = None
               ) -> dict[str, str]:
    """Key/value metadata for one file: enough to tell later how its numbers were produced.

    Values are strings (Parquet key/value metadata holds bytes); dicts are stored as sorted JSON
    so that two files from the same recipe carry byte-identical recipe entries.
    ``table`` only picks the default objective/fidelity/time columns. Every table takes a
    ``skeleton`` and a ``dataset_fingerprint``: a ``runs`` file records those of the benchmark
    it searched (``Benchmark.dataset_fingerprint(space, dataset)`` reads a store's).
    """
    check_table(table)
    for name, given in (("recipe", recipe), ("skeleton", skeleton)):
        if given is not None and not isinstance(given, Mapping):
            raise UserError(f"provenance {name} must be a dict (stored as JSON), got "
                            f"{type(given).__name__}: {given!r}")
    if dataset_fingerprint is not None and not isinstance(dataset_fingerprint, str):
        raise UserError("provenance dataset_fingerprint must be a string (e.g. Dataset.fingerprint "
                        f"or Benchmark.dataset_fingerprint(...)), got {dataset_fingerprint!r}")
    roles = dict(ROLE_COLUMNS[table])
    for key, given in (("objective_column", objective_column),
                       ("fidelity_column", fidelity_column), ("time_column", time_column)):
        if given is not None:
            if given and given not in SCHEMAS[table].names:
                raise UserError(f"{key}={given!r} is not a column of table {table!r}; "
                                f"columns: {', '.join(SCHEMAS[table].names)}")
            roles[key] = given
    meta = {
        "schema_version": SCHEMA_VERSION,
        "code_version": _code_version(),
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "recipe": json.dumps(dict(recipe or {}), sort_keys=True, default=str),
        "skeleton": json.dumps(dict(skeleton or {}), sort_keys=True, default=str),
        "dataset_fingerprint": dataset_fingerprint or "",
        "library_versions": json.dumps(library_versions(), sort_keys=True),
        **roles,
    }
    for key, value in (extra or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise UserError(f"provenance extra entries must be str -> str, got {key!r}: {value!r}")
        meta[key] = value
    return meta


# ---------------------------------------------------------------------------------------------
# Where rows live on disk. Fragment names start with a 20-digit nanosecond timestamp taken when the
# file became visible, so sorting names sorts fragments by write order ("the last written wins").
FRAGMENT_SUFFIX = ".parquet"


def is_fragment_name(name: str) -> bool:
    """True for finished data files; in-flight writes (``.x.tmp``) and lock files are skipped."""
    return (name.endswith(FRAGMENT_SUFFIX) and not name.startswith((".", "_"))
            and not name.endswith(".tmp"))


def partition_path(root: str | Path, table: str, values: Mapping[str, Any]) -> Path:
    """Folder of one partition, e.g. ``root/epochs/space=tss/dataset=digits/hp=12``."""
    check_table(table)
    path = Path(root) / table
    for col in PARTITION_COLUMNS[table]:
        path = path / f"{col}={check_partition_value(col, values[col])}"
    return path


def _parse_partition_value(table: str, column: str, text: str) -> Any:
    typ = SCHEMAS[table].field(column).type
    if pa.types.is_integer(typ):
        return int(text)
    return text


def iter_partitions(root: str | Path, table: str) -> list[tuple[dict[str, Any], Path]]:
    """All partition folders of ``table`` (sorted), with their typed column values.

    Only folder names are read: this is what makes ``Benchmark.open`` cheap. Folders that are not
    ``column=value`` at the expected level (hidden folders, stray files) are ignored.
    """
    check_table(table)
    levels: list[tuple[dict[str, Any], Path]] = [({}, Path(root) / table)]
    for col in PARTITION_COLUMNS[table]:
        nxt: list[tuple[dict[str, Any], Path]] = []
        for values, folder in levels:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                name = entry.name
                if not entry.is_dir() or name.startswith((".", "_")) or "=" not in name:
                    continue
                key, _, text = name.partition("=")
                if key != col:
                    continue
                try:
                    value = _parse_partition_value(table, col, text)
                except ValueError:
                    continue
                nxt.append(({**values, col: value}, Path(entry.path)))
        levels = nxt
    return levels


def list_fragments(folder: str | Path) -> list[Path]:
    """Finished fragments of one partition folder, oldest first."""
    try:
        names = [e.name for e in os.scandir(folder) if e.is_file() and is_fragment_name(e.name)]
    except FileNotFoundError:
        return []
    return [Path(folder) / n for n in sorted(names)]
