"""Multi-trial searches: each run's final value, the final table, pairwise significance, and the
curves of the incumbent's test accuracy over the search (the thesis' Figure 5.6).

A *panel* is what may be compared: one space and dataset, one budget, one final recipe (and one
benchmark store, when the report has several). Within a panel a *label* names one searcher's runs
(``rea``, ``random+asha``, ``rea (4 workers)``; with the experiment's name in brackets where two
experiments would share a label). Final values follow NATS-Bench's reporting rules
(``orchestrator.protocol``): a time-budgeted run's value is the incumbent's test accuracy
interpolated at the budget between the two events nearest to it (``value_at``), and the std over
runs has ddof 0; an evaluation budget or a one-shot search reports its last event. The curves
show the incumbent at each moment, a step from event to event (``incumbent_at``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from .. import protocol
from . import stats
from .inputs import Experiment, Scored

CURVE_POINTS = 60  # points of a curve, evenly spaced on the log axis


def budget_text(experiment: Experiment) -> str:
    rows = experiment.rows
    seconds, evaluations = rows["budget_s"].dropna(), rows["budget_evals"].dropna()
    if experiment.oneshot:
        epochs = experiment.recipe.get("epochs") or int(rows["event"].max()) + 1
        return f"{epochs} search epochs"
    if len(seconds):
        return f"{seconds.iloc[0]:g} s budget"
    return f"{int(evaluations.iloc[0])} evaluations" if len(evaluations) else "no budget recorded"


def panel_of(experiment: Experiment, scored: Scored | None, several_stores: bool) -> str:
    space, dataset = experiment.where
    final = experiment.recipe.get("final", "test_acc")
    store = f" · on {scored.store.label}" if scored is not None and several_stores else ""
    return f"{space}/{dataset} · {budget_text(experiment)} · {final} at hp={experiment.final_hp}{store}"


def _label(searcher: str, meta: dict[str, str]) -> str:
    scheduler = meta.get("scheduler", "fifo")
    workers = int(meta.get("workers") or 1)
    return searcher + (f"+{scheduler}" if scheduler not in ("", "fifo") else "") + \
        (f" ({workers} workers)" if workers > 1 else "")


RUN_COLUMNS = ["panel", "experiment", "searcher", "label", "run_seed", "final", "best_in_table", "regret",
               "evaluations", "sim_time_s", "wall_time_s", "first_time_s", "surrogate_evaluations", "surrogate_final",
               "clock"]


def run_finals(experiments: list[Experiment], scored: dict[str, Scored | None]) -> pd.DataFrame:
    """One row per run: its panel and label, its final value (see the module docstring), the
    table's best final value and the run's regret to it, its evaluations, times and surrogate
    shares."""
    several = len({s.store.label for s in scored.values() if s is not None}) > 1
    out = []
    for exp in experiments:
        score = scored.get(exp.name)
        panel = panel_of(exp, score, several)
        best = score.task.best_final if score is not None else np.nan
        timed = score is None or score.task.has_time  # a table without times charges 0 s: no time
        clock = exp.rows["clock"].iloc[0]
        for (searcher, seed), run in exp.rows.groupby(["searcher", "run_seed"], sort=True):
            times = run["sim_time_s" if clock == "simulated" else "wall_time_s"].to_numpy(np.float64)
            acc = run["best_test_acc"].to_numpy(np.float64)
            known = (run["best_arch_index"].to_numpy() >= 0) & np.isfinite(acc)
            budget = run["budget_s"].iloc[0]
            if not known.any():
                final = np.nan
            elif clock == "simulated" and np.isfinite(budget):
                final = protocol.value_at(times[known], acc[known], float(budget))
            else:
                final = float(acc[known][-1])
            out.append({
                "panel": panel, "experiment": exp.name, "searcher": str(searcher), "label": _label(searcher, exp.meta),
                "run_seed": int(seed), "final": final, "best_in_table": best, "regret": best - final,
                "evaluations": len(run),
                "sim_time_s": float(times[-1]) if clock == "simulated" and timed else np.nan,
                "wall_time_s": float(run["wall_time_s"].max()),
                "first_time_s": float(times[known][0]) if known.any() else np.nan,
                "surrogate_evaluations": int(run["surrogate"].fillna(False).astype(bool).sum()),
                "surrogate_final": bool(pd.notna(run["best_surrogate"].iloc[-1]) and run["best_surrogate"].iloc[-1]),
                "clock": clock})
    runs = pd.DataFrame(out, columns=RUN_COLUMNS)
    # A label two experiments of one panel share gets each experiment's name.
    shared = runs.groupby(["panel", "label"])["experiment"].transform("nunique") > 1
    runs.loc[shared, "label"] = runs.loc[shared, "label"] + " [" + runs.loc[shared, "experiment"] + "]"
    return runs


FINAL_COLUMNS = ["panel", "label", "runs", "seeds", "final_mean", "final_std", "final_min", "final_max",
                 "best_in_table", "regret_mean", "evaluations_mean", "sim_time_s_mean", "wall_time_s_median",
                 "surrogate_evaluations", "surrogate_final_values"]


def final_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per panel and label: runs and seeds, mean +- std (ddof 0, as NATS-Bench) and range of the
    final values, the table's best and the mean regret to it, evaluations, simulated and wall
    time, and the shares of evaluations and of final values that were surrogate predictions."""
    rows = []
    for (panel, label), g in runs.groupby(["panel", "label"], sort=False):
        final = g["final"].to_numpy(np.float64)
        best = g["best_in_table"].iloc[0]
        rows.append({
            "panel": panel, "label": label, "runs": len(g), "seeds": stats.seed_ranges(g["run_seed"]),
            "final_mean": final.mean(), "final_std": final.std(ddof=protocol.NATS_STD_DDOF) if len(g) > 1 else np.nan,
            "final_min": final.min(), "final_max": final.max(), "best_in_table": best,
            "regret_mean": best - final.mean(),
            "evaluations_mean": g["evaluations"].mean(), "sim_time_s_mean": g["sim_time_s"].mean(),
            "wall_time_s_median": g["wall_time_s"].median(),
            "surrogate_evaluations": g["surrogate_evaluations"].sum() / g["evaluations"].sum(),
            "surrogate_final_values": g["surrogate_final"].mean()})
    table = pd.DataFrame(rows, columns=FINAL_COLUMNS)
    order = {p: i for i, p in enumerate(dict.fromkeys(runs["panel"]))}
    return table.assign(_panel=table["panel"].map(order)).sort_values(["_panel", "label"], kind="stable",
                                                                      ignore_index=True).drop(columns="_panel")


def significance(runs: pd.DataFrame, alpha: float = stats.ALPHA) -> pd.DataFrame:
    """Every pair of labels of a panel: the two-sided Mann-Whitney U test of their final values,
    its p value, and the p value Holm-corrected over the panel's pairs."""
    rows = []
    for panel, g in runs.groupby("panel", sort=False):
        finals = {label: v["final"].to_numpy(np.float64) for label, v in g.groupby("label", sort=True)}
        pairs = list(itertools.combinations(finals, 2))
        tests = [stats.mann_whitney(finals[a], finals[b]) for a, b in pairs]
        adjusted = stats.holm(np.array([p for _, p in tests]))
        for (a, b), (u, p), p_holm in zip(pairs, tests, adjusted):
            rows.append({"panel": panel, "a": a, "b": b, "runs_a": finals[a].size, "runs_b": finals[b].size,
                         "mean_a": finals[a].mean(), "mean_b": finals[b].mean(), "u": u, "p_value": p,
                         "p_holm": p_holm, "significant": bool(p_holm < alpha)})
    columns = ["panel", "a", "b", "runs_a", "runs_b", "mean_a", "mean_b", "u", "p_value", "p_holm", "significant"]
    return pd.DataFrame(rows, columns=columns)


def incumbent_at(times: np.ndarray, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The value of the last event at or before each ``x`` (NaN before the first): what the
    incumbent was at that moment. (Interpolating between events, as at the budget, can leave
    the metric's range: two events close in time extend a steep line past 100 %.)"""
    i = np.searchsorted(times, x, side="right") - 1
    return np.where(i >= 0, values[np.maximum(i, 0)], np.nan)


def curves(experiments: list[Experiment], runs: pd.DataFrame) -> pd.DataFrame:
    """Each simulated run's incumbent test accuracy (``incumbent_at``) at ``CURVE_POINTS`` points
    of a log axis: on a time budget from the moment every run of the panel has an incumbent to
    the budget, on an evaluation budget after 1..N evaluations."""
    by_name = {e.name: e for e in experiments}
    by_run = {(e.name, searcher, seed): run for e in experiments
              for (searcher, seed), run in e.rows.groupby(["searcher", "run_seed"], sort=False)}
    out = []
    for panel, g in runs[runs["clock"] == "simulated"].groupby("panel", sort=False):
        first = by_name[g["experiment"].iloc[0]].rows
        budget_s, budget_evals = first["budget_s"].iloc[0], first["budget_evals"].iloc[0]
        by_time = bool(np.isfinite(budget_s))
        if by_time:
            x, unit = np.geomspace(min(g["first_time_s"].max(), budget_s), budget_s, CURVE_POINTS), "simulated s"
        else:
            x, unit = np.unique(np.round(np.geomspace(1, int(budget_evals), CURVE_POINTS))), "evaluations"
        for r in g.itertuples():
            run = by_run[(r.experiment, r.searcher, r.run_seed)]
            acc = run["best_test_acc"].to_numpy(np.float64)
            known = (run["best_arch_index"].to_numpy() >= 0) & np.isfinite(acc)
            clock = run["sim_time_s"].to_numpy(np.float64) if by_time else np.arange(1.0, len(run) + 1)
            out.append(pd.DataFrame({"panel": panel, "label": r.label, "run_seed": r.run_seed, "x": x,
                                     "x_unit": unit, "test_acc": incumbent_at(clock[known], acc[known], x)}))
    columns = ["panel", "label", "run_seed", "x", "x_unit", "test_acc"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)


def bands(curve_rows: pd.DataFrame, x: str = "x", y: str = "test_acc") -> pd.DataFrame:
    """Per panel, label and point: the runs with a value, their mean and the band (``stats.spread``)."""
    out = []
    for (panel, label), g in curve_rows.groupby(["panel", "label"], sort=False):
        table = g.pivot(index="run_seed", columns=x, values=y)
        mean, low, high, n = stats.spread(table.to_numpy(np.float64))
        out.append(pd.DataFrame({"panel": panel, "label": label, x: table.columns.to_numpy(np.float64), "runs": n,
                                 "mean": mean, "low": low, "high": high, "band": [stats.band_name(k) for k in n]}))
    columns = ["panel", "label", x, "runs", "mean", "low", "high", "band"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=columns)
