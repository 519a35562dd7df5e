"""The benchmark builder on tiny real builds: rows, iso copies, no-path cells, resume, bad input."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import spaces
from benchmark_data.cli import run_cli
from trainables import builder

TSS = spaces.get_space("tss")
IDS = TSS.iso_class_ids()
REPO = Path(__file__).resolve().parent.parent
KEY = ["arch_index", "seed", "epoch"]
# 3902 is isomorphic to 3882 (a two-member class); 3877 is alone in its class; 1 has no path
# from input to output, so its whole class (341 cells, representative 0) is constant.
ISO_MEMBER, SINGLE, NO_PATH = 3902, 3877, 1


def recipe_hash(epochs):
    from trainables.recipes import get_recipe
    return get_recipe("h0", epochs=epochs).hash


def argv(out, archs, *extra):
    return ["--space", "tss", "--dataset", "digits", "--recipe", "h0", "--epochs", "2",
            "--seeds", "0", "--archs", str(archs), "--C", "4", "--N", "1", "--store", str(out),
            "--workers", "0", "--chunk-size", "1", "--quiet", *extra]


def arch_file(tmp_path, archs, name="archs.txt"):
    path = tmp_path / name
    path.write_text("# one arch per line\n" + "\n".join(map(str, archs)) + "\n")
    return path


def read(out, table):
    return pd.read_parquet(out / table)


def test_build_records_classes_iso_copies_and_no_path_cells(tmp_path, capsys):
    out = tmp_path / "store"
    archs = arch_file(tmp_path, [ISO_MEMBER, TSS.to_str(SINGLE), NO_PATH])
    assert builder.main(argv(out, archs)) == 0
    ep = read(out, "epochs")
    assert not ep.duplicated(KEY).any()
    classes = {int(IDS[a]) for a in (ISO_MEMBER, SINGLE, NO_PATH)}
    members = np.flatnonzero(np.isin(IDS, list(classes)))
    assert sorted(ep["arch_index"].unique()) == members.tolist()  # every member of each class
    assert (ep.groupby("arch_index")["epoch"].apply(sorted) == pd.Series([[1, 2]] * len(members),
            index=members)).all()
    status = ep.groupby("arch_index")["status"].agg(set)
    rep = int(IDS[ISO_MEMBER])
    assert status[rep] == {"ok"} and status[ISO_MEMBER] == {"iso_copy"} and status[SINGLE] == {"ok"}
    no_path = np.flatnonzero(IDS == 0)
    assert all(status[a] == {"no_path"} for a in no_path) and len(no_path) == 341
    metrics = ["train_loss", "valid_acc", "test_acc", "epoch_time_s"]
    by = ep.set_index(["arch_index", "epoch"]).sort_index()
    assert by.loc[rep][metrics].equals(by.loc[ISO_MEMBER][metrics])  # a copy of the trained one
    assert (ep["hp"].astype(int) == 2).all() and set(ep["dataset"]) == {"digits"}
    ar = read(out, "archs").set_index("arch_index")
    assert sorted(ar.index) == members.tolist()
    assert (ar["iso_class"] == IDS[ar.index]).all()
    assert ar.loc[ISO_MEMBER, "latency_ms"] == ar.loc[rep, "latency_ms"] > 0
    assert ar.loc[SINGLE, "arch"] == TSS.to_str(SINGLE)
    cost = TSS.cost(SINGLE, 10, input_size=8, C=4, N=1, in_channels=1)
    assert ar.loc[SINGLE, "params_m"] == pytest.approx(cost["params_m"], rel=1e-6)
    # Provenance: recipe with hash, skeleton, dataset fingerprint, seeds.
    import pyarrow.parquet as pq

    meta = pq.read_schema(next((out / "epochs").rglob("part-*.parquet"))).metadata
    assert b'"epochs": 2' in meta[b"recipe"] and b'"hash"' in meta[b"recipe"]
    assert b'"lr_schedule_step": "epoch"' in meta[b"recipe"]  # tells new files from old ones
    assert meta[b"skeleton"] == b'{"C": 4, "N": 1}' and meta[b"dataset_fingerprint"]
    assert meta[b"seeds"] == b"[0]"
    # Rerunning the same command finds nothing to do, says so, and writes nothing.
    files = sorted(out.rglob("*.parquet"))
    capsys.readouterr()
    assert builder.main(argv(out, archs)) == 0
    assert sorted(out.rglob("*.parquet")) == files
    said = capsys.readouterr()
    assert said.out == (f"nothing left to train: all 3 trainings of tss/digits hp=2 (recipe h0, "
                        f"hash {recipe_hash(2)}) C=4 N=1 seeds [0] (--archs {archs}) are in the "
                        f"store {out}\n") and said.err == ""


def test_unique_records_representatives_only_and_random_subsets_are_seeded():
    classes, every = builder.select_classes(TSS, "unique")
    assert not every and len(classes) == len(np.unique(IDS))
    a, _ = builder.select_classes(TSS, "5", sample_seed=3)
    b, _ = builder.select_classes(TSS, "5", sample_seed=3)
    c, _ = builder.select_classes(TSS, "5", sample_seed=4)
    assert a.tolist() == b.tolist() != c.tolist() and set(a) <= set(IDS)


def test_interrupted_build_resumes_without_duplicates(tmp_path):
    """Kill a build after its first chunk landed, rerun the same command: complete, no dupes."""
    out = tmp_path / "store"
    archs = arch_file(tmp_path, [3877, 3878, 3879, 3906, 3907, 3908])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "benchmark_data", "build",
                             *argv(out, archs)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        folder = out / "epochs" / "space=tss" / "dataset=digits" / "hp=2"
        while proc.poll() is None and not list(folder.glob("part-*.parquet")):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    partial = read(out, "epochs")
    assert 0 < partial["arch_index"].nunique() < 6, "the kill came too late to test resuming"
    assert builder.main(argv(out, archs)) == 0
    ep, ar = read(out, "epochs"), read(out, "archs")
    assert not ep.duplicated(KEY).any() and not ar.duplicated(["arch_index"]).any()
    assert len(ep) == 6 * 2 and sorted(ar["arch_index"]) == [3877, 3878, 3879, 3906, 3907, 3908]


@pytest.mark.ray
@pytest.mark.slow  # starts a local Ray (~10-20 s)
def test_build_on_ray_workers(tmp_path, capfd):
    out = tmp_path / "store"
    archs = arch_file(tmp_path, [3877, ISO_MEMBER, 3878])
    args = argv(out, archs)
    args[args.index("--workers") + 1] = "2"
    assert builder.main(args) == 0
    said = capfd.readouterr()  # --quiet: the summary only, nothing from Ray or its workers
    assert said.err == "" and said.out.startswith("archs_written: 4\ntrained: 3\n"), said
    ep = read(out, "epochs")
    assert not ep.duplicated(KEY).any()
    assert sorted(ep["arch_index"].unique()) == [3877, 3878, 3882, 3902]


@pytest.mark.parametrize("change, message", [
    (("--dataset", "mnist"), "unknown dataset 'mnist'"),
    (("--space", "nas101"), "argument --space: invalid choice: 'nas101' (choose from 'tss', 'sss')"),
    (("--recipe", "h5"), "argument --recipe: invalid choice: 'h5' (choose from 'h0', 'h1', 'h2')"),
    (("--workers", "-1"), "--workers -1: give the number of trainings at once, >= 1"),
    (("--workers", "two"), "argument --workers: invalid int value: 'two'"),
    (("--store", "embedded"), "--store embedded: this command writes"),
    (("--archs", "0"), "give a number between 1 and 5273"),
    (("--archs", "99999"), "give a number between 1 and 5273"),
    (("--archs", "no/such/file.txt"), "neither all, unique, a number of classes nor an existing file"),
    (("--seeds", "0,x"), "give comma-separated integers"),
    (("--C", "0"), "--C must be >= 1"),
    (("--epochs", "0"), "epochs must be an integer >= 1"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys, change, message):
    args = argv(tmp_path / "store", "all")
    flag, value = change
    args[args.index(flag) + 1] = value
    assert run_cli(builder.main, args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not list((tmp_path / "store").rglob("*.parquet"))


def test_bad_line_in_arch_file_names_file_and_line(tmp_path, capsys):
    archs = arch_file(tmp_path, [5, "|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|"])
    assert run_cli(builder.main, argv(tmp_path / "store", archs)) == 2
    err = capsys.readouterr().err
    assert f"{archs}:3:" in err and "unknown op 'bogus'" in err


def test_help_names_the_cli(capsys):
    with pytest.raises(SystemExit) as exit_:
        builder.main(["--help"])
    assert exit_.value.code == 0
    assert "python -m benchmark_data build" in capsys.readouterr().out


SSS = spaces.get_space("sss")


def sss_argv(tmp_path, *extra):
    return ["--space", "sss", "--dataset", "digits", "--recipe", "h0", "--epochs", "1",
            "--archs", str(arch_file(tmp_path, ["8:8:8:8:8"])), "--store", str(tmp_path / "store"),
            "--workers", "0", "--quiet", *extra]


def test_size_space_refuses_n_other_than_1(tmp_path, capsys):
    assert run_cli(builder.main, sss_argv(tmp_path, "--N", "5")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sss: --N=5, but the size space has one cell per stage")
    assert not (tmp_path / "store").exists()
    assert run_cli(builder.main, sss_argv(tmp_path, "--C", "8")) == 2
    assert "error: --C 8: the size space's channels are the architecture" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_size_space_builds_with_one_cell_per_stage_by_default(tmp_path):
    out = tmp_path / "store"
    assert builder.main(sss_argv(tmp_path)) == 0
    import pyarrow.parquet as pq

    meta = pq.read_schema(next((out / "epochs").rglob("part-*.parquet"))).metadata
    assert meta[b"skeleton"] == b'{"N": 1}'
    ar = read(out, "archs")
    assert ar["flops_m"].item() == pytest.approx(
        SSS.cost(0, 10, input_size=8, in_channels=1)["flops_m"], rel=1e-6)


def test_store_of_another_skeleton_or_recipe_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "store"
    archs = arch_file(tmp_path, [SINGLE])
    assert builder.main(argv(out, archs)) == 0
    capsys.readouterr()
    files = sorted(out.rglob("*.parquet"))
    more = arch_file(tmp_path, [SINGLE, 3878], "more.txt")  # work left to do, still refused
    other = argv(out, more)
    other[other.index("--C") + 1] = "8"
    assert run_cli(builder.main, other) == 2
    err = capsys.readouterr().err
    assert "holds tss/digits rows of skeleton C=4 N=1" in err and "this run trains C=8 N=1" in err
    assert "give another --store" in err
    assert run_cli(builder.main, argv(out, more, "--lr-schedule-step", "iteration")) == 2
    err = capsys.readouterr().err
    assert "hp=2 trained with another recipe" in err
    assert "differ only in lr_schedule_step: the store's rows were trained with the cosine " \
           "stepped per epoch, this run steps it per iteration" in err
    assert sorted(out.rglob("*.parquet")) == files


def test_the_store_as_out_or_a_positional_is_refused_with_the_new_form(tmp_path, capsys):
    args = argv(tmp_path / "store", "5")
    i = args.index("--store")
    for old, said in ((["--out", args[i + 1]], f"instead of --out {args[i + 1]}"),
                      ([args[i + 1]], f"instead of a bare {args[i + 1]}")):
        assert run_cli(builder.main, [*args[:i], *old, *args[i + 2:]]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: the store is given with --store now: write `python -m "
                              f"benchmark_data build --store {args[i + 1]} ...` {said}")
    assert not (tmp_path / "store").exists()


def test_build_without_archs_says_what_a_full_build_is_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "store"
    args = argv(out, "x")
    del args[args.index("--archs"):args.index("--archs") + 2]
    assert run_cli(builder.main, args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --archs is required: say what to train. A full build of "
                          f"tss/digits hp=2 (recipe h0, hash {recipe_hash(2)}) C=4 N=1 seeds [0] "
                          "trains 5273 isomorphism classes x 1 seed(s) = 5273 trainings (rows for "
                          f"all 15625 architectures); 5273 of them are not in the store {out} yet. ")
    assert "no time estimate: the store holds no cells trained with this recipe and skeleton" in err
    assert err.rstrip().endswith("Ask for it with --archs all, or for part of it: --archs N (N "
                                 "classes drawn at random, e.g. --archs 20), --archs unique (one "
                                 "architecture per class, without the copies) or --archs FILE (the "
                                 "architectures listed in FILE, one index or canonical string per "
                                 "line)")
    assert not out.exists()
    # Once the store holds trained cells of this recipe and skeleton, their recorded times give a
    # lower bound: the mean per training times the trainings left, over the workers.
    assert builder.main(argv(out, arch_file(tmp_path, [SINGLE, 3878]))) == 0
    ep = read(out, "epochs")
    per = (ep["epoch_time_s"] + ep["eval_time_s"]).groupby(ep["arch_index"]).sum().mean()
    capsys.readouterr()
    assert run_cli(builder.main, args) == 2
    err = capsys.readouterr().err
    assert "5271 of them are not in the store" in err
    assert (f"At the {per:.3g} s of training and validation per training that the store's 2 "
            "trained cell(s) recorded, the 5271 left take at least ") in err
    assert "on 1 worker(s) (test evaluations and start-up come on top)" in err


def test_progress_counts_trainings_to_100_percent_and_quiet_prints_the_summary_only(tmp_path, capsys):
    out = tmp_path / "store"
    loud = [a for a in argv(out, arch_file(tmp_path, [SINGLE, ISO_MEMBER])) if a != "--quiet"]
    assert builder.main(loud) == 0
    said = capsys.readouterr()
    assert "2 training(s) to do (0 already in the store) for 3 (arch, seed) row sets" in said.err
    assert "100%" in said.err and "2/2" in said.err  # integer totals that end at 100 %
    assert "archs_written: 3\ntrained: 2\nwall_s: " in said.out
    quiet = argv(tmp_path / "other", arch_file(tmp_path, [SINGLE], "one.txt"))
    assert builder.main(quiet) == 0
    said = capsys.readouterr()
    assert said.err == "" and said.out.startswith("archs_written: 1\ntrained: 1\nwall_s: ")
