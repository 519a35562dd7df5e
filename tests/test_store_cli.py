"""``python -m benchmark_data``: real subprocesses for the exit-status contract, in-process
calls for the rest (each subprocess costs about a second of imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
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
    out = _cli("query", "--store", str(store), "--arch", arch, "--epoch", "3", "--seed", "1")
    assert out.returncode == 0, out.stderr
    assert f"arch: 1 {arch}" in out.stdout
    assert "valid_acc: 1.103\n" in out.stdout  # space, dataset and hp: the store's only ones
    assert "space: tss  dataset: digits  hp: 12  epoch: 3  seed: 1" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["query", "--store", "{missing}", "--arch", "1"], "store folder {missing} does not exist"),
    (["query", "--store", "{store}", "--dataset", "mnist", "--arch", "1"],
     "dataset 'mnist' is not in the store for space 'tss'; it has: digits"),
    (["query", "--store", "{store}", "--arch", "|nor_conv_3x3~0|"], "tss: '|nor_conv_3x3~0|'"),
    (["query", "--store", "{store}", "--space", "nas101", "--arch", "1"],
     "argument --space: invalid choice: 'nas101' (choose from 'tss', 'sss')"),
    (["query", "--store", "{store}", "--space", "sss", "--arch", "1"],
     "space 'sss' is not in the store"),
    (["query", "--store", "{store}", "--hp", "200", "--arch", "1"],
     "hp=200 is not in the store for tss/digits; it has hp 12"),
    # the store as a positional, as before --store: said how to write it
    (["info", "{store}"], "the store is given with --store now: write `python -m benchmark_data "
                          "info --store {store} ...` instead of a bare {store}"),
    (["query", "{store}", "--arch", "1"], "write `python -m benchmark_data query --store {store} ...`"),
    (["compact", "{store}"], "write `python -m benchmark_data compact --store {store} ...`"),
    (["compact"], "the following arguments are required: --store; run 'python -m benchmark_data "
                  "compact --help' for usage"),
    (["compact", "--store", "embedded"], "--store embedded: this command writes"),
    (["compact", "--store", "{store}", "--table", "epoch"], "argument --table: invalid choice: 'epoch'"),
    (["nonsense"], "argument COMMAND: invalid choice: 'nonsense'"),
])
def test_bad_input_exits_2_with_one_error_line(store, tmp_path, args, message):
    fill = {"store": str(store), "missing": str(tmp_path / "missing")}
    out = _cli(*[a.format(**fill) for a in args])
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and message.format(**fill) in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_info_lists_partitions_rows_seeds_and_provenance(store, capsys):
    assert _run(["info", "--store", str(store)]) == 0
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
        assert _run(["info", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "6/15625 archs" in out and f"bad files: 1\n  {bad}" in out


def test_compact_then_query_sees_the_last_written_row(store, capsys):
    assert _run(["compact", "--store", str(store)]) == 0
    assert "1 compacted, 2 fragment(s) merged, 156 -> 144 rows (12 duplicate(s) dropped)" in \
        capsys.readouterr().out
    assert _run(["query", "--store", str(store), "--dataset", "digits", "--arch", "5", "--seed", "0"]) == 0
    assert "valid_acc: 105.012\n" in capsys.readouterr().out


def test_bad_options_and_delegation_errors(store, tmp_path, capsys):
    assert _run(["query", "--store", str(store), "--arch", "99999"]) == 2
    assert "out of range 0..15624" in capsys.readouterr().err
    assert _run(["info", "--store", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert _run(["compact", "--store", str(tmp_path / "missing")]) == 2
    assert f"error: store folder {tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    assert _run(["query", "--store", str(store), "--arch", "1", "--seed", "x"]) == 2
    assert "error: --seed 'x': give an int, 'mean' or 'random'" in capsys.readouterr().err
    assert _run(["query", "--store", str(store)]) == 2
    assert "required: --arch" in capsys.readouterr().err
    assert _run(["import", "--space", "xyz"]) == 2  # handed to the importer's own parser
    assert "error: argument --space: invalid choice: 'xyz'" in capsys.readouterr().err
    assert _run(["build", "--store", str(tmp_path / "s"), "--workers", "x"]) == 2  # the builder's
    assert "error: argument --workers: invalid int value: 'x'" in capsys.readouterr().err


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

    info = _cli("info", "--store", str(tmp_path))
    assert info.returncode == 0, info.stderr
    assert "space=tss dataset=digits hp=12: 1 file(s), 36 row(s), 3/15625 archs" in info.stdout
    assert "space=tss dataset=digits hp=200: 0 file(s), 0 row(s) - not usable: no readable rows" \
        in info.stdout
    assert "bad files: 2\n" in info.stdout
    assert f"  {foreign}\n    why: file {foreign} is not a 'epochs' fragment: it lacks the " \
           "column(s) arch_index, seed, epoch (its columns: name, score)" in info.stdout
    assert f"  {cut}\n    why: corrupt or truncated Parquet file {cut}" in info.stdout
    assert "Traceback" not in info.stderr

    ok = _cli("query", "--store", str(tmp_path), "--dataset", "digits", "--arch", "2")
    assert ok.returncode == 0 and "valid_acc: 2.012\n" in ok.stdout, ok.stderr
    assert f"skipping {foreign}" in ok.stderr and "Traceback" not in ok.stderr

    for args, message in (
            (["--dataset", "digits", "--hp", "200"],
             f"error: epochs partition space=tss/dataset=digits/hp=200 has no readable rows: its "
             f"file(s) {foreign} are damaged (file {foreign} is not a 'epochs' fragment"),
            (["--dataset", "cifar10"],
             # no --hp: the one it would pick, like the dataset, cannot be read
             f"error: dataset 'cifar10' of space 'tss' cannot be used: epochs partition "
             f"space=tss/dataset=cifar10/hp=12 has no readable rows: its "
             f"file(s) {cut} are damaged (corrupt or truncated Parquet file")):
        bad = _cli("query", "--store", str(tmp_path), "--arch", "1", *args)
        assert bad.returncode == 2 and bad.stdout == ""
        assert message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


# --- --store embedded, inferred --space/--dataset/--hp -----------------------------------------
def test_info_and_query_read_the_embedded_benchmark_by_default(capsys):
    from benchmark_data.cli import EMBEDDED_ROOT
    assert _run(["info"]) == 0
    assert f"store: {EMBEDDED_ROOT}\n" in capsys.readouterr().out
    # two spaces (tss, and the sss table): the space is asked for; dataset and hp are inferred
    assert _run(["query", "--space", "tss", "--arch", "1234"]) == 0  # digits at hp 12 (and hp 48)
    default = capsys.readouterr().out
    assert "space: tss  dataset: digits  hp: 12  epoch: 12  seed: mean" in default
    assert _run(["query", "--store", "embedded", "--space", "tss", "--arch", "1234"]) == 0
    assert capsys.readouterr().out == default


def _store_of(root, *partitions, epoch_rows):
    for dataset, hp in partitions:
        W.write_fragment(root, "epochs", epoch_rows(dataset=dataset, hp=hp, archs=(0, 1), epochs=2),
                         metadata=S.provenance())
    return root


def test_query_infers_the_dataset_but_not_among_several(tmp_path, epoch_rows, capsys):
    """The reader's one rule (``Benchmark.choose_dataset``): cifar10 when present, else the only
    dataset, cifar10-valid beside cifar10 not counting; else an error listing them."""
    two = _store_of(tmp_path / "two", ("digits", 12), ("cifar100", 12), epoch_rows=epoch_rows)
    assert _run(["query", "--store", str(two), "--arch", "1"]) == 2
    assert f"error: the benchmark at {two} holds several datasets for space tss (cifar100, " \
           "digits); choose one with --dataset" in capsys.readouterr().err
    assert _run(["query", "--store", str(two), "--dataset", "cifar100", "--arch", "1"]) == 0
    assert "dataset: cifar100" in capsys.readouterr().out
    # cifar10-valid is cifar10's validation twin: a store of the two counts as one dataset
    twin = _store_of(tmp_path / "twin", ("cifar10", 12), ("cifar10-valid", 12), epoch_rows=epoch_rows)
    assert _run(["query", "--store", str(twin), "--arch", "1"]) == 0
    assert "dataset: cifar10  hp: 12" in capsys.readouterr().out


def test_query_infers_the_hp_its_only_one_else_12_else_lists_them(tmp_path, epoch_rows, capsys):
    only = _store_of(tmp_path / "only", ("digits", 200), epoch_rows=epoch_rows)
    assert _run(["query", "--store", str(only), "--arch", "1"]) == 0
    assert "hp: 200  epoch: 2" in capsys.readouterr().out
    twelve = _store_of(tmp_path / "twelve", ("digits", 200), ("digits", 12), epoch_rows=epoch_rows)
    assert _run(["query", "--store", str(twelve), "--arch", "1"]) == 0
    assert "hp: 12  epoch: 2" in capsys.readouterr().out
    neither = _store_of(tmp_path / "neither", ("digits", 200), ("digits", 90), epoch_rows=epoch_rows)
    assert _run(["query", "--store", str(neither), "--arch", "1"]) == 2
    assert f"error: the store {neither} holds tss/digits at hp 90, 200; choose one with --hp" in \
        capsys.readouterr().err
    assert _run(["query", "--store", str(neither), "--hp", "90", "--arch", "1"]) == 0


def test_query_infers_the_space_but_not_among_several(tmp_path, epoch_rows, capsys):
    root = _store_of(tmp_path, ("digits", 12), epoch_rows=epoch_rows)
    W.write_fragment(root, "epochs", epoch_rows(space="sss", archs=(0,), epochs=1),
                     metadata=S.provenance())
    assert _run(["query", "--store", str(root), "--arch", "1"]) == 2
    assert "holds 2 spaces: sss, tss; choose one with --space" in capsys.readouterr().err
    assert _run(["query", "--store", str(root), "--space", "sss", "--arch", "0"]) == 0
    assert "arch: 0 8:8:8:8:8" in capsys.readouterr().out


# --- help, errors, pipes ------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["info", "query", "compact", "import", "build"])
def test_every_subcommand_help_lists_each_flag_with_its_default(command, capsys):
    """Each flag of each subcommand appears in its --help, and each one that has a default says
    it (a flag without one is a switch, required, or says what happens when it is not given)."""
    import argparse

    from benchmark_data import __main__, importers
    from trainables import builder
    parsers = {"import": importers._parser(), "build": builder._parser()}
    if command not in parsers:
        sub = next(a for a in __main__._parser()._actions if isinstance(a, argparse._SubParsersAction))
        parsers[command] = sub.choices[command]
    assert _run([command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"usage: python -m benchmark_data {command}" in out and "--store PATH" in out
    for action in parsers[command]._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or action.dest == "help":
            continue
        assert action.option_strings[0] in out
        text = " ".join(parsers[command]._get_formatter()._expand_help(action).split())
        if isinstance(action, argparse._StoreTrueAction):
            continue
        assert "default" in text or action.required or "required" in text, (action.dest, text)
        if action.default is not None:
            assert str(action.default) in text, (action.dest, text)


def test_run_cli_prints_user_errors_and_returns_statuses(capsys):
    from benchmark_data.cli import run_cli
    from spaces.errors import UserError

    def bad(argv):
        raise UserError(f"what was wrong: {argv[0]}")
    assert run_cli(bad, ["x"]) == 2
    assert capsys.readouterr().err == "error: what was wrong: x\n"
    assert run_cli(lambda argv: None, []) == 0 and run_cli(lambda argv: 3, []) == 3
    assert run_cli(lambda argv: sys.exit(0), []) == 0


def test_output_piped_into_head_ends_without_a_traceback(tmp_path, epoch_rows):
    """`info | head -1` on a store whose listing is far longer than a pipe holds: head exits
    after one line, so info's next write meets a closed pipe; it ends quietly with status 141."""
    import shutil
    (part,) = W.write_fragment(tmp_path, "runs", pd.DataFrame({
        "experiment": ["e"], "searcher": ["random"], "run_seed": [0], "event": [0]}),
        metadata=S.provenance("runs"))
    for i in range(800):  # ~240 bytes of listing each: ~190 KB, three times a pipe's 64 KiB
        folder = tmp_path / "runs" / f"experiment={'x' * 200}{i:04d}"
        folder.mkdir()
        shutil.copy(part, folder / part.name)
    cmd = f"set -o pipefail; {sys.executable} -m benchmark_data info --store {tmp_path} | head -1"
    out = subprocess.run(["bash", "-c", cmd], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout == f"store: {tmp_path}\n"
    assert out.stderr == "" and out.returncode == 141


def test_an_imported_table_through_the_cli_queries_with_gaps_as_n_a(tmp_path, capsys):
    """The README's import-then-query: one aggregate value per architecture; the metrics the
    table does not have print as n/a, not as numbers."""
    from nats_fixtures import write_table
    csv = write_table(tmp_path / "t.csv", num_archs=3)
    assert _run(["import", str(csv), "--store", str(tmp_path / "s"), "--dataset", "cifar10",
                 "--hp", "200"]) == 0
    capsys.readouterr()
    first_arch = csv.read_text().split("\n")[1].split(",")[1]
    assert _run(["query", "--store", str(tmp_path / "s"), "--arch", first_arch]) == 0
    out = capsys.readouterr().out
    assert "dataset: cifar10  hp: 200  epoch: 200" in out and "test_acc: 80\n" in out
    assert "valid_acc: n/a\n" in out and "latency_ms: n/a\n" in out and "nan" not in out
