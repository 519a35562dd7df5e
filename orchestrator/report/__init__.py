"""Analysis and reports: the NATS-Bench figures and tables of any ``runs`` results, in one command.

    python -m orchestrator.report RESULTS... [--benchmark STORE ...] [--out DIR]

From Python, ``build_report(results, benchmarks)`` returns a ``Report`` whose ``tables`` holds one
pandas DataFrame per table (``TABLES`` says what each is; every key is always present, empty
where the inputs have nothing for it), and ``Report.write(out)`` draws the PNG figures and writes
``report.html`` (self-contained), ``report.md``, ``figures/*.png`` and ``tables/*.csv``.

Modules: ``inputs`` (results and stores, the checks that they belong together), ``searches``
(final values, final table, significance, curves over the search: Figure 5.6), ``oneshot``
(derived architectures per epoch: Figure 5.7), ``diagnostics`` (the benchmark's own figures
5.2-5.5 and recipes), ``stats`` (rank agreement, spread, test and correction), ``figures``
(drawing, deterministic PNGs) and ``page`` (HTML and Markdown). Figures are drawn from the tables
only, so what a test checks in a table is what the figure shows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spaces.errors import UserError

from . import diagnostics, oneshot, searches, stats
from .inputs import Experiment, Scored, Store, match, open_stores, read_results

TABLES = {
    "inputs": "one row per experiment: its files and their hashes, schema and code versions, the benchmark it "
              "ran on and the store that scored it, space, dataset, budget, searchers, seeds, scheduler",
    "knobs": "every searcher's meta-hyperparameters as its runs recorded them (defaults resolved)",
    "runs": "one row per run: its final value, the table's best, regret, evaluations, times, surrogate shares",
    "final": "per panel and searcher: mean +- std (ddof 0), min and max of the final test accuracy, regret, "
             "evaluations, simulated and wall time, surrogate shares, seeds",
    "significance": f"every pair of searchers of a panel: {stats.TEST_NAME} test of the final values, "
                    f"p values {stats.CORRECTION_NAME}-corrected within the panel",
    "curves": "every simulated run's incumbent test accuracy along the search (Figure 5.6's lines)",
    "curve_bands": "per panel, searcher and point: runs, mean, band low/high and what the band is",
    "oneshot_epochs": "every one-shot run's derived architecture per search epoch (Figure 5.7's lines)",
    "oneshot_bands": "per panel, algorithm and epoch: runs, mean, band low/high and what the band is",
    "benchmark_tables": "every (store, space, dataset, hp) of the --benchmark stores with its provenance",
    "costs": "per table: Kendall tau / Spearman rho of test accuracy with parameters and FLOPs (Figure 5.3)",
    "rank_pairs": "every two tables of one space: rank agreement over their common architectures (Figure 5.2)",
    "topk": "the same over the reference table's top k architectures (Figure 5.5)",
    "valid_test": "per table: validation against test accuracy (Figure 5.4)",
    "recipes": "per short and long recipe of one store: the short one's feedback after each epoch against the "
               "long one's final test accuracy",
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _surrogate_line(experiment: Experiment) -> str:
    from benchmark_data.task import describe_surrogate

    record = experiment.decoded("surrogate")
    return describe_surrogate(record.get("model"), record.get("cv")) if record else ""


def inputs_table(experiments: list[Experiment], scored: dict[str, Scored | None]) -> pd.DataFrame:
    rows = []
    for e in experiments:
        space, dataset = e.where
        s = scored.get(e.name)
        rows.append({"experiment": e.name, "files": " ".join(str(p) for p in e.files),
                     "sha256": " ".join(_sha256(p) for p in e.files),
                     "schema_version": e.meta.get("schema_version", ""), "code_version": e.meta.get("code_version", ""),
                     "created_at": e.meta.get("created_at", ""), "benchmark": e.meta.get("benchmark", ""),
                     "scored_on": s.store.label if s is not None else "", "dataset_fingerprint":
                     e.meta.get("dataset_fingerprint", ""), "space": space, "dataset": dataset,
                     "clock": e.rows["clock"].iloc[0], "budget": searches.budget_text(e),
                     "searchers": ", ".join(sorted(e.rows["searcher"].unique())),
                     "seeds": stats.seed_ranges(e.rows["run_seed"]), "scheduler": e.meta.get("scheduler", ""),
                     "workers": e.meta.get("workers", ""), "incumbent": e.meta.get("incumbent", ""),
                     "recipe": e.meta.get("recipe", ""), "surrogate": _surrogate_line(e)})
    return pd.DataFrame(rows, columns=["experiment", "files", "sha256", "schema_version", "code_version", "created_at",
                                       "benchmark", "scored_on", "dataset_fingerprint", "space", "dataset", "clock",
                                       "budget", "searchers", "seeds", "scheduler", "workers", "incumbent", "recipe",
                                       "surrogate"])


def knobs_table(experiments: list[Experiment]) -> pd.DataFrame:
    rows = []
    for e in experiments:
        knobs = e.decoded("knobs") or {}
        if e.oneshot:  # one-shot files record their settings (knobs of the strategies inside)
            knobs = {a: e.decoded("settings").get("knobs", {}) for a in sorted(e.rows["searcher"].unique())}
        for searcher in sorted(e.rows["searcher"].unique()):
            rows.append({"experiment": e.name, "searcher": searcher,
                         "knobs": json.dumps(knobs.get(searcher, {}), sort_keys=True)})
    return pd.DataFrame(rows, columns=["experiment", "searcher", "knobs"])


@dataclass
class Report:
    """The tables of a report (``TABLES``) and what is needed to draw and write it."""

    experiments: list[Experiment]
    stores: list[Store]
    scored: dict[str, Scored | None]
    tables: dict[str, pd.DataFrame]
    notes: list[str] = field(default_factory=list)
    bench: list = field(default_factory=list)        # diagnostics.BenchTable
    pairs: list = field(default_factory=list)        # (reference, other) BenchTables
    cost_arrays: dict = field(default_factory=dict)  # table name -> params_m / flops_m arrays

    def write(self, out: str | Path) -> list[Path]:
        """Figures, tables, the HTML page and the Markdown under ``out``; the paths written."""
        from .render import write_report

        return write_report(self, Path(out))


def build_report(results=(), benchmarks=()) -> Report:
    """The report of the runs under ``results`` (folders or files, see ``inputs``), scored on and
    diagnosing the ``benchmarks`` stores ("embedded" or paths); UserError for inputs that do not
    belong together (see ``inputs.match``)."""
    experiments = read_results(results)
    stores = open_stores(benchmarks)
    if not experiments and not stores:
        raise UserError("nothing to report: give results (orchestrate.py's --out folders or runs files) and/or "
                        "--benchmark STORE")
    scored = {e.name: match(e, stores) for e in experiments}
    notes = []
    if experiments and not stores:
        notes.append("no --benchmark given: no regret to the table's best and no benchmark diagnostics")
    runs = searches.run_finals(experiments, scored)
    curve_rows = searches.curves(experiments, runs)
    per_epoch = oneshot.epochs(runs, experiments)
    tables = {"inputs": inputs_table(experiments, scored), "knobs": knobs_table(experiments), "runs": runs,
              "final": searches.final_table(runs),
              "significance": searches.significance(runs), "curves": curve_rows,
              "curve_bands": searches.bands(curve_rows), "oneshot_epochs": per_epoch,
              "oneshot_bands": oneshot.epoch_bands(per_epoch)}
    bench = diagnostics.bench_tables(stores)
    pairs = diagnostics.pairs(bench)
    costs, cost_arrays = diagnostics.costs(bench, stores)
    tables.update({"benchmark_tables": diagnostics.tables_table(bench, stores), "costs": costs,
                   "rank_pairs": diagnostics.rank_pairs(pairs), "topk": diagnostics.topk(pairs),
                   "valid_test": diagnostics.valid_test(bench), "recipes": diagnostics.recipes(bench)})
    return Report(experiments, stores, scored, tables, notes, bench, pairs, cost_arrays)


def report_tables(results=(), benchmarks=()) -> dict[str, pd.DataFrame]:
    """``build_report(...).tables``: one DataFrame per table of ``TABLES``."""
    return build_report(results, benchmarks).tables
