"""The writer's promises: exact schema, one atomic fragment per partition, lossless concurrent
appends, and compaction that keeps the last written row per key."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark_data import schema as S
from benchmark_data import writer as W
from spaces.errors import UserError


def _files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_round_trip_through_pandas_keeps_types_partitions_and_provenance(tmp_path, epoch_rows):
    rows = pd.concat([epoch_rows(dataset="digits"), epoch_rows(dataset="cifar10", hp=200, epochs=3)])
    meta = S.provenance(recipe={"epochs": 12}, skeleton={"C": 16, "N": 5},
                        dataset_fingerprint="abc")
    paths = W.write_fragment(tmp_path, "epochs", rows, metadata=meta)
    assert [p.parent.relative_to(tmp_path).as_posix() for p in paths] == [
        "epochs/space=tss/dataset=cifar10/hp=200", "epochs/space=tss/dataset=digits/hp=12"]
    back = pd.read_parquet(tmp_path / "epochs")
    assert len(back) == len(rows)
    got = back[back.dataset == "digits"].sort_values(["arch_index", "epoch"])
    want = rows[rows.dataset == "digits"].sort_values(["arch_index", "epoch"])
    np.testing.assert_allclose(got.valid_acc.to_numpy(), want.valid_acc.to_numpy(), rtol=1e-6)
    file_schema = pq.read_schema(paths[1])
    assert file_schema.field("epoch").type == pa.int16()
    assert file_schema.field("valid_acc").type == pa.float32()
    assert "space" not in file_schema.names  # partition columns live in the folder names only
    kv = {k.decode(): v.decode() for k, v in file_schema.metadata.items()}
    assert kv["schema_version"] == S.SCHEMA_VERSION
    assert json.loads(kv["skeleton"]) == {"C": 16, "N": 5}
    assert kv["objective_column"] == "valid_acc" and kv["table"] == "epochs"
    assert json.loads(kv["partition"]) == {"space": "tss", "dataset": "digits", "hp": 12}
    assert "+" in kv["code_version"]
    assert not [p for p in _files(tmp_path) if p.name.endswith(".tmp")]


def test_missing_optional_columns_become_nulls_and_ints_are_cast(tmp_path):
    rows = pd.DataFrame({"space": ["tss"], "dataset": ["digits"], "hp": [12], "arch_index": [7.0],
                         "seed": [0], "epoch": [1], "valid_acc": [55.5]})
    (path,) = W.write_fragment(tmp_path, "epochs", rows, metadata={})
    tbl = pq.read_table(path)
    assert tbl["arch_index"].to_pylist() == [7]
    assert tbl["test_acc"].null_count == 1 and tbl["status"].null_count == 1


@pytest.mark.parametrize("change, message", [
    ({"epoch": [70000]}, "column 'epoch'"),
    ({"arch_index": [1.5]}, "column 'arch_index'"),
    ({"valid_acc": ["high"]}, "column 'valid_acc'"),
    ({"status": ["great"]}, "unknown status value(s) ['great']"),
    ({"valid_accuracy": [1.0]}, "no column(s) 'valid_accuracy'"),
    ({"seed": [None]}, "column 'seed' of 'epochs' is a key column"),
    ({"dataset": ["../escape"]}, "cannot be a partition folder name"),
    ({"dataset": ["digits", "x y"]}, "cannot be a partition folder name"),  # digits not written
])
def test_bad_rows_are_rejected_with_a_message_and_nothing_is_written(tmp_path, change, message):
    base = {"space": "tss", "dataset": "digits", "hp": 12, "arch_index": 1, "seed": 0,
            "epoch": 1, "valid_acc": 1.0, "status": "ok"}
    n = max(len(v) for v in change.values())
    with pytest.raises(UserError) as err:
        W.write_fragment(tmp_path, "epochs", pd.DataFrame({**base, **change}, index=range(n)),
                         metadata={})
    assert message in str(err.value)
    assert _files(tmp_path) == []


def test_bad_table_metadata_and_missing_key_column(tmp_path, epoch_rows):
    with pytest.raises(UserError, match="unknown table 'epoch'.*archs, epochs, runs"):
        W.write_fragment(tmp_path, "epoch", epoch_rows(), metadata={})
    with pytest.raises(UserError, match="lack the required column 'seed'"):
        W.write_fragment(tmp_path, "epochs", epoch_rows().drop(columns="seed"), metadata={})
    with pytest.raises(UserError, match="str -> str"):
        W.write_fragment(tmp_path, "epochs", epoch_rows(), metadata={"recipe": {"epochs": 12}})
    with pytest.raises(UserError, match="schema_version"):
        W.write_fragment(tmp_path, "epochs", epoch_rows(), metadata={"schema_version": "0.1"})
    with pytest.raises(UserError, match="DataFrame or a pyarrow Table"):
        W.write_fragment(tmp_path, "epochs", [{"space": "tss"}], metadata={})


def test_a_write_that_fails_midway_leaves_no_file(tmp_path, epoch_rows, monkeypatch):
    real = W.pq.write_table

    def write_then_fail(table, where, **kw):  # a disk-full / crash after some bytes hit the disk
        real(table, where, **kw)
        raise OSError("disk full")

    monkeypatch.setattr(W.pq, "write_table", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        W.write_fragment(tmp_path, "epochs", epoch_rows(), metadata={})
    assert _files(tmp_path) == []


def test_compact_keeps_the_last_written_row_per_key_and_removes_fragments(tmp_path, epoch_rows):
    W.write_fragment(tmp_path, "epochs", epoch_rows(archs=(0, 1)), metadata={})
    W.write_fragment(tmp_path, "epochs", epoch_rows(archs=(1, 2), offset=100), metadata={})
    W.write_fragment(tmp_path, "epochs", epoch_rows(dataset="other", archs=(5,)), metadata={})
    report = W.compact(tmp_path, "epochs")
    assert (report.partitions, report.compacted, report.fragments_merged) == (2, 1, 2)
    assert (report.rows_before, report.rows_after) == (12 + 4 * 12, 12 + 3 * 12)  # 1 dup arch
    (merged,) = S.list_fragments(tmp_path / "epochs/space=tss/dataset=digits/hp=12")
    tbl = pq.read_table(merged).to_pandas()
    by_arch = tbl[tbl.epoch == 12].set_index("arch_index").valid_acc
    np.testing.assert_allclose(by_arch.to_numpy(), [0.012, 101.012, 102.012], rtol=1e-6)
    assert W.compact(tmp_path).compacted == 0  # nothing left to do: no churn


def test_compact_merges_around_a_corrupt_fragment_and_reports_it(tmp_path, epoch_rows):
    W.write_fragment(tmp_path, "epochs", epoch_rows(archs=(0,)), metadata={})
    (good,) = W.write_fragment(tmp_path, "epochs", epoch_rows(archs=(1,)), metadata={})
    bad = good.parent / "part-00000000000000000001-bad.parquet"
    bad.write_bytes(good.read_bytes()[:100])  # truncated: a copy that was cut off
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = W.compact(tmp_path)
    assert report.bad_files == [bad] and bad.exists()
    assert any(str(bad) in str(w.message) for w in caught)
    assert report.rows_after == 24 and report.fragments_merged == 2


def test_compact_rejects_a_missing_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        W.compact(tmp_path / "nope")


def test_provenance_rejects_a_role_column_the_table_lacks():
    with pytest.raises(UserError, match="objective_column='accuracy'"):
        S.provenance("epochs", objective_column="accuracy")
    assert S.provenance("runs")["objective_column"] == "feedback"


# ------------------------------------------------------------------ concurrency (real processes)
N_WRITERS, N_FRAGMENTS = 3, 5


def _writer_process(root: str, worker: int) -> None:
    from conftest import make_epoch_rows
    for k in range(N_FRAGMENTS):
        arch = worker * 100 + k
        W.write_fragment(root, "epochs", make_epoch_rows(archs=(arch,), epochs=4),
                         metadata=S.provenance())


def _read_all(root: Path) -> pa.Table:
    """What a reader sees now: every finished fragment, re-listing if compaction removed one."""
    folder = root / "epochs/space=tss/dataset=digits/hp=12"
    for _ in range(20):
        try:
            parts = [W.read_fragment(p, "epochs") for p in S.list_fragments(folder)]
        except FileNotFoundError:
            continue
        tbl = pa.concat_tables(parts) if parts else S.data_schema("epochs").empty_table()
        return W.dedupe_keep_last(tbl, ["arch_index", "seed", "epoch"])
    raise AssertionError("the folder kept changing under the reader")


def test_concurrent_writer_processes_with_compaction_lose_nothing(tmp_path):
    ctx = mp.get_context("spawn")  # fork after pyarrow started its threads is unsafe
    procs = [ctx.Process(target=_writer_process, args=(str(tmp_path), w)) for w in range(N_WRITERS)]
    for p in procs:
        p.start()
    seen = 0
    while any(p.is_alive() for p in procs):
        # read_fragment raises UserError on a partial file: it must never see one
        now = _read_all(tmp_path).num_rows
        assert now >= seen, "rows disappeared while compacting"
        seen = now
        W.compact(tmp_path, "epochs")
    for p in procs:
        p.join()
        assert p.exitcode == 0
    W.compact(tmp_path)
    final = _read_all(tmp_path)
    want = {w * 100 + k for w in range(N_WRITERS) for k in range(N_FRAGMENTS)}
    assert set(final["arch_index"].to_pylist()) == want
    assert final.num_rows == len(want) * 4
    assert len(S.list_fragments(tmp_path / "epochs/space=tss/dataset=digits/hp=12")) == 1


def _same_key_writer(root: str, start: str, locked: bool, ready: str) -> None:
    """Write the same rows as every other such process, as soon as ``start`` exists (``ready``
    says this process is imported and waiting); the write itself is slowed so that every process
    has checked the store before any has written."""
    import contextlib
    import os
    import time

    from conftest import make_epoch_rows
    plain_write = W.write_fragment

    def slow_write(*args, **kwargs):
        time.sleep(0.3)
        return plain_write(*args, **kwargs)

    W.write_fragment = slow_write
    if not locked:  # the check-then-write race as it was, to show the test can tell
        W._partition_lock = lambda folder: contextlib.nullcontext()
    Path(ready).touch()
    while not os.path.exists(start):
        time.sleep(0.001)
    W.write_new_rows(root, "epochs", make_epoch_rows(archs=(7,), epochs=3), metadata=S.provenance())


@pytest.mark.parametrize("locked", [True, False])
def test_writers_of_one_key_at_once_write_it_once_under_the_partition_lock(tmp_path, locked):
    ctx = mp.get_context("spawn")
    for attempt in range(3):
        root, start = tmp_path / f"store{attempt}", tmp_path / f"start{attempt}"
        ready = [tmp_path / f"ready{attempt}-{k}" for k in range(3)]
        procs = [ctx.Process(target=_same_key_writer, args=(str(root), str(start), locked, str(r))) for r in ready]
        for proc in procs:
            proc.start()
        while not all(r.exists() for r in ready):  # every process imported and waiting: start them at once
            assert all(proc.is_alive() for proc in procs)
            time.sleep(0.01)
        start.touch()
        for proc in procs:
            proc.join()
            assert proc.exitcode == 0
        raw = pd.read_parquet(root / "epochs")  # any Parquet reader, not only ours: no key twice
        if locked:
            assert len(raw) == 3 and not raw.duplicated(["arch_index", "seed", "epoch"]).any()
        else:
            assert len(raw) == 9  # each process found the key missing and wrote it
    # the reader's key rule still makes one row of each, lock or not
    assert len(_read_all(root)) == 3


def test_write_new_rows_writes_only_the_missing_keys_in_the_rows_order(tmp_path, epoch_rows):
    meta = S.provenance()
    assert W.write_new_rows(tmp_path, "epochs", epoch_rows(archs=(3, 1), epochs=2), metadata=meta) == 4
    more = epoch_rows(archs=(5, 3, 2), epochs=3)
    assert W.write_new_rows(tmp_path, "epochs", more, metadata=meta) == 3 + 1 + 3
    assert W.write_new_rows(tmp_path, "epochs", more, metadata=meta) == 0
    newest = max(S.list_fragments(tmp_path / "epochs/space=tss/dataset=digits/hp=12"))
    got = W.read_fragment(newest, "epochs", columns=["arch_index", "epoch"]).to_pandas()
    assert list(zip(got["arch_index"], got["epoch"])) == [(5, 1), (5, 2), (5, 3), (3, 3), (2, 1), (2, 2), (2, 3)]
    with pytest.raises(UserError):
        W.write_new_rows(tmp_path, "epochs", more.drop(columns=["seed"]), metadata=meta)


_DOC_TYPES = {pa.string(): "string", pa.int16(): "int16", pa.int32(): "int32", pa.float32(): "float32",
              pa.float64(): "float64", pa.bool_(): "bool"}


def _doc_table(text: str, table: str) -> list[list[str]]:
    """The rows of the column table under ``### `table` `` in docs/SCHEMA.md, cells unescaped."""
    section = text.split(f"### `{table}`\n", 1)[1].split("\n### ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    cells = [[c.strip() for c in row.replace("\\|", "\0").strip("|").split("|")] for row in rows]
    return [[c.replace("\0", "|").replace("`", "") for c in row] for row in cells]


def test_docs_schema_md_documents_every_column_as_the_schema_defines_it():
    text = (Path(__file__).resolve().parent.parent / "docs" / "SCHEMA.md").read_text()
    for table, schema in S.SCHEMAS.items():
        assert f"### `{table}`" in text
        want = [[f.name, _DOC_TYPES[f.type], "yes" if f.nullable else "no", S.COLUMN_DOCS[table][f.name]]
                for f in schema]
        assert _doc_table(text, table) == want, f"docs/SCHEMA.md's {table} table differs from schema.py"
        keys, parts = S.KEY_COLUMNS[table], S.PARTITION_COLUMNS[table]
        assert f"Partitioned by ({', '.join(parts)}); key ({', '.join(keys)})." in text
    for values in S.ALLOWED_VALUES.values():
        for allowed in values.values():
            for value in allowed:
                assert f"`{value}`" in text


def test_runs_files_record_the_searched_benchmark_skeleton_and_fingerprint(tmp_path):
    meta = S.provenance("runs", skeleton={"C": 16, "N": 5}, dataset_fingerprint="sha256:ab12")
    rows = pd.DataFrame({"experiment": ["e1"], "searcher": ["random"], "run_seed": [0],
                         "event": [0], "feedback": [91.5]})
    (path,) = W.write_fragment(tmp_path, "runs", rows, metadata=meta)
    kv = {k.decode(): v.decode() for k, v in pq.read_schema(path).metadata.items()}
    assert json.loads(kv["skeleton"]) == {"C": 16, "N": 5}
    assert kv["dataset_fingerprint"] == "sha256:ab12" and kv["objective_column"] == "feedback"
    with pytest.raises(UserError, match="dataset_fingerprint must be a string .* got 123"):
        S.provenance("runs", dataset_fingerprint=123)
    with pytest.raises(UserError, match="skeleton must be a dict .* got str"):
        S.provenance("runs", skeleton="C16N5")


def test_benchmark_dataset_fingerprint_reads_the_epochs_files(tmp_path, epoch_rows):
    from benchmark_data.reader import Benchmark
    W.write_fragment(tmp_path, "epochs", epoch_rows(), metadata=S.provenance(dataset_fingerprint="fp-a"))
    W.write_fragment(tmp_path, "epochs", epoch_rows(hp=200, epochs=2),
                     metadata=S.provenance(dataset_fingerprint="fp-a"))
    W.write_fragment(tmp_path, "epochs", epoch_rows(dataset="cifar10"), metadata=S.provenance())
    bench = Benchmark.open(tmp_path)
    assert bench.dataset_fingerprint("tss", "digits") == "fp-a"
    assert bench.dataset_fingerprint("tss", "cifar10") == ""  # recorded by nobody
    W.write_fragment(tmp_path, "epochs", epoch_rows(hp=200, epochs=2),
                     metadata=S.provenance(dataset_fingerprint="fp-b"))
    W.compact(tmp_path)  # the merged file keeps both variants: the disagreement is not lost
    bench = Benchmark.open(tmp_path)
    assert bench.dataset_fingerprint("tss", "digits", hp=12) == "fp-a"
    with pytest.raises(UserError, match="tss/digits record different dataset fingerprints: "
                                        "fp-a .*; fp-b .*pass hp= to pick one"):
        bench.dataset_fingerprint("tss", "digits")
    with pytest.raises(UserError, match="dataset 'mnist' is not in the store"):
        bench.dataset_fingerprint("tss", "mnist")


# --- schema 1.3: the trials table, runs.clock, and older runs files --------------------------------
def _trial_rows(experiment: str = "live1", n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "experiment": experiment, "searcher": "rea", "space": "tss", "dataset": "digits", "hp": 12,
        "run_seed": 0, "event": range(n), "trial_id": [f"t{i}" for i in range(n)],
        "arch_index": [5, 6, 7][:n], "fidelity": None, "epochs": 12, "feedback": [80.0, 81.5, 79.0][:n],
        "test_acc": 78.0, "train_time_s": 3.5, "trial_time_s": 4.0, "status": ["ok", "stopped", "error"][:n]})


def test_trials_rows_are_written_per_experiment_and_read_back_with_their_types(tmp_path):
    meta = S.provenance("trials", recipe={"name": "h0"}, extra={"settings": "{}"})
    assert (meta["objective_column"], meta["fidelity_column"], meta["time_column"]) == \
        ("feedback", "epochs", "train_time_s")
    (path,) = W.write_fragment(tmp_path, "trials", _trial_rows(), metadata=meta)
    assert path.parent == tmp_path / "trials" / "experiment=live1" and path.name.startswith("part-")
    back = W.read_fragment(path, "trials")
    assert back.schema.field("epochs").type == pa.int16() and back["fidelity"].null_count == 3
    assert back["status"].to_pylist() == ["ok", "stopped", "error"]
    assert pd.read_parquet(tmp_path / "trials")["experiment"].astype(str).tolist() == ["live1"] * 3
    # a second write of one trial (a resumed run) wins over the first after compaction
    again = _trial_rows(n=1).assign(feedback=90.0)
    W.write_fragment(tmp_path, "trials", again, metadata=meta)
    W.compact(tmp_path, "trials")
    (merged,) = S.list_fragments(tmp_path / "trials" / "experiment=live1")
    assert W.read_fragment(merged, "trials")["feedback"].to_pylist() == [90.0, 81.5, 79.0]


@pytest.mark.parametrize("table, rows, message", [
    ("trials", _trial_rows(n=1).assign(status="done"),
     "unknown status value(s) ['done']; allowed: ok, stopped, error, unfinished"),
    ("trials", _trial_rows(n=1).drop(columns="event"), "lack the required column 'event'"),
    ("runs", pd.DataFrame({"experiment": ["e"], "searcher": ["random"], "run_seed": [0], "event": [0],
                           "clock": ["cpu"]}),
     "unknown clock value(s) ['cpu']; allowed: simulated, wall"),
])
def test_bad_trials_and_clock_values_are_refused(tmp_path, table, rows, message):
    with pytest.raises(UserError) as err:
        W.write_fragment(tmp_path, table, rows, metadata=S.provenance(table))
    assert message in str(err.value)
    assert _files(tmp_path) == []


def _runs_rows(experiment: str, n: int = 3, **extra) -> pd.DataFrame:
    return pd.DataFrame({"experiment": experiment, "searcher": "gdas", "run_seed": 0, "event": range(n),
                         "sim_time_s": [10.0, 20.0, 30.0][:n], "wall_time_s": [10.0, 20.0, 30.0][:n],
                         "feedback": 90.0, **extra})


def _write_1_2(root: Path, experiment: str, recipe: dict, monkeypatch) -> Path:
    """A runs file as schema 1.2 wrote it: the writer itself, with 1.2's runs schema and version."""
    old = pa.schema([f for f in S.SCHEMAS["runs"] if f.name != "clock"])
    with monkeypatch.context() as m:
        m.setattr(S, "SCHEMA_VERSION", "1.2")
        m.setitem(S.SCHEMAS, "runs", old)
        (path,) = W.write_fragment(root, "runs", _runs_rows(experiment), metadata=S.provenance("runs", recipe=recipe))
    file_schema = pq.read_schema(path)
    assert "clock" not in file_schema.names and file_schema.metadata[b"schema_version"] == b"1.2"
    return path


def test_runs_files_before_1_3_read_back_with_the_clock_they_ran_on(tmp_path, monkeypatch):
    from benchmark_data.reader import Benchmark

    _write_1_2(tmp_path, "sim", {"feedback": "cifar10-valid", "feedback_hp": 12}, monkeypatch)
    _write_1_2(tmp_path, "os", {"search": "oneshot", "epochs": 3}, monkeypatch)
    bench = Benchmark.open(tmp_path)
    sim, oneshot = bench.runs("sim"), bench.runs("os")
    assert sim["clock"].tolist() == ["simulated"] * 3 and sim["sim_time_s"].tolist() == [10.0, 20.0, 30.0]
    # one-shot rows held the search's wall time in sim_time_s too: no simulated clock ran
    assert oneshot["clock"].tolist() == ["wall"] * 3 and oneshot["sim_time_s"].isna().all()
    assert oneshot["wall_time_s"].tolist() == [10.0, 20.0, 30.0]
    assert list(bench.runs().columns) == S.SCHEMAS["runs"].names


def test_compacting_old_and_new_runs_files_keeps_each_rows_clock(tmp_path, monkeypatch):
    _write_1_2(tmp_path, "os", {"search": "oneshot", "epochs": 3}, monkeypatch)
    # a 1.3 writer resuming the experiment: its rows say their clock themselves
    newer = _runs_rows("os", n=1).assign(event=3, clock="wall", sim_time_s=None)
    W.write_fragment(tmp_path, "runs", newer, metadata=S.provenance("runs", recipe={"search": "oneshot"}))
    W.compact(tmp_path, "runs")
    (merged,) = S.list_fragments(tmp_path / "runs" / "experiment=os")
    tbl = pq.read_table(merged)  # as stored, not through the reader
    assert tbl["clock"].to_pylist() == ["wall"] * 4 and tbl["sim_time_s"].null_count == 4


def test_upgrade_fills_only_missing_clocks_and_leaves_other_tables_alone():
    meta = {b"recipe": b'{"search": "oneshot"}'}
    rows = W.conform("runs", _runs_rows("e", n=2, clock=["simulated", None]), stored=True)
    out = S.upgrade("runs", rows.replace_schema_metadata(meta))
    assert out["clock"].to_pylist() == ["simulated", "wall"]
    assert out["sim_time_s"].to_pylist() == [10.0, None]  # only the upgraded row loses it
    written = W.conform("runs", _runs_rows("e", n=1, clock="simulated"), stored=True)
    kept = S.upgrade("runs", written.replace_schema_metadata(meta))  # a value written is the truth
    assert kept["clock"].to_pylist() == ["simulated"] and kept["sim_time_s"].to_pylist() == [10.0]
    just_ids = W.conform("runs", _runs_rows("e", n=1), stored=True, columns=["event"])
    assert S.upgrade("runs", just_ids).equals(just_ids)  # a read that did not ask for clock
    trials = W.conform("trials", _trial_rows(), stored=True)
    assert S.upgrade("trials", trials).equals(trials)
    with pytest.raises(UserError, match="unknown table 'run'"):
        S.upgrade("run", rows)
