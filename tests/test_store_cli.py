"""``python -m benchmark_data``: real subprocesses for the exit-status contract, in-process
calls for the rest (each subprocess costs about a second of imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmark_data import schema as S
from benchmark_data import writer as W
from benchmark_data.__main__ import _run

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path, epoch_rows):
    meta = S.provenance(recipe={"name": "H0", "epochs": 12})
    W.write_fragment(tmp_path, "epochs", epoch_rows(archs=range(6), seeds=(0, 1)), metadata=meta)
    W.write_fragment(tmp_path, "epochs", epoch_rows(archs=(5,), offset=100), metadata=meta)
    return tmp_path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark_data", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_query_through_a_subprocess_prints_metrics(store):
    arch = "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"  # project index 1
    out = _cli("query", str(store), "--dataset", "digits", "--arch", arch, "--epoch", "3",
               "--seed", "1")
    assert out.returncode == 0, out.stderr
    assert f"arch: 1 {arch}" in out.stdout
    assert "valid_acc: 1.103\n" in out.stdout and "epoch: 3" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["query", "{missing}", "--dataset", "digits", "--arch", "1"], "store folder {missing} does not exist"),
    (["query", "{store}", "--dataset", "mnist", "--arch", "1"], "dataset 'mnist' is not in the store for space 'tss'; it has: digits"),
    (["query", "{store}", "--dataset", "digits", "--arch", "|nor_conv_3x3~0|"], "tss: '|nor_conv_3x3~0|'"),
])
def test_bad_input_exits_2_with_one_error_line(store, tmp_path, args, message):
    fill = {"store": str(store), "missing": str(tmp_path / "missing")}
    out = _cli(*[a.format(**fill) for a in args])
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and message.format(**fill) in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_info_lists_partitions_rows_seeds_and_provenance(store, capsys):
    assert _run(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "space=tss dataset=digits hp=12: 2 file(s), 156 row(s), 6/15625 archs, seeds [0, 1], " \
           "epochs 1..12" in out
    assert 'recipe: {"epochs": 12, "name": "H0"}' in out
    assert f"schema_version: {S.SCHEMA_VERSION}" in out and "bad files: 0" in out


def test_info_reports_a_corrupt_file_and_still_lists_the_rest(store, capsys):
    folder = store / "epochs/space=tss/dataset=digits/hp=12"
    bad = folder / "part-00000000000000000001-x.parquet"
    bad.write_bytes(b"PAR1 truncated")
    with pytest.warns(UserWarning):
        assert _run(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "6/15625 archs" in out and f"bad files: 1\n  {bad}" in out


def test_compact_then_query_sees_the_last_written_row(store, capsys):
    assert _run(["compact", str(store)]) == 0
    assert "1 compacted, 2 fragment(s) merged, 156 -> 144 rows (12 duplicate(s) dropped)" in \
        capsys.readouterr().out
    assert _run(["query", str(store), "--dataset", "digits", "--arch", "5", "--seed", "0"]) == 0
    assert "valid_acc: 105.012\n" in capsys.readouterr().out


def test_bad_options_and_delegation_errors(store, tmp_path, capsys):
    assert _run(["query", str(store), "--dataset", "digits", "--arch", "99999"]) == 2
    assert "out of range 0..15624" in capsys.readouterr().err
    assert _run(["info", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert _run(["query", str(store), "--dataset", "digits", "--arch", "1", "--seed", "x"]) == 2
    assert "error: --seed 'x': give an int, 'mean' or 'random'" in capsys.readouterr().err
    assert _run(["query", str(store), "--dataset", "digits"]) == 2
    assert "required: --arch" in capsys.readouterr().err
    assert _run(["compact", str(store), "--table", "epoch"]) == 2
    assert "unknown table 'epoch'" in capsys.readouterr().err
    assert _run(["import", "--space", "xyz"]) == 2  # handed to the importer's own parser
    assert "error: " in capsys.readouterr().err


def test_damaged_partitions_through_the_cli(tmp_path, epoch_rows):
    """A foreign and a truncated Parquet file: `info` names them and exits 0; a query that does
    not need their partitions works (warnings only); one that needs them exits 2 naming them."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    (good,) = W.write_fragment(tmp_path, "epochs", epoch_rows(archs=range(3)),
                               metadata=S.provenance())
    foreign = tmp_path / "epochs/space=tss/dataset=digits/hp=200/part-00000000000000000002-x.parquet"
    foreign.parent.mkdir(parents=True)
    pq.write_table(pa.table({"name": ["a"], "score": [1.0]}), foreign)
    (cut,) = W.write_fragment(tmp_path, "epochs", epoch_rows(dataset="cifar10"),
                              metadata=S.provenance())
    cut.write_bytes(cut.read_bytes()[:200])

    info = _cli("info", str(tmp_path))
    assert info.returncode == 0, info.stderr
    assert "space=tss dataset=digits hp=12: 1 file(s), 36 row(s), 3/15625 archs" in info.stdout
    assert "space=tss dataset=digits hp=200: 0 file(s), 0 row(s) - not usable: no readable rows" \
        in info.stdout
    assert "bad files: 2\n" in info.stdout
    assert f"  {foreign}\n    why: file {foreign} is not a 'epochs' fragment: it lacks the " \
           "column(s) arch_index, seed, epoch (its columns: name, score)" in info.stdout
    assert f"  {cut}\n    why: corrupt or truncated Parquet file {cut}" in info.stdout
    assert "Traceback" not in info.stderr

    ok = _cli("query", str(tmp_path), "--dataset", "digits", "--arch", "2")
    assert ok.returncode == 0 and "valid_acc: 2.012\n" in ok.stdout, ok.stderr
    assert f"skipping {foreign}" in ok.stderr and "Traceback" not in ok.stderr

    for args, message in (
            (["--dataset", "digits", "--hp", "200"],
             f"error: epochs partition space=tss/dataset=digits/hp=200 has no readable rows: its "
             f"file(s) {foreign} are damaged (file {foreign} is not a 'epochs' fragment"),
            (["--dataset", "cifar10"],
             f"error: epochs partition space=tss/dataset=cifar10/hp=12 has no readable rows: its "
             f"file(s) {cut} are damaged (corrupt or truncated Parquet file")):
        bad = _cli("query", str(tmp_path), "--arch", "1", *args)
        assert bad.returncode == 2 and bad.stdout == ""
        assert message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
