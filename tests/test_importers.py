"""Importers of official NATS-Bench data: rows, split mapping, safety, bad input, CLI."""

from __future__ import annotations

import bz2
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from nats_bench import pickle_load

from benchmark_data import schema as S
from benchmark_data import writer
from benchmark_data.importers import import_nats_archive, import_nats_table, load_pickle, main
from nats_fixtures import write_archive, write_table
from spaces import UserError, get_space

DATASETS = ("cifar10-valid", "cifar10", "cifar100")


def read_table(root: Path, table: str) -> pd.DataFrame:
    """Every row of a table, the last written row per key winning (as the reader does)."""
    parts = []
    for values, folder in S.iter_partitions(root, table):
        for path in S.list_fragments(folder):
            tbl = writer.read_fragment(path, table).replace_schema_metadata(None)
            for col, value in values.items():
                tbl = tbl.append_column(col, pa.repeat(pa.scalar(value, S.SCHEMAS[table].field(col).type),
                                                       tbl.num_rows))
            parts.append(tbl)
    merged = writer.dedupe_keep_last(pa.concat_tables(parts, promote_options="default"),
                                     S.KEY_COLUMNS[table])
    return merged.to_pandas()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return write_archive(tmp_path_factory.mktemp("nats"), datasets=DATASETS, old_style_archs=(2,))


@pytest.fixture(scope="module")
def imported(archive, tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    report = import_nats_archive(archive, root, progress=False)
    return root, report


def test_archive_import_writes_every_trial_epoch_with_the_documented_split_mapping(archive, imported):
    root, report = imported
    meta = pickle_load(str(archive / "meta.pickle.pbz2"))
    tss = get_space("tss")
    assert (report.space, report.archs, report.datasets, report.hps) == ("tss", 5, sorted(DATASETS), [12, 200])
    epochs = read_table(root, "epochs")
    archs = read_table(root, "archs")
    assert len(epochs) == report.epoch_rows and len(archs) == report.arch_rows == 5 * len(DATASETS)
    assert set(epochs["status"]) == {"imported"}
    # Official index kept, project index from the canonical parse, strings as published.
    for row in archs.itertuples():
        assert row.arch == meta["meta_archs"][row.nats_index]
        assert row.arch_index == tss.parse(row.arch)
        assert row.iso_class == tss.iso_class_ids()[row.arch_index]
    by_nats = dict(zip(archs["nats_index"], archs["arch_index"]))
    expected_rows = 0
    for i in range(5):
        record = pickle_load(str(archive / f"{i:06d}.pickle.pbz2"))
        for hp_key, arch in record.items():
            for (dataset, seed), rc in arch["all_results"].items():
                expected_rows += rc["epochs"]
                got = epochs[(epochs.arch_index == by_nats[i]) & (epochs.dataset == dataset)
                             & (epochs.hp == int(hp_key)) & (epochs.seed == seed)].sort_values("epoch")
                assert list(got["epoch"]) == list(range(1, rc["epochs"] + 1))  # 1-based
                e = 3  # 0-based iepoch 3 is our epoch 4
                r = got.iloc[e]
                assert r.train_acc == pytest.approx(rc["train_acc1es"][e], rel=1e-6)
                assert r.epoch_time_s == pytest.approx(rc["train_times"][e], rel=1e-6)
                valid = {"cifar10-valid": "x-valid", "cifar100": "x-valid"}.get(dataset)
                test = "x-test" if dataset == "cifar100" else "ori-test"
                if valid:
                    assert r.eval_time_s == pytest.approx(rc["eval_times"][f"{valid}@{e}"], rel=1e-6)
                else:  # cifar10 has no validation split: a gap, never a copy of the test set
                    assert np.isnan(r.valid_acc) and np.isnan(r.eval_time_s)
                for col, name in (("valid_acc", valid), ("test_loss", test)):
                    recorded = rc["eval_acc1es" if col.endswith("acc") else "eval_losses"]
                    if name and f"{name}@{e}" in recorded:
                        assert getattr(r, col) == pytest.approx(recorded[f"{name}@{e}"], rel=1e-6)
                    else:  # no such split, or arch 2 (old style) evaluated it only at the end
                        assert np.isnan(getattr(r, col)) and (i == 2 or name is None)
    assert expected_rows == len(epochs)
    assert report.ori_test_checked > 0 and report.ori_test_max_dev < 1e-9
    # arch 2's cifar100 ori-test before the last epoch has no halves to store: counted, not faked
    assert report.ori_test_dropped == 2 * (11 + 199)


def test_archive_import_records_costs_and_provenance(archive, imported):
    root, _ = imported
    archs = read_table(root, "archs")
    record = pickle_load(str(archive / "000001.pickle.pbz2"))["200"]
    trial = record["all_results"][("cifar10", 777)]
    row = archs[(archs.nats_index == 1) & (archs.dataset == "cifar10")].iloc[0]
    assert row.params_m == pytest.approx(trial["params"], rel=1e-6)
    assert row.flops_m == pytest.approx(trial["flop"], rel=1e-6)
    assert row.latency_ms == pytest.approx(trial["latency"][0] * 1000, rel=1e-6)
    folder = S.partition_path(root, "epochs", {"space": "tss", "dataset": "cifar10", "hp": 200})
    meta = pa.parquet.read_schema(S.list_fragments(folder)[0]).metadata
    meta = {k.decode(): v.decode() for k, v in meta.items()}
    assert meta["source_archive"] == archive.name and meta["schema_version"] == S.SCHEMA_VERSION
    assert json.loads(meta["recipe"])["epochs"] == 200


def test_size_space_archive_is_detected_from_its_meta(tmp_path):
    src = write_archive(tmp_path / "src", space="sss", num_archs=3, datasets=("cifar10",),
                        index_width=1)  # NATS-Bench also accepts unpadded file names
    report = import_nats_archive(src, tmp_path / "store", progress=False)
    assert (report.space, report.hps, report.archs) == ("sss", [1, 12, 90], 3)
    epochs = read_table(tmp_path / "store", "epochs")
    assert set(epochs["space"]) == {"sss"} and epochs[epochs.hp == 1]["epoch"].max() == 1


class _Payload:
    """Pickles into a call of ``func(arg)``: what a malicious archive would do."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("where, workers", [("meta", 1), ("record", 1), ("record", 2)])
def test_a_pickle_that_calls_code_is_refused_and_nothing_runs(tmp_path, where, workers):
    src = write_archive(tmp_path / "src", num_archs=2)
    marker = tmp_path / "pwned"
    payload = _Payload(os.system, f"touch {marker}")
    obj = {"meta_archs": payload} if where == "meta" else {"12": payload}
    target = src / ("meta.pickle.pbz2" if where == "meta" else "000001.pickle.pbz2")
    with bz2.open(target, "wb") as fh:
        pickle.dump(obj, fh, protocol=4)
    with pytest.raises(UserError, match=r"refused to load: the pickle asks for (posix|os)\.system"):
        import_nats_archive(src, tmp_path / "store", progress=False, workers=workers)
    assert not marker.exists()
    # Sanity check of the test itself: an ordinary unpickler would have run the payload.
    with bz2.open(target, "rb") as fh:
        pickle.load(fh)
    assert marker.exists()


def test_pickled_classes_and_builtins_are_refused(tmp_path):
    path = tmp_path / "x.pickle.pbz2"
    for obj, name in ((_Payload(eval, "1+1"), "builtins.eval"), (_Payload, "_Payload")):
        with bz2.open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=4)
        with pytest.raises(UserError, match=f"asks for .*{name}"):
            load_pickle(path)


def test_damaged_archives_are_user_errors_naming_the_file(tmp_path):
    src = write_archive(tmp_path / "src", num_archs=2)
    (src / "000001.pickle.pbz2").write_bytes(b"not bz2 at all")
    with pytest.raises(UserError, match=r"000001\.pickle\.pbz2 is not a readable NATS-Bench pickle"):
        import_nats_archive(src, tmp_path / "store", progress=False)
    with pytest.raises(UserError, match="has no meta.pickle.pbz2"):
        import_nats_archive(tmp_path, tmp_path / "store", progress=False)
    # A record whose arch string disagrees with meta: corrupt, named.
    other = write_archive(tmp_path / "other", num_archs=2, shuffle_seed=5)
    os.replace(other / "000000.pickle.pbz2", src / "000001.pickle.pbz2")
    with pytest.raises(UserError, match=r"000001\.pickle\.pbz2: hp 12 holds arch .* but meta lists"):
        import_nats_archive(src, tmp_path / "store", progress=False)


def test_table_import_keeps_the_official_index_as_an_aggregate_row(tmp_path):
    csv_path = write_table(tmp_path / "t.csv", num_archs=20)
    report = import_nats_table(csv_path, tmp_path / "store")
    epochs, archs = read_table(tmp_path / "store", "epochs"), read_table(tmp_path / "store", "archs")
    assert report.archs == report.epoch_rows == report.arch_rows == 20
    assert set(epochs["seed"]) == {-1} and set(epochs["epoch"]) == {200} and set(epochs["hp"]) == {200}
    assert epochs["valid_acc"].isna().all() and not epochs["test_acc"].isna().any()
    lines = csv_path.read_text().splitlines()[1:]
    tss = get_space("tss")
    for line in lines:
        idx, arch, value = line.split(",")
        a = tss.parse(arch)
        assert archs.set_index("arch_index").loc[a, "nats_index"] == int(idx)
        assert epochs.set_index("arch_index").loc[a, "test_acc"] == pytest.approx(float(value), rel=1e-6)


def test_a_table_import_keeps_costs_an_archive_import_wrote(tmp_path):
    src = write_archive(tmp_path / "src", num_archs=4, datasets=("cifar10",))
    import_nats_archive(src, tmp_path / "store", progress=False)
    before = read_table(tmp_path / "store", "archs").set_index("arch_index")
    write_table(tmp_path / "t.csv", num_archs=4)  # same order (same shuffle seed)
    import_nats_table(tmp_path / "t.csv", tmp_path / "store")
    after = read_table(tmp_path / "store", "archs").set_index("arch_index")
    pd.testing.assert_frame_equal(before.sort_index(), after.sort_index())


GOOD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
OTHER = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.mark.parametrize("body, message", [
    ("index,name,acc\n", r"t\.csv:1: expected the header"),
    (f"index,arch,acc\n0,{GOOD},94.3\n1,|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|,50\n",
     r"t\.csv:3: tss: unknown op 'conv'"),
    (f"index,arch,acc\n0,{GOOD}\n", r"t\.csv:2: expected 3 fields"),
    (f"index,arch,acc\nzero,{GOOD},94.3\n", r"t\.csv:2: index must be an integer"),
    (f"index,arch,acc\n0,{GOOD},high\n", r"t\.csv:2: .*value a number"),
    (f"index,arch,acc\n0,{GOOD},94.3\n0,{OTHER},10\n", r"t\.csv:3: index 0 already appeared on line 2"),
    (f"index,arch,acc\n0,{GOOD},94.3\n1,{GOOD},10\n", r"t\.csv:3: arch .* already appeared on line 2"),
    (f"index,arch,acc\n0, {GOOD},94.3\n", r"t\.csv:2: .* is not in canonical form"),
    ("index,arch,acc\n", r"has a header but no rows"),
])
def test_malformed_table_lines_are_named(tmp_path, body, message):
    (tmp_path / "t.csv").write_text(body)
    with pytest.raises(UserError, match=message):
        import_nats_table(tmp_path / "t.csv", tmp_path / "store")
    assert not (tmp_path / "store" / "epochs").exists()  # nothing half-imported


def test_table_options_are_checked(tmp_path):
    csv_path = write_table(tmp_path / "t.csv", num_archs=2)
    with pytest.raises(UserError, match="unknown metric 'acc'"):
        import_nats_table(csv_path, tmp_path / "s", metric="acc")
    with pytest.raises(UserError, match="hp must be a positive number of epochs"):
        import_nats_table(csv_path, tmp_path / "s", hp=0)
    with pytest.raises(UserError, match="unknown search space 'nas101'"):
        import_nats_table(csv_path, tmp_path / "s", space="nas101")


def test_cli_imports_both_kinds_and_explains_bad_input(tmp_path, capsys):
    src = write_archive(tmp_path / "src", num_archs=2, datasets=("cifar10",), hps=("12",))
    assert main([str(src), "--store", str(tmp_path / "store"), "--quiet"]) == 0
    assert "2 architecture(s)" in capsys.readouterr().out
    csv_path = write_table(tmp_path / "t.csv", num_archs=3)
    assert main([str(csv_path), "--store", str(tmp_path / "store2"), "--dataset", "cifar100",
                 "--hp", "12"]) == 0
    assert read_table(tmp_path / "store2", "epochs")["dataset"].unique().tolist() == ["cifar100"]
    with pytest.raises(UserError, match="the following arguments are required: SRC, --store; run .*--help"):
        main([])
    with pytest.raises(UserError, match="does not exist"):
        main([str(tmp_path / "missing.csv"), "--store", str(tmp_path / "s")])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="is neither a directory"):
        main([str(tmp_path / "notes.txt"), "--store", str(tmp_path / "s")])
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "index,arch,value" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    # the destination as the second positional, as before --store
    (["{csv}", "{dest}"], "the store is given with --store now: write `python -m benchmark_data "
                          "import {csv} --store {dest} ...` instead of a bare {dest}"),
    (["{csv}"], "the following arguments are required: --store"),
    (["{csv}", "--store", "embedded"], "--store embedded: this command writes"),
    (["{csv}", "--store", "{csv}"], "--store {csv} is a file; give a store folder"),
    (["{csv}", "--store", "{dest}", "--space", "nas101"], "argument --space: invalid choice: 'nas101'"),
    (["{csv}", "--store", "{dest}", "--metric", "acc"], "argument --metric: invalid choice: 'acc'"),
    (["{csv}", "--store", "{dest}", "--hp", "x"], "argument --hp: invalid int value: 'x'"),
    (["{archive}", "--store", "{dest}", "--workers", "0"], "workers must be a positive integer, got 0"),
])
def test_cli_bad_input_names_the_mistake_and_writes_nothing(tmp_path, args, message):
    fill = {"csv": str(write_table(tmp_path / "t.csv", num_archs=2)), "dest": str(tmp_path / "store"),
            "archive": str(write_archive(tmp_path / "src", num_archs=1, datasets=("cifar10",), hps=("12",)))}
    with pytest.raises(UserError) as err:
        main([a.format(**fill) for a in args])
    assert message.format(**fill) in str(err.value)
    assert store_files(tmp_path / "store") == []


def test_cli_help_lists_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--store PATH store folder to write into (required", "--space {tss,sss}",
                 "(default: tss)", "(default: cifar10;", "--hp HP table only: recipe length in "
                 "epochs (default: 200)", "(default: test_acc)", "--workers W", "(default: 1)",
                 "--quiet"):
        assert text in out, text


def test_the_single_file_archive_imports_like_the_directory(tmp_path):
    """NATS-Bench's non-fast-mode file holds the same records in one dict (arch2infos)."""
    from nats_bench import pickle_save

    src = write_archive(tmp_path / "src", num_archs=3, datasets=("cifar10",), hps=("12",))
    meta = pickle_load(str(src / "meta.pickle.pbz2"))
    meta["arch2infos"] = {i: pickle_load(str(src / f"{i:06d}.pickle.pbz2")) for i in range(3)}
    pickle_save(meta, str(tmp_path / "NATS-tss-v1_0-fixture.pickle"))
    one = import_nats_archive(tmp_path / "NATS-tss-v1_0-fixture.pickle.pbz2", tmp_path / "a",
                              progress=False)
    many = import_nats_archive(src, tmp_path / "b", progress=False)
    assert (one.archs, one.epoch_rows, one.arch_rows) == (many.archs, many.epoch_rows, many.arch_rows)
    key = ["dataset", "hp", "arch_index", "seed", "epoch"]
    pd.testing.assert_frame_equal(read_table(tmp_path / "a", "epochs").sort_values(key).reset_index(drop=True),
                                  read_table(tmp_path / "b", "epochs").sort_values(key).reset_index(drop=True))
    with pytest.raises(UserError, match="is the meta file of a '\\*-simple' directory"):
        import_nats_archive(src / "meta.pickle.pbz2", tmp_path / "c", progress=False)


def test_parallel_workers_write_the_same_rows(archive, imported, tmp_path):
    root, report = imported
    parallel = import_nats_archive(archive, tmp_path / "p", progress=False, workers=2)
    assert (parallel.epoch_rows, parallel.ori_test_dropped) == (report.epoch_rows, report.ori_test_dropped)
    key = ["dataset", "hp", "arch_index", "seed", "epoch"]
    pd.testing.assert_frame_equal(read_table(tmp_path / "p", "epochs").sort_values(key).reset_index(drop=True),
                                  read_table(root, "epochs").sort_values(key).reset_index(drop=True))
    with pytest.raises(UserError, match="workers must be a positive integer, got 0"):
        import_nats_archive(archive, tmp_path / "q", workers=0)


# --- values that cannot be true are refused, and nothing is written --------------------------
def store_files(root: Path) -> list[Path]:
    """Every file under a store, hidden ones included (a leftover staging folder would show)."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []


@pytest.mark.parametrize("metric, value, message", [
    ("test_acc", "130.5", r"t\.csv:3: test_acc 130\.5 is outside 0\.\.100"),
    ("valid_acc", "-0.5", r"t\.csv:3: valid_acc -0\.5 is outside 0\.\.100"),
    ("test_acc", "nan", r"t\.csv:3: test_acc is NaN"),
    ("epoch_time_s", "-2", r"t\.csv:3: epoch_time_s -2\.0 is not a finite number of seconds"),
    ("eval_time_s", "inf", r"t\.csv:3: eval_time_s inf is not a finite number of seconds"),
    ("test_loss", "-1", r"t\.csv:3: test_loss -1\.0 is negative"),
])
def test_table_values_that_cannot_be_true_are_named_by_line(tmp_path, metric, value, message):
    body = f"index,arch,v\n0,{GOOD},1.5\n1,{OTHER},{value}\n"
    (tmp_path / "t.csv").write_text(body)
    with pytest.raises(UserError, match=message):
        import_nats_table(tmp_path / "t.csv", tmp_path / "store", metric=metric)
    assert store_files(tmp_path / "store") == []
    # the same line with a possible value imports (the check is not refusing everything)
    (tmp_path / "t.csv").write_text(body.replace(f",{value}\n", ",2.5\n"))
    assert import_nats_table(tmp_path / "t.csv", tmp_path / "store", metric=metric).epoch_rows == 2


def test_an_unknown_dataset_is_refused_through_the_cli(tmp_path):
    import subprocess
    import sys
    csv_path = write_table(tmp_path / "t.csv", num_archs=2)
    proc = subprocess.run([sys.executable, "-m", "benchmark_data", "import", str(csv_path),
                           "--store", str(tmp_path / "store"), "--dataset", "cifar11"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: unknown dataset 'cifar11'; known datasets: "
                                  "cifar10-valid, cifar10, cifar100, ImageNet16-120, digits, "
                                  "fashion-mnist"), proc.stderr
    assert "Traceback" not in proc.stderr and store_files(tmp_path / "store") == []


def _corrupt(src: Path, index: int, change) -> None:
    """Rewrite one record of an official-format archive with ``change(record)`` applied."""
    from nats_bench import pickle_save
    path = src / f"{index:06d}.pickle.pbz2"
    record = pickle_load(str(path))
    change(record)
    path.unlink()
    pickle_save(record, str(path)[: -len(".pbz2")])


def _set_trial(field, value, at=3):
    def change(record):
        rc = record["12"]["all_results"][("cifar10", 777)]
        if at is None:
            rc[field] = value
        else:
            rc[field][at] = value
    return change


def _rename_dataset(record):
    arch = record["12"]
    arch["all_results"][("cifar11", 777)] = arch["all_results"].pop(("cifar10", 777))


@pytest.mark.parametrize("change, message", [
    (_set_trial("train_acc1es", 130.0),
     r"000003\.pickle\.pbz2: official index 3, dataset 'cifar10', hp 12, seed 777: "
     r"epoch 4 \(iepoch 3\): train_acc 130\.0 is outside 0\.\.100"),
    (_set_trial("train_times", -5.0),
     r"000003\.pickle\.pbz2: official index 3, .*seed 777: epoch 4 .*epoch_time_s -5\.0 is not a "
     r"finite number of seconds"),
    (_set_trial("train_losses", float("-inf")),
     r"official index 3, .*train_loss -inf is negative"),
    (_set_trial("epochs", 0, at=None),
     r"official index 3, dataset 'cifar10', hp 12, seed 777: the trial records 0 epochs"),
    (_rename_dataset, r"official index 3, dataset 'cifar11', hp 12, seed 777: unknown dataset "
                      r"'cifar11'; known datasets: cifar10-valid"),
])
def test_archive_values_that_cannot_be_true_are_named_and_nothing_is_written(tmp_path, change,
                                                                           message):
    src = write_archive(tmp_path / "src", num_archs=5, datasets=("cifar10",), hps=("12",))
    _corrupt(src, 3, change)
    store = tmp_path / "store"
    (store / "epochs").mkdir(parents=True)  # an existing store stays as it was
    # flush_rows=1: records 0..2 are flushed before record 3 fails; still nothing may appear
    with pytest.raises(UserError, match=message):
        import_nats_archive(src, store, progress=False, flush_rows=1)
    assert store_files(store) == [] and [p.name for p in store.iterdir()] == ["epochs"]
    with pytest.raises(UserError, match=message):
        import_nats_archive(src, tmp_path / "new", progress=False, workers=2)
    assert not (tmp_path / "new").exists()  # a destination the import created is removed again


def test_a_staged_import_publishes_in_order_after_concurrent_writes(tmp_path):
    src = write_archive(tmp_path / "src", num_archs=3, datasets=("cifar10",), hps=("12",))
    report = import_nats_archive(src, tmp_path / "store", progress=False, flush_rows=1)
    assert report.epoch_rows == len(read_table(tmp_path / "store", "epochs"))
    assert not [p for p in (tmp_path / "store").iterdir() if p.name.startswith(".")]
    folder = S.partition_path(tmp_path / "store", "epochs",
                              {"space": "tss", "dataset": "cifar10", "hp": 12})
    assert len(S.list_fragments(folder)) >= 3  # one per flush, each renamed into place
