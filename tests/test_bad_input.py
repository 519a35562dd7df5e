"""Bad input a user can give, through the command lines, as docs/BAD_INPUT.md lists it.

Each test gives one kind of bad input to the real command (in-process through ``cli_fixtures``,
which returns the exit status a shell sees) and checks the one ``error: ...`` line and status 2:
damaged or foreign Parquet files in a store, a run log and a results folder; a truncated dataset
archive, a checksum that does not match, a pickle that would run code; over-long values; cluster
addresses; an experiment's damaged saved flags. The rows of docs/BAD_INPUT.md that other test
files cover name those tests.
"""

from __future__ import annotations

import bz2
import gzip
import os
import pickle
import shutil
import signal
import socket
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_fixtures import captured, orchestrate_cli, store_cli
from test_data import _cifar_members, _write_fashion, _write_folder, _write_tar
from test_resume import SIM, start, started

from nats_fixtures import write_archive
from trainables.data import cifar

LONG = "x" * 100_000  # a pasted file's worth: a shell passes up to 128 kB in one argument
PARTITION = "epochs/space=tss/dataset=digits/hp=12"


def one_error_line(code: int, out: str, err: str, message: str) -> None:
    """Status 2, nothing on stdout, and ``message`` in the last stderr line (an ``error:`` line)."""
    assert code == 2, (code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert ("error: " in last) and message in last, last[:2000]


def write_bad_parquet(path: Path, kind: str) -> Path:
    """Random bytes under a .parquet name, or a valid Parquet file of a table that is not ours."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "corrupt":
        path.write_bytes(os.urandom(4096))
    else:
        pq.write_table(pa.table({"name": ["a", "b"], "score": [1.0, 2.0]}), path)
    return path


WHY = {"corrupt": "corrupt or truncated Parquet file {bad}: ",
       "foreign": "file {bad} is not a 'epochs' fragment: it lacks the column(s) arch_index, seed, epoch (its "
                  "columns: name, score)"}


# --- Parquet: a store, a run log, a results folder --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["corrupt", "foreign"])
def test_a_store_whose_only_file_is_corrupt_or_foreign_is_refused_naming_it(tmp_path, kind):
    bad = write_bad_parquet(tmp_path / "store" / PARTITION / "part-00000000000000000001-x.parquet", kind)
    with pytest.warns(UserWarning, match=f"skipping {bad}"):  # the reader's word for a file it cannot use
        code, out, err = orchestrate_cli("simulate", "--store", tmp_path / "store", "--out", tmp_path / "out",
                                         "--quiet")
    one_error_line(code, out, err, f"of the store {tmp_path / 'store'} cannot be used")
    assert f"its file(s) {bad} are damaged ({WHY[kind].format(bad=bad)}" in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """An OUT folder holding one interrupted simulated comparison ('cut'): started, then killed."""
    out = tmp_path_factory.mktemp("interrupted")
    proc = start(out, "--experiment", "cut")
    started(out / "simulate")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    for made in (out / "simulate" / "cut").glob("runs-*.parquet"):  # runs it finished: not needed here
        made.unlink()
    return out


def copy_of(interrupted: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(interrupted, tmp_path / "out"))


def test_a_run_log_fragment_that_is_corrupt_or_foreign_is_refused_and_resume_works_without_it(interrupted, tmp_path):
    out = copy_of(interrupted, tmp_path)
    resume = (*SIM, "--out", out, "--experiment", "cut", "--resume")
    for kind, why in (("corrupt", "ArrowInvalid"), ("foreign", "no list of runs in its metadata")):
        bad = write_bad_parquet(out / "simulate" / "cut" / "runs-00000000000000000001-0000abcd.parquet", kind)
        one_error_line(*orchestrate_cli(*resume), f"{bad} is not a fragment of finished runs this log wrote ({why}")
        assert "delete it and --resume again: the runs it held run again" in orchestrate_cli(*resume)[2]
    bad.unlink()  # what the message says to do
    code, _, err = orchestrate_cli(*resume)
    assert code == 0, err
    assert len(pq.read_table(out / "runs" / "experiment=cut").group_by("run_seed").aggregate([])) == 500


@pytest.mark.parametrize("kind", ["corrupt", "foreign"])
def test_a_results_file_that_is_corrupt_or_foreign_is_refused_by_the_report(tmp_path, kind):
    from benchmark_data.cli import run_cli
    from orchestrator.report.__main__ import main as report_main

    bad = write_bad_parquet(tmp_path / "results" / "runs" / "experiment=e" / "part-1.parquet", kind)
    code, out, err = captured(lambda argv: run_cli(report_main, argv), tmp_path / "results", "--out", tmp_path / "r")
    why = {"corrupt": f"corrupt or truncated Parquet file {bad}: ",
           "foreign": f"file {bad} does not match the 'runs' schema: table 'runs' has no column(s) 'name', 'score'"}
    one_error_line(code, out, err, why[kind])
    assert not (tmp_path / "r").exists()


# --- dataset files: truncated, checksum, pickles -------------------------------------------------------------
def train_on(dataset: str, data_dir: Path, tmp_path: Path) -> tuple[int, str, str]:
    """``orchestrate.py train`` on ``dataset`` from ``data_dir``: the data set is loaded (and refused)
    in the driver before Ray starts."""
    return orchestrate_cli("train", "--dataset", dataset, "--data-dir", data_dir, "--trials", "1",
                           "--out", tmp_path / "out", "--store", tmp_path / "store", "--quiet")


def test_a_cifar_archive_cut_in_half_is_refused_before_anything_is_written(tmp_path):
    archive = tmp_path / "data" / cifar.CIFAR10.archive
    _write_tar(archive, cifar.CIFAR10.folder, _cifar_members(cifar.CIFAR10, 1, 1))
    whole = archive.read_bytes()
    archive.write_bytes(whole[: len(whole) // 2])
    code, out, err = train_on("cifar10", tmp_path / "data", tmp_path)
    one_error_line(code, out, err,
                   f"{archive} is truncated or corrupt (Compressed file ended before the end-of-stream marker")
    assert f"delete it and download {cifar.CIFAR10.url} again" in err  # what a command line user can do
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists()


def test_a_gzip_checksum_mismatch_is_refused_naming_the_file(tmp_path):
    """The CRC-32 in a .gz trailer is the one checksum a command line verifies (an MD5 is checked
    where Python's load_dataset(download=True) fetches: tests/test_data.py)."""
    _write_fashion(tmp_path / "data")
    path = tmp_path / "data" / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[-8:-4] = (zlib.crc32(gzip.decompress(bytes(raw))) ^ 1).to_bytes(4, "little")  # one bit off
    path.write_bytes(bytes(raw))
    one_error_line(*train_on("fashion-mnist", tmp_path / "data", tmp_path),
                   f"{path} is truncated or not gzip (CRC check failed")
    assert not (tmp_path / "out").exists()


class _RunsCode:
    """Pickles into ``os.system(command)``: what a crafted batch file would do when unpickled."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    members = _cifar_members(cifar.CIFAR10, 1, 1)
    members["data_batch_2"] = pickle.dumps({"data": _RunsCode(f"touch {marker}"), "labels": []}, protocol=2)
    _write_folder(tmp_path / "data" / cifar.CIFAR10.folder, members)
    one_error_line(*train_on("cifar10", tmp_path / "data", tmp_path),
                   "data_batch_2 is not a plain data pickle (refused global")
    assert not marker.exists()
    pickle.loads(members["data_batch_2"])  # the test's own check: an ordinary unpickler runs it
    assert marker.exists()


def test_a_nats_bench_archive_whose_pickle_would_run_code_is_refused_by_import(tmp_path):
    marker = tmp_path / "ran"
    src = write_archive(tmp_path / "src", num_archs=2)
    with bz2.open(src / "000001.pickle.pbz2", "wb") as fh:
        pickle.dump({"12": _RunsCode(f"touch {marker}")}, fh, protocol=4)
    one_error_line(*store_cli("import", src, "--store", tmp_path / "store", "--quiet"),
                   f"refused to load: the pickle asks for {os.system.__module__}.system")
    assert not marker.exists() and not list((tmp_path / "store").rglob("*.parquet"))


# --- flags every mode shares ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [("simulate",), ("train",), ("oneshot", "--searcher", "gdas"), ("prune",)])
@pytest.mark.parametrize("flag, message", [
    (("--seed", "-1"), "argument --seed: a seed is a non-negative integer, got -1"),
    (("--seed", "one"), "argument --seed: invalid int value: 'one'"),
])
def test_a_negative_seed_is_refused_while_parsing_in_every_mode(tmp_path, mode, flag, message):
    one_error_line(*orchestrate_cli(*mode, *flag, "--out", tmp_path / "out"), message)
    assert not (tmp_path / "out").exists()  # (simulate had set up a resumable experiment, oneshot ran trials)


@pytest.mark.parametrize("mode", [("simulate",), ("oneshot", "--searcher", "gdas"), ("prune",)])
def test_parallel_below_one_is_refused(tmp_path, mode):
    one_error_line(*orchestrate_cli(*mode, "--parallel", "0", "--out", tmp_path / "out"),
                   "--parallel must be at least 1, got 0")
    assert not (tmp_path / "out").exists()


# --- over-long values: a short prefix is quoted ----------------------------------------------------------------
@pytest.mark.parametrize("command, message", [
    (("simulate", "--searcher", LONG), "argument --searcher: invalid choice: 'xxxx"),
    (("simulate", "--budget", LONG), "cannot read the budget 'xxxx"),
    (("simulate", "--dataset", LONG), "has no dataset 'xxxx"),
    (("simulate", "--store", LONG), "error: File name too long: xxxx"),
    (("simulate", "--experiment", LONG), "error: File name too long: "),
    (("simulate", "--address", LONG), "--address 'xxxx"),
    ((LONG,), "argument MODE: invalid choice: 'xxxx"),
    (("prune", "--method", LONG), "--method 'xxxx"),
])
def test_an_over_long_value_is_quoted_by_a_short_prefix(tmp_path, command, message):
    code, out, err = orchestrate_cli(*command, *(("--out", tmp_path / "out") if len(command) > 1 else ()))
    one_error_line(code, out, err, message)
    assert "... (100,0" in err  # the length of what was given (a path: with the folder it was joined to)
    assert "x" * 200 not in err and len(err) < 2_000  # argparse's usage lines are most of it


@pytest.mark.parametrize("arch, message", [
    (LONG, "tss: 'xxxx"),
    ("ab " * 33_000, "characters left out"),  # a long value with spaces: the message keeps its head and tail
])
def test_an_over_long_arch_is_quoted_by_a_short_prefix(arch, message):
    code, out, err = store_cli("query", "--space", "tss", "--arch", arch)
    one_error_line(code, out, err, message)
    assert len(err) < 5_000 and "x" * 200 not in err


def test_a_cut_value_keeps_its_quotes_and_a_long_message_its_advice():
    from spaces.errors import shorten_message

    assert shorten_message(f"tss: '{LONG}': bad") == f"tss: '{'x' * 80}... (100,000 characters)': bad"
    assert shorten_message(f"a path /tmp/{'p' * 150} stays whole") == f"a path /tmp/{'p' * 150} stays whole"
    long = shorten_message("ab " * 33_000 + "; do this")
    assert long.startswith("ab ab ") and long.endswith("; do this") and "characters left out" in long
    assert len(long) <= 4_000


# --- cluster addresses ------------------------------------------------------------------------------------
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:{port}", "cannot connect to Ray at '127.0.0.1:{port}': nothing answers at 127.0.0.1:{port}"),
    ("ray://127.0.0.1:{port}", "cannot connect to Ray at 'ray://127.0.0.1:{port}': nothing answers"),
    ("head node", "--address 'head node' is not a Ray address: give auto, HOST:PORT"),
    ("head:port", "--address 'head:port' is not a Ray address"),
])
def test_a_cluster_address_where_nothing_answers_is_refused_at_once(tmp_path, address, message):
    port = closed_port()
    code, out, err = orchestrate_cli("simulate", "--searcher", "random", "--budget", "5ev", "--quiet",
                                     "--address", address.format(port=port), "--out", tmp_path)
    one_error_line(code, out, err, message.format(port=port))
    assert "check the address" in err or "give auto" in err


# --- an experiment's saved flags --------------------------------------------------------------------------------
@pytest.mark.parametrize("experiment", [None, "cut"])
def test_damaged_saved_flags_of_an_interrupted_experiment_are_refused_naming_the_file(interrupted, tmp_path,
                                                                                       experiment):
    out = copy_of(interrupted, tmp_path)
    saved = out / "simulate" / "cut" / "experiment.json"
    saved.write_text('{"searchers": ["random"], ')  # cut short, as by a full disk
    named = ("--experiment", experiment) if experiment else ()
    one_error_line(*orchestrate_cli(*SIM, "--out", out, *named, "--resume"),
                   f"cannot read {saved} (Expecting property name enclosed in double quotes")
    assert f"delete {saved.parent} and start the experiment again without --resume" in \
        orchestrate_cli(*SIM, "--out", out, *named, "--resume")[2]


@pytest.mark.parametrize("text, why", [("[1, 2]", "TypeError"), ('{"model": "resnet20"}', "KeyError: 'methods'"),
                                       ("{", "cannot read")])
def test_saved_settings_of_another_kind_are_refused_on_prune_resume(tmp_path, text, why):
    folder = tmp_path / "prune" / "p"
    folder.mkdir(parents=True)
    (folder / "settings.json").write_text(text)
    one_error_line(*orchestrate_cli("prune", "--resume", "--experiment", "p", "--out", tmp_path),
                   f"{folder / 'settings.json'}")
    assert why in orchestrate_cli("prune", "--resume", "--experiment", "p", "--out", tmp_path)[2]
