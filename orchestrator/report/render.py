"""Writing a report: its figures from its tables, the page's sections and captions, the files.

``OUT/figures/NAME.png`` and ``OUT/tables/NAME.csv`` (one per table of ``TABLES``; the report's
earlier PNG and CSV files there are removed first, so the folder never mixes two reports),
``OUT/report.html`` and ``OUT/report.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark_data import schema as S
from spaces.errors import UserError

from . import diagnostics, figures, stats
from .page import Figure, Section, Table, write_html, write_markdown

TITLE = "natsflow report"


def _surrogate_notes(report, panels) -> tuple[dict[str, list[str]], list[str]]:
    """For the figure of ``panels``: per panel, the labels whose evaluations or final values were
    predictions, and the lines naming the models of the experiments drawn there."""
    final = report.tables["final"]
    per_panel: dict[str, list[str]] = {}
    for r in final[final["panel"].isin(panels)].itertuples():
        if r.surrogate_evaluations > 0 or r.surrogate_final_values > 0:
            per_panel.setdefault(r.panel, []).append(
                f"surrogate: {r.label}: {100 * r.surrogate_evaluations:.0f} % of evaluations, "
                f"{100 * r.surrogate_final_values:.0f} % of final values predicted")
    runs = report.tables["runs"]
    drawn = set(runs.loc[runs["panel"].isin(panels), "experiment"])
    models = [f"Experiment {row.experiment} used surrogate predictions: {row.surrogate}."
              for row in report.tables["inputs"].itertuples() if row.surrogate and row.experiment in drawn]
    return per_panel, models


def _search_sections(report, folder: Path) -> list[Section]:
    t = report.tables
    out = []
    if not t["curve_bands"].empty:
        per_panel, models = _surrogate_notes(report, set(t["curve_bands"]["panel"]))
        fig = figures.over_search(t["curve_bands"], t["curves"], "x", "simulated s",
                                  "test accuracy of the incumbent (%)", figures.palette(t["curve_bands"]["label"]),
                                  per_panel, log_x=True, extra=models)
        caption = ("The incumbent (the architecture with the best feedback so far) and its test accuracy under the "
                   "final recipe, against the simulated time charged so far (log axis), or against the evaluations "
                   "on an evaluation budget, from the moment every run of the panel has an incumbent: at each moment "
                   "the incumbent of the last completed evaluation (the final table interpolates at the budget as "
                   "NATS-Bench's draw-table.py does; between events that can leave 0-100 %, so the curves do not). "
                   f"Line: the mean over runs; band: {_band_words()}. One panel per space, dataset and budget "
                   "(Figure 5.6).")
        out.append(Section("Searches over time", figures=[_save(fig, folder, "searches", "Test accuracy of the "
                                                                "searched architecture over the search",
                                                                _with(caption, models, per_panel))]))
    if not t["oneshot_bands"].empty:
        per_panel, models = _surrogate_notes(report, set(t["oneshot_bands"]["panel"]))
        fig = figures.over_search(t["oneshot_bands"], t["oneshot_epochs"], "epoch", "search epoch",
                                  "derived architecture's test acc. (%)", figures.palette(t["oneshot_bands"]["label"]),
                                  per_panel, log_x=False,
                                  extra=models, per_label=True)
        caption = ("After every search epoch, the architecture a one-shot search derives and its test accuracy in "
                   "the benchmark under the final recipe (the search never sees it). "
                   f"One panel per algorithm, each on its own scale. Line: the mean over seeds; band: {_band_words()} "
                   "(Figure 5.7).")
        out.append(Section("One-shot searches", figures=[_save(fig, folder, "oneshot", "Accuracy of the derived "
                                                               "architecture per search epoch",
                                                               _with(caption, models, per_panel))]))
    if not t["final"].empty:
        final = t["final"]
        _, models = _surrogate_notes(report, set(final["panel"]))
        if not (final["surrogate_evaluations"] > 0).any() and not (final["surrogate_final_values"] > 0).any():
            final = final.drop(columns=["surrogate_evaluations", "surrogate_final_values"])
        sig = t["significance"]
        out.append(Section("Final results", tables=[
            Table("final", "Final test accuracy per searcher", (
                "Final value of a run: on a time budget the incumbent's test accuracy interpolated at the budget "
                "between the two events nearest to it, on an evaluation budget and for a one-shot search the last "
                "event's (orchestrator.protocol, as NATS-Bench's draw-table.py). Mean, std over runs with ddof 0 "
                "(NATS-Bench), min and max; regret = the table's best final value minus the mean; times: the "
                "simulated time used (mean) and the wall time of a run (median)."
                + (" " + " ".join(models) if models else "")), final, by="panel"),
            Table("significance", "Pairwise significance", (
                f"{stats.TEST_NAME} test of the runs' final values for every pair of searchers of a panel; p values "
                f"corrected for the panel's number of pairs with {stats.CORRECTION_NAME}'s step-down method; "
                f"significant: corrected p < {stats.ALPHA}. With 3 runs against 3 the smallest two-sided p is 0.1, "
                "so few runs cannot show a difference."), sig, by="panel")]))
    return out


def _band_words() -> str:
    lo, hi = stats.BAND_QUANTILES
    return (f"the minimum to the maximum of {stats.FEW_RUNS} runs or fewer (each run drawn thin), the "
            f"{100 * lo:.0f}th to {100 * hi:.0f}th percentile of more; never beyond the values drawn")


def _with(caption: str, models: list[str], per_panel: dict[str, list[str]]) -> str:
    lines = [caption] + models + [f"{panel}: {'; '.join(n.removeprefix('surrogate: ') for n in notes)}."
                                  for panel, notes in per_panel.items()]
    return " ".join(lines)


def _diagnostic_sections(report, folder: Path) -> list[Section]:
    t = report.tables
    if not report.bench:
        return []
    section = Section("Benchmark diagnostics", text=[
        f"Tables of the --benchmark stores: {', '.join(b.name for b in report.bench)}. A table's value of an "
        "architecture is its test accuracy at the recipe's last epoch, the mean over its seeds. Rank agreement: "
        "Kendall tau-b and Spearman rho over the architectures both sides hold."])
    if report.cost_arrays:
        fig = figures.costs_figure(report.bench, report.cost_arrays, t["costs"])
        section.figures.append(_save(fig, folder, "costs", "Accuracy against parameters and FLOPs",
                                     " ".join(["Every architecture's test accuracy against its parameters and "
                                               "FLOPs (Figure 5.3)."] + _costs_sources(t["costs"])
                                              + figures.cost_notes(report.bench, report.cost_arrays))))
    if report.pairs:
        notes = diagnostics.pair_notes(report.pairs)
        fig = figures.rank_pairs_figure(report.pairs, t["rank_pairs"])
        section.figures.append(_save(fig, folder, "rank_pairs", "Rank on one table against rank on another",
                                     " ".join(["Each architecture's rank on the reference table (the longer recipe) "
                                               "against its rank on the other, over the architectures both hold "
                                               "(Figure 5.2)."] + notes)))
        fig = figures.topk_figure(t["topk"], notes)
        section.figures.append(_save(fig, folder, "topk", "Correlation between tables, all and top k",
                                     " ".join(["Kendall tau and Spearman rho between two tables over the reference "
                                               "table's k best architectures (Figure 5.5); the last point is every "
                                               "architecture both hold."] + notes)))
    if not t["valid_test"].empty:
        notes = [n for n in (b.surrogate_note(np.isfinite(b.valid) & np.isfinite(b.final))
                             for b in report.bench if b.valid is not None) if n]
        fig = figures.valid_test_figure(report.bench, t["valid_test"])
        section.figures.append(_save(fig, folder, "valid_test", "Validation against test accuracy",
                                     " ".join(["Each architecture's validation accuracy against its test accuracy, "
                                               "with Kendall tau and Spearman rho (Figure 5.4)."] + notes)))
    if not t["recipes"].empty:
        notes = diagnostics.pair_notes(diagnostics.recipe_pairs(report.bench))
        fig = figures.recipes_figure(t["recipes"], notes)
        section.figures.append(_save(fig, folder, "recipes", "A short recipe against a long one",
                                     " ".join(["After each epoch of the shorter recipe, how its feedback (validation "
                                               "accuracy, as a search sees it) ranks the architectures against the "
                                               "longer recipe's final test accuracy."] + notes)))
    section.tables += [
        Table("costs", "Accuracy and costs", "Rank agreement of test accuracy with parameters and with FLOPs, and "
              "where the costs come from.", t["costs"]),
        Table("rank_pairs", "Rank agreement between tables", "Over every architecture both tables hold.",
              t["rank_pairs"]),
        Table("topk", "Rank agreement over the top k", "Over the reference table's k best architectures.",
              t["topk"]),
        Table("valid_test", "Validation against test accuracy", "Per table with a validation accuracy.",
              t["valid_test"]),
        Table("recipes", "Short against long recipe", "Per epoch of the shorter recipe.", t["recipes"])]
    return [section]


def _costs_sources(rows: pd.DataFrame) -> list[str]:
    return [f"Costs of {r.table}: {r.cost_source}." for r in rows.itertuples()]


def _provenance_section(report) -> Section:
    t = report.tables
    return Section("Provenance", text=[f"Tables as CSV: tables/NAME.csv ({', '.join(t)})."], tables=[
        Table("inputs", "Results read", "Files (with the first 16 hex digits of their SHA-256), the versions and "
              "the benchmark their metadata record, and the store that scored them.", t["inputs"]),
        Table("knobs", "Searcher meta-hyperparameters", "As the runs files record them, defaults resolved.",
              t["knobs"]),
        Table("benchmark_tables", "Benchmark tables", "The --benchmark stores' tables and their newest files' "
              "provenance.", t["benchmark_tables"])])


def _save(fig, folder: Path, name: str, title: str, caption: str) -> Figure:
    return Figure(name, title, caption, figures.save(fig, folder / f"{name}.png"))


def write_report(report, out: Path) -> list[Path]:
    from . import TABLES

    out = out.expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder (it is created when missing)")
    fig_dir, table_dir = out / "figures", out / "tables"
    for folder, suffix in ((fig_dir, ".png"), (table_dir, ".csv")):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"*{suffix}"):
            old.unlink()
    written = []
    for name in TABLES:
        path = table_dir / f"{name}.csv"
        report.tables[name].to_csv(path, index=False)
        written.append(path)
    sections = _search_sections(report, fig_dir) + _diagnostic_sections(report, fig_dir) + \
        [_provenance_section(report)]
    written += [f.path for s in sections for f in s.figures]
    code = S.provenance("runs")["code_version"]
    header = [f"Made by natsflow {code} (schema {S.SCHEMA_VERSION}) from {len(report.experiments)} experiment(s) "
              f"and {len(report.stores)} benchmark store(s)."] + [f"Note: {n}." for n in report.notes]
    written.append(write_html(out / "report.html", TITLE, header, sections))
    written.append(write_markdown(out / "report.md", TITLE, header, sections))
    return written
