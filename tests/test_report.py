"""The report (issue #16): every table against values computed by hand on small stores and runs
written in tmp_path through the project's writer, byte-identical files on rerun, the checks that
results and benchmark belong together, the CLI's errors, a real simulate -> report round trip, the
real NATS-Bench CIFAR-10 table (skipped when ../shared/data is absent) and the page in headless
Chromium (slow; skipped when Chromium is absent).

The hand fixtures: store ``bench_a`` holds tss/digits hp=12 (architectures 0..5, final test
accuracy 90..95, validation accuracy the same order but 4 and 5 swapped) and hp=4 (its last epoch
ranks them the other way round), store ``bench_b`` tss/cifar10 hp=200 (70, 75, 72, 80, 78, 85).
Experiment ``hand`` is random and REA, 3 runs each, on a 100 s budget; ``os`` a one-shot search.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from benchmark_data import schema as S
from benchmark_data import writer as W
from benchmark_data.cli import run_cli
from orchestrator.experiment import write_runs
from orchestrator.report import TABLES, build_report, stats
from orchestrator.report.__main__ import main as report_main
from spaces import get_space

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT.parent / "shared" / "data" / "nats_tss_cifar10_test_acc_200ep.csv"
TSS = get_space("tss")
ARCHS = np.arange(6)
TEST12 = np.array([90.0, 91, 92, 93, 94, 95])
VALID12 = np.array([80.0, 81, 82, 83, 85, 84])
B200 = np.array([70.0, 75, 72, 80, 78, 85])
MODEL = "extra-trees (scikit-learn 1.9.1)"
CV = {"chosen": "extra-trees", "candidates": [{"model": "extra-trees", "test_acc": {"kendall_tau": 0.71}}]}


# --- fixtures ----------------------------------------------------------------------------------------
def epochs(archs, test, valid=None, *, hp, dataset="digits", seed=0, last_only=False, status="ok") -> pd.DataFrame:
    """Rows whose value at the recipe's last epoch is ``test`` / ``valid`` (one point less per epoch before)."""
    es = np.array([hp]) if last_only else np.arange(1, hp + 1)
    a, e = np.meshgrid(np.asarray(archs), es, indexing="ij")
    back = (hp - e).ravel()
    t = np.repeat(np.asarray(test, float), len(es)) - back
    v = None if valid is None else np.repeat(np.asarray(valid, float), len(es)) - back
    return pd.DataFrame({"space": "tss", "dataset": dataset, "hp": hp, "arch_index": a.ravel(), "seed": seed,
                         "epoch": e.ravel(), "valid_acc": v, "test_acc": t, "epoch_time_s": 1.0, "eval_time_s": 0.5,
                         "status": status})


def archs_rows(dataset, params, flops) -> pd.DataFrame:
    return pd.DataFrame({"space": "tss", "dataset": dataset, "arch_index": ARCHS, "params_m": params, "flops_m": flops})


def write_store(root: Path, fingerprint: str = "fp-digits", test12=TEST12) -> Path:
    meta = S.provenance("epochs", recipe={"name": "h0", "hash": "abc"}, skeleton={"C": 8, "N": 1},
                        dataset_fingerprint=fingerprint)
    W.write_fragment(root, "epochs", epochs(ARCHS, test12, VALID12, hp=12), metadata=meta)
    short = epochs(ARCHS, 60 - ARCHS, 60 - ARCHS, hp=4)  # its last epoch ranks hp=12's order backwards,
    early = short["epoch"] < 4                            # its epochs 1..3 in hp=12's order
    short.loc[early, "valid_acc"] = short.loc[early, "test_acc"] = 50 + short["arch_index"] + short["epoch"]
    W.write_fragment(root, "epochs", short, metadata=meta)
    W.write_fragment(root, "archs", archs_rows("digits", (ARCHS + 1) / 10, 60 - 10 * ARCHS),
                     metadata=S.provenance("archs"))
    return root


def run_rows(searcher, seed, times, best, *, budget_s=100.0, budget_evals=None, experiment="hand", space="tss",
             dataset="digits", values=TEST12, surrogate=None, best_surrogate=None) -> pd.DataFrame:
    n = len(times)
    best = np.asarray(best)
    return pd.DataFrame({
        "experiment": experiment, "searcher": searcher, "space": space, "dataset": dataset,
        "budget_s": budget_s, "budget_evals": budget_evals, "run_seed": seed, "event": np.arange(n),
        "sim_time_s": np.asarray(times, float), "arch_index": best, "fidelity": 12, "feedback": 80.0,
        "best_arch_index": best, "best_test_acc": values[best], "final_recipe_hp": 12,
        "searcher_time_s": 0.001, "wall_time_s": 0.01 * (np.arange(n) + 1), "arch": [TSS.to_str(int(a)) for a in best],
        "best_arch": [TSS.to_str(int(a)) for a in best], "clock": "simulated",
        "surrogate": False if surrogate is None else surrogate,
        "best_surrogate": False if best_surrogate is None else best_surrogate})


def runs_meta(experiment, store, **extra) -> dict[str, str]:
    return S.provenance("runs", recipe={"feedback": "valid_acc", "feedback_dataset": "digits", "feedback_hp": 12,
                                        "final": "test_acc", "final_hp": 12},
                        skeleton={"C": 8, "N": 1}, dataset_fingerprint="fp-digits",
                        extra={"experiment": experiment, "benchmark": str(store), "budget": "100 s", "seeds": "0..2",
                               "workers": "1", "scheduler": "fifo", "incumbent": "nats",
                               "knobs": json.dumps({"random": {"max_trials": None}, "rea": {"population_size": 10}}),
                               **extra})


# Hand-derived: each run's incumbent test accuracy interpolated at 100 s between the two events nearest to it.
HAND_RUNS = {("random", 0): ([10, 60, 110], [0, 2, 4], 92 + 40 / 50 * 2),        # 60 s and 110 s
             ("random", 1): ([20, 80, 120], [1, 1, 3], 92.0),                    # 80 s and 120 s, equally near
             ("random", 2): ([30, 90, 105], [0, 3, 5], 10 / 15 * 95 + 5 / 15 * 93),
             ("rea", 0): ([10, 50, 150], [3, 4, 5], 94.5),                       # 50 s and 150 s
             ("rea", 1): ([5, 80, 130], [2, 4, 5], 94 + 20 / 50),
             ("rea", 2): ([40, 100, 150], [4, 5, 5], 95.0)}                     # an event at the budget
ONESHOT = {0: [0, 3, 5], 1: [1, 1, 2], 2: [4, 2, 0]}  # derived architecture after epochs 1, 2, 3


def write_oneshot(out: Path, store: Path) -> None:
    rows = []
    for seed, best in ONESHOT.items():
        r = run_rows("darts-v2", seed, [np.nan] * 3, best, budget_s=None, experiment="os").assign(
            clock="wall", sim_time_s=np.nan, fidelity=None, surrogate=None, best_surrogate=None,
            wall_time_s=2.0 * np.arange(1, 4), best_rank=6 - np.asarray(best), supernet_valid_acc=50.0,
            arch_entropy=1.6)
        rows.append(r)
    meta = S.provenance("runs", recipe={"search": "oneshot", "epochs": 3, "final_hp": 12, "search_hp": 12},
                        skeleton={"C": 8, "N": 1}, time_column="wall_time_s",
                        extra={"experiment": "os", "benchmark": str(store), "settings": json.dumps({"knobs": {}})})
    write_runs(out, pd.concat(rows), meta)


@pytest.fixture(scope="module")
def hand(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("report")
    a = write_store(tmp / "bench_a")
    b = tmp / "bench_b"
    W.write_fragment(b, "epochs", epochs(ARCHS, B200, hp=200, dataset="cifar10", seed=-1, last_only=True,
                                         status="imported"),
                     metadata=S.provenance("epochs", dataset_fingerprint="NATS-Bench:cifar10"))
    W.write_fragment(b, "archs", archs_rows("cifar10", ARCHS + 1.0, 10.0 * (ARCHS + 1)), metadata=S.provenance("archs"))
    results = tmp / "results"
    write_runs(results, pd.concat([run_rows(s, seed, t, best) for (s, seed), (t, best, _) in HAND_RUNS.items()]),
               runs_meta("hand", a))
    write_oneshot(results, a)
    return {"a": a, "b": b, "results": results, "tmp": tmp}


@pytest.fixture(scope="module")
def report(hand):
    return build_report([hand["results"]], [str(hand["a"]), str(hand["b"])])


def cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run_cli(report_main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# --- the tables, by hand ----------------------------------------------------------------------------------
def test_every_table_is_there_and_described(report):
    assert set(report.tables) == set(TABLES)
    assert all(isinstance(t, pd.DataFrame) for t in report.tables.values())


def test_each_runs_final_value_is_interpolated_at_the_budget_as_nats_bench(report):
    runs = report.tables["runs"].set_index(["searcher", "run_seed"])
    hand = runs.loc[runs["experiment"] == "hand"]
    for key, (times, _, expected) in HAND_RUNS.items():
        assert hand.loc[key, "final"] == pytest.approx(expected), key
        assert hand.loc[key, "regret"] == pytest.approx(95.0 - expected)
        assert hand.loc[key, "sim_time_s"] == times[-1] and hand.loc[key, "evaluations"] == 3


def test_the_final_table_by_hand(report):
    final = report.tables["final"].set_index("label")
    for searcher in ("random", "rea"):
        values = np.array([v for (s, _), (_, _, v) in HAND_RUNS.items() if s == searcher])
        row = final.loc[searcher]
        assert row["runs"] == 3 and row["seeds"] == "0..2"
        assert row["final_mean"] == pytest.approx(values.mean())
        assert row["final_std"] == pytest.approx(np.sqrt(((values - values.mean()) ** 2).mean()))  # ddof 0
        assert (row["final_min"], row["final_max"]) == (pytest.approx(values.min()), pytest.approx(values.max()))
        assert row["best_in_table"] == 95.0 and row["regret_mean"] == pytest.approx(95.0 - values.mean())
        assert row["evaluations_mean"] == 3
    assert final.loc["random", "sim_time_s_mean"] == pytest.approx((110 + 120 + 105) / 3)
    assert final.loc["rea", "sim_time_s_mean"] == pytest.approx((150 + 130 + 150) / 3)
    assert final.loc["random", "wall_time_s_median"] == pytest.approx(0.03)
    # the one-shot search: its last epoch's derived architectures (95, 92, 90)
    assert final.loc["darts-v2", "final_mean"] == pytest.approx(92 + 1 / 3)
    assert final.loc["darts-v2", "panel"] == "tss/digits · 3 search epochs · test_acc at hp=12"
    assert final.loc["rea", "panel"] == "tss/digits · 100 s budget · test_acc at hp=12"  # one store: not named


def test_significance_is_mann_whitney_with_holm(report):
    sig = report.tables["significance"]
    hand = sig[sig["panel"].str.contains("100 s budget")]
    assert len(hand) == 1
    row = hand.iloc[0]
    assert (row["a"], row["b"], row["runs_a"], row["runs_b"]) == ("random", "rea", 3, 3)
    # every random run ends below every REA run: U = 0, exact two-sided p = 2 / C(6, 3) = 0.1; one pair, Holm = p
    assert row["u"] == 0 and row["p_value"] == pytest.approx(0.1) and row["p_holm"] == pytest.approx(0.1)
    assert not row["significant"]


def test_holm_and_the_spread_rule_by_hand():
    assert stats.holm(np.array([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])
    np.testing.assert_allclose(stats.holm(np.array([0.5, np.nan, 0.2])), [0.5, np.nan, 0.4])
    few = np.array([[10.0, 1.0], [97.0, 2.0], [98.0, np.nan]])
    mean, low, high, n = stats.spread(few)
    assert mean == pytest.approx([68.333333, 1.5]) and list(low) == [10, 1] and list(high) == [98, 2]
    assert list(n) == [3, 2] and stats.band_name(3) == "min-max"  # never 68 +- 41, which leaves 0..100
    many = np.arange(1.0, 12.0)[:, None]  # 11 runs: the 10th to 90th percentile
    _, low, high, _ = stats.spread(many)
    assert (low[0], high[0]) == (2.0, 10.0) and stats.band_name(11) == "10th-90th percentile"
    assert stats.seed_ranges([4, 0, 1, 2, 7, 9, 10]) == "0..2, 4, 7, 9..10"


def test_curves_show_the_incumbent_at_each_moment(report):
    curves = report.tables["curves"]
    hand = curves[curves["panel"].str.contains("100 s budget")]
    x = hand["x"].unique()
    assert x[0] == pytest.approx(40.0) and x[-1] == pytest.approx(100.0)  # every run has an incumbent at 40 s
    at = hand.set_index(["label", "run_seed", "x"])["test_acc"]
    assert at[("random", 0, x[0])] == 90 and at[("random", 0, x[-1])] == 92  # events at 10 s and 60 s
    assert at[("rea", 2, x[-1])] == 95  # the event at the budget counts
    bands = report.tables["curve_bands"]
    last = bands[(bands["label"] == "random") & np.isclose(bands["x"], 100)].iloc[0]
    assert (last["runs"], last["mean"], last["low"], last["high"], last["band"]) == (3, 92, 91, 93, "min-max")


def test_oneshot_epochs_and_bands(report):
    per_epoch = report.tables["oneshot_epochs"]
    assert len(per_epoch) == 9 and set(per_epoch["label"]) == {"darts-v2"}
    third = per_epoch[per_epoch["epoch"] == 3].set_index("run_seed")
    assert list(third["test_acc"]) == [95, 92, 90] and list(third["rank"]) == [1, 4, 6]
    band = report.tables["oneshot_bands"].set_index("epoch").loc[3]
    assert (band["mean"], band["low"], band["high"]) == (pytest.approx(92 + 1 / 3), 90, 95)


def test_diagnostics_by_hand(report):
    t = report.tables
    names = list(t["benchmark_tables"]["table"])
    assert names == ["tss/digits hp=4 (bench_a)", "tss/digits hp=12 (bench_a)", "tss/cifar10 hp=200 (bench_b)"]
    costs = t["costs"].set_index("table")
    assert costs.loc["tss/digits hp=12 (bench_a)", ["params_m_kendall", "flops_m_kendall"]].tolist() == \
        pytest.approx([1, -1])
    assert costs.loc["tss/digits hp=4 (bench_a)", ["params_m_kendall", "flops_m_kendall"]].tolist() == \
        pytest.approx([-1, 1])
    # bench_b's 70, 75, 72, 80, 78, 85 against 1..6: two of 15 pairs discordant
    assert costs.loc["tss/cifar10 hp=200 (bench_b)", "params_m_kendall"] == pytest.approx(11 / 15)
    assert costs.loc["tss/cifar10 hp=200 (bench_b)", "params_m_spearman"] == pytest.approx(1 - 6 * 4 / 210)
    assert (costs["cost_source"] == "measured (the store's archs)").all()
    pairs = t["rank_pairs"].set_index(["reference", "other"])
    assert pairs.loc[("tss/digits hp=12 (bench_a)", "tss/digits hp=4 (bench_a)"), "kendall"] == pytest.approx(-1)
    b_vs_a = pairs.loc[("tss/cifar10 hp=200 (bench_b)", "tss/digits hp=12 (bench_a)")]
    assert (b_vs_a["archs"], b_vs_a["kendall"], b_vs_a["spearman"]) == (6, pytest.approx(11 / 15),
                                                                        pytest.approx(1 - 6 * 4 / 210))
    valid = t["valid_test"].set_index("table").loc["tss/digits hp=12 (bench_a)"]
    assert valid["kendall"] == pytest.approx(13 / 15) and valid["spearman"] == pytest.approx(1 - 6 * 2 / 210)
    recipes = t["recipes"]
    assert list(recipes["epoch"]) == [1, 2, 3, 4] and list(recipes["kendall"]) == pytest.approx([1, 1, 1, -1])
    assert set(recipes["short_hp"]) == {4} and set(recipes["long_hp"]) == {12}


def test_topk_over_the_reference_tables_best(report):
    from orchestrator.report import diagnostics

    b_vs_a = [p for p in report.pairs if p[0].store == "bench_b" and p[1].hp == 12]
    top = diagnostics.topk(b_vs_a, ks=(3,)).set_index("k")
    # bench_b's best three are archs 5, 3, 4 (85, 80, 78); on hp=12 they score 95, 93, 94
    assert top.loc[3, "kendall"] == pytest.approx(1 / 3) and top.loc[3, "spearman"] == pytest.approx(0.5)
    assert top.loc[6, "all"] and top.loc[6, "kendall"] == pytest.approx(11 / 15)


def test_provenance_names_files_versions_knobs_and_seeds(report, hand):
    inputs = report.tables["inputs"].set_index("experiment")
    files = sorted((hand["results"] / "runs" / "experiment=hand").glob("*.parquet"))
    assert inputs.loc["hand", "files"] == " ".join(map(str, files))
    assert inputs.loc["hand", "schema_version"] == S.SCHEMA_VERSION and inputs.loc["hand", "scored_on"] == "bench_a"
    assert inputs.loc["hand", "seeds"] == "0..2" and inputs.loc["hand", "budget"] == "100 s budget"
    knobs = report.tables["knobs"].set_index(["experiment", "searcher"])["knobs"]
    assert json.loads(knobs[("hand", "rea")]) == {"population_size": 10}
    tables = report.tables["benchmark_tables"].set_index("table")
    assert tables.loc["tss/digits hp=12 (bench_a)", "recipe_hash"] == "abc"


# --- files ---------------------------------------------------------------------------------------------------
def test_rerun_gives_byte_identical_files(hand, tmp_path):
    first = build_report([hand["results"]], [str(hand["a"]), str(hand["b"])]).write(tmp_path / "one")
    second = build_report([hand["results"]], [str(hand["a"]), str(hand["b"])]).write(tmp_path / "two")
    names = sorted(p.relative_to(tmp_path / "one").as_posix() for p in first)
    assert names == sorted(p.relative_to(tmp_path / "two").as_posix() for p in second)
    assert {"figures/searches.png", "figures/oneshot.png", "figures/costs.png", "figures/rank_pairs.png",
            "figures/topk.png", "figures/valid_test.png", "figures/recipes.png", "report.html",
            "report.md"} <= set(names)
    assert {f"tables/{name}.csv" for name in TABLES} <= set(names)
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    png = (tmp_path / "one" / "figures" / "searches.png").read_bytes()
    assert b"Software" not in png and b"matplotlib" not in png.lower()


def test_the_page_embeds_every_figure_and_the_markdown_links_them(report, tmp_path):
    paths = report.write(tmp_path / "r")
    pngs = sorted(p for p in paths if p.suffix == ".png")
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == len(pngs) == 7
    assert "http" not in page and "<script" not in page  # opens offline
    md = (tmp_path / "r" / "report.md").read_text()
    assert all(f"](figures/{p.name})" in md for p in pngs)
    assert "two-sided Mann-Whitney U" in page and "Holm" in page


def test_a_rerun_with_fewer_figures_removes_the_earlier_ones(hand, tmp_path):
    out = tmp_path / "r"
    build_report([hand["results"]], [str(hand["a"])]).write(out)
    assert (out / "figures" / "costs.png").exists()
    build_report([hand["results"]], []).write(out)
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["oneshot.png", "searches.png"]
    assert "no --benchmark given" in (out / "report.md").read_text()


# --- results that do not belong, and other bad input ----------------------------------------------------------
def write_raw(folder: Path, table, meta: dict[str, str]) -> Path:
    """A runs fragment written as is (the writer refuses what these tests need: an empty file, another version)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{1:020d}-{'0' * 16}.parquet"
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


def test_a_results_file_of_a_newer_schema_version_is_refused(hand, tmp_path, capsys):
    source = next((hand["results"] / "runs" / "experiment=hand").glob("*.parquet"))
    table = pq.read_table(source)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    write_raw(tmp_path / "runs" / "experiment=new", table, {**meta, "schema_version": "1.9"})
    code, out, err = cli(capsys, tmp_path, "--out", tmp_path / "report")
    assert code == 2 and not out and not (tmp_path / "report").exists()
    assert err.startswith("error: ") and f"has schema_version 1.9, newer than this code's {S.SCHEMA_VERSION}" in err
    assert "upgrade natsflow" in err


def test_empty_results_are_refused(tmp_path, capsys):
    empty = S.SCHEMAS["runs"].empty_table().drop_columns(["experiment"])
    write_raw(tmp_path / "zero" / "runs" / "experiment=e", empty, S.provenance("runs"))
    code, _, err = cli(capsys, tmp_path / "zero", "--out", tmp_path / "r")
    assert code == 2 and "experiment e has no runs rows" in err
    (tmp_path / "nothing").mkdir()
    code, _, err = cli(capsys, tmp_path / "nothing", "--out", tmp_path / "r")
    assert code == 2 and "holds no runs table (no runs/experiment=NAME/ folder)" in err
    assert not (tmp_path / "r").exists()


def test_results_of_another_benchmark_are_refused_saying_why(hand, tmp_path, capsys):
    code, _, err = cli(capsys, hand["results"], "--benchmark", hand["b"], "--out", tmp_path / "r")
    assert code == 2 and "experiment hand" in err and "did not run on the --benchmark given" in err
    assert "it holds no tss/digits (it holds tss/cifar10)" in err and f"Its files say it ran on {hand['a']}" in err
    other = write_store(tmp_path / "other_data", fingerprint="fp-other")
    code, _, err = cli(capsys, hand["results"], "--benchmark", other, "--out", tmp_path / "r")
    assert code == 2 and "record dataset fingerprint fp-other, the runs fp-digits" in err
    retrained = write_store(tmp_path / "retrained", test12=TEST12 - 1)  # same data, other trainings
    code, _, err = cli(capsys, hand["results"], "--benchmark", retrained, "--out", tmp_path / "r")
    assert code == 2 and "final values differ, e.g. arch 0: 90.00 % in the runs, 89.00 % in the store" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, message", [
    ([], "nothing to report: give results"),
    (["missing-folder"], "results missing-folder do not exist"),
    (["--benchmark", "missing-store"], "store folder missing-store does not exist"),
    (["--bench", "embedded"], "unrecognized arguments: --bench;"),  # no abbreviations, as every CLI here
    (["--quiet=yes"], "argument --quiet: ignored explicit argument 'yes'"),
])
def test_bad_input_is_one_error_line(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, *args)
    assert code == 2 and not out and err.startswith("error: ") and message in err, err
    assert "Traceback" not in err and not (tmp_path / "results").exists()


def test_a_file_of_another_table_or_an_out_that_is_a_file(hand, tmp_path, capsys):
    epochs_file = next((hand["a"] / "epochs").rglob("*.parquet"))
    code, _, err = cli(capsys, epochs_file, "--out", tmp_path / "r")
    assert code == 2 and "is a file of the 'epochs' table, not of 'runs'" in err
    (tmp_path / "taken").write_text("")
    code, _, err = cli(capsys, hand["results"], "--out", tmp_path / "taken")
    assert code == 2 and "is a file; give a folder" in err


def test_help_says_what_it_draws_and_each_default(capsys):
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and "python -m orchestrator.report" in out and "(default results/report)" in out
    assert "byte-identical PNGs" in out and "--benchmark STORE" in out


# --- surrogate predictions are said wherever they were used ----------------------------------------------------------
def test_surrogate_values_are_labelled_in_tables_and_on_every_figure_that_used_them(hand, tmp_path):
    store = shutil.copytree(hand["a"], tmp_path / "bench_s")
    predicted = epochs([6, 7], [96.0, 89.0], [86.0, 79.0], hp=12, seed=S.SURROGATE_SEED, status=S.SURROGATE_STATUS)
    W.write_fragment(store, "surrogate", predicted, metadata=S.provenance(
        "surrogate", extra={"surrogate_model": MODEL, "surrogate_cv": json.dumps(CV)}))
    values = np.concatenate([TEST12, [96.0, 89.0]])
    rows = pd.concat([run_rows("random", 0, [1, 2, 3], [0, 6, 6], budget_s=None, budget_evals=3, values=values,
                               experiment="sur", surrogate=[False, True, False], best_surrogate=[False, True, True]),
                      run_rows("random", 1, [1, 2, 3], [1, 2, 5], budget_s=None, budget_evals=3, values=values,
                               experiment="sur")])
    write_runs(tmp_path / "out", rows, runs_meta("sur", store, surrogate=json.dumps({"model": MODEL, "cv": CV})))
    report = build_report([tmp_path / "out"], [str(store)])
    final = report.tables["final"].iloc[0]
    assert final["surrogate_final_values"] == 0.5 and final["surrogate_evaluations"] == pytest.approx(1 / 6)
    assert final["best_in_table"] == 96.0  # the table's best is a prediction, as the search saw it
    t = report.tables
    by_table = t["benchmark_tables"].set_index("table")["surrogate_archs"]
    assert by_table["tss/digits hp=12 (bench_s)"] == 2 and by_table["tss/digits hp=4 (bench_s)"] == 0
    assert t["valid_test"].set_index("table").loc["tss/digits hp=12 (bench_s)", "surrogate_archs"] == 2
    assert (t["costs"]["surrogate_archs"] == 0).all() and (t["rank_pairs"]["surrogate_archs"] == 0).all()
    report.write(tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text()
    captions = dict(re.findall(r'<figure id="(\w+)">.*?<figcaption>(.*?)</figcaption>', page))
    said = "2 of 8 architectures of tss/digits hp=12 (bench_s) are surrogate predictions (extra-trees"
    assert said in captions["valid_test"] and "CV Kendall tau 0.71" in captions["valid_test"]
    assert "random: 17 % of evaluations, 50 % of final values predicted" in captions["searches"]
    assert "Experiment sur used surrogate predictions: extra-trees" in captions["searches"]
    for name in ("costs", "rank_pairs", "topk", "recipes"):  # drawn from trained architectures only
        assert "surrogate" not in captions[name], name


def test_a_figure_footnote_carries_the_surrogate_notes():
    from orchestrator.report import figures

    bands = pd.DataFrame({"panel": "p", "label": "rea", "x": [1.0, 2.0], "runs": 2, "mean": 90.0, "low": 89.0,
                          "high": 91.0, "band": "min-max"})
    runs = pd.DataFrame({"panel": "p", "label": "rea", "run_seed": [0, 0, 1, 1], "x": [1.0, 2, 1, 2],
                         "x_unit": "evaluations", "test_acc": [89.0, 89, 91, 91]})
    fig = figures.over_search(bands, runs, "x", "evaluations", "acc", {"rea": "tab:blue"},
                              {"p": ["surrogate: rea: 10 % of evaluations"]}, log_x=True, extra=["model line"])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [fig.get_supxlabel()]
    assert "surrogate: rea: 10 % of evaluations" in texts and "model line" in fig.get_supxlabel()


# --- real searches through the CLI and the store ----------------------------------------------------------
@pytest.fixture(scope="module")
def full_store(tmp_path_factory) -> Path:
    """A whole topology table (hp=3), its accuracy a known function of the cell, as a real one has."""
    from sim_fixtures import synthetic_table

    task = synthetic_table(seeds=1, epochs=3)
    a, e = np.meshgrid(np.arange(TSS.size), np.arange(1, 4), indexing="ij")
    valid = task.feedback[:, 0, :].ravel()
    rows = pd.DataFrame({"space": "tss", "dataset": "digits", "hp": 3, "arch_index": a.ravel(), "seed": 0,
                         "epoch": e.ravel(), "valid_acc": valid, "test_acc": np.repeat(task.final, 3) - (3 - e.ravel()),
                         "epoch_time_s": task.train_time[:, 0, :].ravel(), "eval_time_s": 0.5, "status": "ok"})
    root = tmp_path_factory.mktemp("full")
    W.write_fragment(root, "epochs", rows, metadata=S.provenance("epochs", dataset_fingerprint="fp-synthetic"))
    return root


def test_simulate_then_report_through_the_cli(full_store, tmp_path):
    out = tmp_path / "out"
    sim = subprocess.run([sys.executable, "orchestrate.py", "simulate", "--searcher", "all", "--runs", "3", "--store",
                          str(full_store), "--out", str(out), "--experiment", "e2e", "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert sim.returncode == 0, sim.stderr
    r = subprocess.run([sys.executable, "-m", "orchestrator.report", str(out), "--benchmark", str(full_store),
                        "--out", str(tmp_path / "report")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert f"report: {tmp_path / 'report' / 'report.html'} (2 figure(s), {len(TABLES)} tables" in r.stdout
    final = pd.read_csv(tmp_path / "report" / "tables" / "final.csv").set_index("label")
    # the simulator's own summary (orchestrator.experiment.summarize) printed the same values
    printed = {m[0]: (float(m[1]), float(m[2])) for m in
               re.findall(r"^(\w+)\s+digits\s+3\s+([\d.]+)\s+([\d.]+)", sim.stdout, flags=re.M)}
    assert set(printed) == {"bohb", "random", "rea", "reinforce", "tpe"} == set(final.index)
    for name, (mean, std) in printed.items():
        assert f"{final.loc[name, 'final_mean']:.2f}" == f"{mean:.2f}"
        assert f"{final.loc[name, 'final_std']:.2f}" == f"{std:.2f}"
    # one recipe, no costs: the store's own diagnostics are its validation against test accuracy
    assert sorted(p.name for p in (tmp_path / "report" / "figures").iterdir()) == ["searches.png", "valid_test.png"]


# --- the real NATS-Bench CIFAR-10 table -------------------------------------------------------------------
@pytest.fixture(scope="module")
def cifar10_store(tmp_path_factory) -> Path:
    if not CSV.exists():
        pytest.skip(f"{CSV} is absent")
    store = tmp_path_factory.mktemp("nats-cifar10")
    r = subprocess.run([sys.executable, "-m", "benchmark_data", "import", str(CSV), "--store", str(store),
                        "--dataset", "cifar10", "--hp", "200", "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return store


def test_the_real_cifar10_table_against_the_embedded_benchmark(cifar10_store):
    report = build_report([], ["embedded", str(cifar10_store)])
    t = report.tables
    name = f"tss/cifar10 hp=200 ({cifar10_store.name})"
    tables = t["benchmark_tables"].set_index("table")
    assert tables.loc[name, "archs"] == 15625 and tables.loc[name, "best_test_acc"] == pytest.approx(94.37, abs=0.005)
    costs = t["costs"].set_index("table").loc[name]
    assert costs["cost_source"].startswith("computed (topology cost table, C=16, N=5")  # the import has no costs
    # NATS-Bench's published range: 0.073 to 1.531 M parameters, 7.8 to 220 M FLOPs
    assert (costs["params_m_min"], costs["params_m_max"]) == (pytest.approx(0.0733, abs=1e-3),
                                                              pytest.approx(1.5315, abs=1e-3))
    assert (costs["flops_m_min"], costs["flops_m_max"]) == (pytest.approx(7.78, abs=0.01),
                                                            pytest.approx(220.1, abs=0.1))
    pairs = t["rank_pairs"].set_index(["reference", "other"])
    digits = pairs.loc[(name, "tss/digits hp=12 (embedded)")]
    assert digits["archs"] == 15625 and 0 < digits["kendall"] < digits["spearman"] < 1
    assert t["valid_test"]["table"].str.contains("cifar10").sum() == 0  # the published table has no validation split


# --- the page in a browser ------------------------------------------------------------------------------------
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
# Appended to a copy of the page only (the page itself has no script): how many images decoded.
PROBE = ("<script>window.addEventListener('load', () => { const i = [...document.images]; document.title = "
         "'decoded ' + i.filter(x => x.complete && x.naturalWidth > 0).length + ' of ' + i.length; });</script>")


@pytest.mark.slow  # starts a browser: ~5-20 s
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_the_page_renders_in_headless_chromium_and_shows_every_figure(report, tmp_path):
    import matplotlib.image

    paths = report.write(tmp_path / "r")
    figures_written = [p for p in paths if p.suffix == ".png"]
    page = tmp_path / "r" / "report.html"
    probe = tmp_path / "r" / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    n = len(figures_written)
    assert f"<title>decoded {n} of {n}</title>" in dom.stdout, re.findall(r"<title>.*?</title>", dom.stdout)
    shot = tmp_path / "shot.png"
    r = subprocess.run([*flags, "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.std() > 0.05  # text and figures, not a blank or error page
    assert "Uncaught" not in r.stderr and "Failed to load" not in r.stderr


# --- the README's report command ----------------------------------------------------------------------------
def readme_report_commands() -> list[list[str]]:
    """The ``python -m orchestrator.report`` lines of the README's Reports section, as argv."""
    import shlex

    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Reports\n", 1)[1].split("\n## ", 1)[0]
    lines = [re.sub(r"\s#.*$", "", line).strip() for block in re.findall(r"```\w*\n(.*?)```", section, flags=re.S)
             for line in block.replace("\\\n", " ").splitlines()]
    return [shlex.split(line)[3:] for line in lines if line.startswith("python -m orchestrator.report")]


def test_the_readme_report_command_runs_as_written(hand, tmp_path, capsys):
    """The README's results and stores replaced by the hand fixtures (runs, oneshot runs, the digits and
    CIFAR-10 stores), every flag as written."""
    (command,) = readme_report_commands()
    stores = iter([hand["a"], hand["b"]])
    argv, i = [], 0
    while i < len(command):
        if command[i] == "--benchmark":
            argv += ["--benchmark", next(stores)]
            i += 2
        elif command[i] == "--out":
            argv += ["--out", tmp_path / "report"]
            i += 2
        else:
            argv.append(command[i] if command[i].startswith("-") else hand["results"])
            i += 1
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    assert (tmp_path / "report" / "figures" / "oneshot.png").exists() and "report:" in out
