"""The report's figures, drawn from its tables only (so a figure shows what a table holds).

No pyplot: each figure is a ``matplotlib.figure.Figure`` on its own Agg canvas, drawn under
``rc_context``, so a report neither switches a caller's backend nor changes matplotlib's global
settings. The font is DejaVu Sans (shipped with matplotlib) and the PNG carries no Software or
date text: the same tables give byte-identical files. Every figure that used surrogate
predictions says so in a footnote under its panels.
"""

from __future__ import annotations

import contextlib
import math
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats

STYLE = {
    "font.family": "DejaVu Sans", "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.5,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.5, "figure.dpi": 110,
    "savefig.dpi": 110, "legend.frameon": False, "svg.hashsalt": "natsflow",
}
PANEL = (4.4, 3.2)  # inches per panel
SURROGATE_COLOR = "tab:orange"
TRAINED_COLOR = "tab:blue"


@contextlib.contextmanager
def style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def grid(n: int, ncols: int = 3, panel: tuple[float, float] = PANEL):
    """A figure with ``n`` panels, ``ncols`` a row (unused cells hidden), and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def footnote(fig, lines: list[str]) -> None:
    """Lines under the panels (what the band is, which values were predictions)."""
    width = int(fig.get_figwidth() * 17)
    text = "\n".join(textwrap.fill(line, width) for line in lines if line)
    if text:
        fig.supxlabel(text, x=0.01, ha="left", fontsize=6.5, linespacing=1.3)


def save(fig, path: Path) -> Path:
    with style():
        fig.savefig(path, format="png", metadata={"Software": None})
    return path


def palette(labels) -> dict[str, str]:
    """One colour per label of one figure (tab10 keeps up to ten apart; tab20 pairs light and dark)."""
    import matplotlib

    names = sorted(set(labels))
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, name in enumerate(names)}


def log_axis(axis) -> None:
    """A log scale labelled in plain numbers (20, 50, 100), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.axes.set_xscale("log") if axis.axis_name == "x" else axis.axes.set_yscale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def short(text: str, width: int = 70) -> str:
    return textwrap.fill(text, width)


# --- Figures 5.6 and 5.7: a value over the search, per label ------------------------------------------------
def draw_band(ax, band: pd.DataFrame, runs: pd.DataFrame, x: str, y: str, color: str, label: str) -> None:
    """Mean line and band of one label; each run as a thin line when there are few."""
    n = int(band["runs"].max())
    if n <= stats.FEW_RUNS:
        for _, run in runs.groupby("run_seed", sort=True):
            ax.plot(run[x], run[y], color=color, lw=0.6, alpha=0.45)
    # A light fill with its edges drawn: several labels' bands stay readable where they overlap.
    ax.fill_between(band[x], band["low"], band["high"], color=color, alpha=0.08, lw=0)
    for edge in ("low", "high"):
        ax.plot(band[x], band[edge], color=color, lw=0.6, alpha=0.7)
    ax.plot(band[x], band["mean"], color=color, label=f"{label} ({n} run{'s' * (n != 1)})")


def over_search(bands: pd.DataFrame, per_run: pd.DataFrame, x: str, xlabel: str, ylabel: str,
                colors: dict[str, str], notes: dict[str, list[str]], log_x: bool, extra: list[str],
                per_label: bool = False):
    """One axes per panel name of ``bands`` with one mean line and band per label, or
    (``per_label``) one axes per panel and label, each on its own scale: a one-shot search that
    collapses to a 10 % cell for a few epochs would flatten every other algorithm's curve."""
    cells = list(dict.fromkeys(zip(bands["panel"], bands["label"]) if per_label else
                               ((p, None) for p in bands["panel"])))
    with style():
        fig, axes = grid(len(cells), ncols=3 if per_label else 2, panel=(3.7, 2.9) if per_label else (5.2, 3.4))
        for ax, (panel, only) in zip(axes, cells):
            b, r = bands[bands["panel"] == panel], per_run[per_run["panel"] == panel]
            labels = [only] if per_label else sorted(set(b["label"]))
            for label in labels:
                draw_band(ax, b[b["label"] == label], r[r["label"] == label], x, "test_acc", colors[label], label)
            if log_x:
                log_axis(ax.xaxis)
            unit = r["x_unit"].iloc[0] if "x_unit" in r else xlabel  # time or evaluations, per panel
            ax.set(xlabel=unit, ylabel=ylabel, title=short(panel, 50 if per_label else 75))
            ax.legend(loc="lower right")
            for i, line in enumerate(notes.get(panel, [])):
                ax.text(0.01, 0.99 - 0.06 * i, line, transform=ax.transAxes, va="top", fontsize=6.5,
                        color=SURROGATE_COLOR)
        counts = bands.groupby(["panel", "label"])["runs"].max()
        bands_used = sorted({stats.band_name(int(n)) for n in counts})
        footnote(fig, [f"Line: mean over runs; shaded: {' or '.join(bands_used)} over the runs "
                       f"({stats.FEW_RUNS} runs or fewer: min-max, and each run drawn thin; more: the middle 80 %)."]
                 + extra)
    return fig


# --- benchmark diagnostics ----------------------------------------------------------------------------
def _scatter(ax, x: np.ndarray, y: np.ndarray, predicted: np.ndarray) -> None:
    """Trained architectures in blue, surrogate predictions in orange (drawn first, beneath)."""
    known = np.isfinite(x) & np.isfinite(y)
    for mask, color, name in ((known & predicted, SURROGATE_COLOR, "surrogate prediction"),
                              (known & ~predicted, TRAINED_COLOR, "trained")):
        if mask.any():
            ax.scatter(x[mask], y[mask], s=2, lw=0, alpha=0.35, color=color, label=f"{name} ({int(mask.sum()):,})",
                       rasterized=True)
    if (known & predicted).any():
        ax.legend(loc="lower right", markerscale=4)


def costs_figure(tables, cost_arrays: dict, cost_rows: pd.DataFrame):
    drawn = [t for t in tables if t.name in cost_arrays]
    with style():
        fig, axes = grid(2 * len(drawn), ncols=2, panel=(4.2, 3.0))
        sources = cost_rows.set_index("table")
        for i, t in enumerate(drawn):
            for ax, (name, words) in zip(axes[2 * i:2 * i + 2], (("params_m", "parameters (M)"),
                                                                 ("flops_m", "FLOPs (M)"))):
                _scatter(ax, cost_arrays[t.name][name], t.final, t.surrogate)
                tau = sources.loc[t.name, f"{name}_kendall"]
                ax.set(xlabel=words, ylabel=f"test accuracy at hp={t.hp} (%)",
                       title=short(f"{t.name}: Kendall tau {tau:.3f}", 60))
        footnote(fig, [f"Costs of {t.name}: {sources.loc[t.name, 'cost_source']}." for t in drawn]
                 + cost_notes(drawn, cost_arrays))
    return fig


def cost_notes(tables, cost_arrays: dict) -> list[str]:
    """Surrogate notes of the costs figure: over the architectures it draws (predicted ones
    were never built, so most have no measured cost)."""
    notes = (t.surrogate_note(np.isfinite(t.final) & np.isfinite(cost_arrays[t.name]["params_m"]))
             for t in tables if t.name in cost_arrays)
    return [n for n in notes if n]


def rank_pairs_figure(pair_list, rows: pd.DataFrame):
    from .diagnostics import pair_notes, ranks

    with style():
        fig, axes = grid(len(pair_list), ncols=3, panel=(3.6, 3.4))
        for ax, (ref, other), row in zip(axes, pair_list, rows.itertuples()):
            common = np.isfinite(ref.final) & np.isfinite(other.final)
            a = ranks(np.where(common, ref.final, np.nan))
            b = ranks(np.where(common, other.final, np.nan))
            _scatter(ax, a, b, (ref.surrogate | other.surrogate) & common)
            ax.set(xlabel=short(f"rank on {ref.name}", 45), ylabel=short(f"rank on {other.name}", 45),
                   title=f"Kendall tau {row.kendall:.3f}, Spearman rho {row.spearman:.3f}")
            ax.set_aspect("equal", adjustable="box")
        footnote(fig, ["Rank 1 = the best test accuracy among the architectures both tables hold (ties share "
                       "the better rank)."] + pair_notes(pair_list))
    return fig


def valid_test_figure(tables, rows: pd.DataFrame):
    drawn = [t for t in tables if t.valid is not None]
    with style():
        fig, axes = grid(len(drawn), ncols=3, panel=(3.6, 3.3))
        stats_of = rows.set_index("table")
        for ax, t in zip(axes, drawn):
            _scatter(ax, t.valid, t.final, t.surrogate)
            r = stats_of.loc[t.name]
            ax.set(xlabel=f"validation accuracy at hp={t.hp} (%)", ylabel=f"test accuracy at hp={t.hp} (%)",
                   title=f"{t.name}\nKendall tau {r.kendall:.3f}, Spearman rho {r.spearman:.3f}")
        footnote(fig, [t.surrogate_note(np.isfinite(t.valid) & np.isfinite(t.final)) for t in drawn])
    return fig


def topk_figure(rows: pd.DataFrame, notes: list[str]):
    pairs = list(dict.fromkeys(zip(rows["reference"], rows["other"])))
    colors = palette([f"{a} / {b}" for a, b in pairs])
    with style():
        fig, axes = grid(2, ncols=2, panel=(5.0, 3.4))
        for ax, (measure, words) in zip(axes, (("kendall", "Kendall tau"), ("spearman", "Spearman rho"))):
            for ref, other in pairs:
                g = rows[(rows["reference"] == ref) & (rows["other"] == other)]
                ax.plot(g["k"], g[measure], marker="o", ms=3, color=colors[f"{ref} / {other}"],
                        label=short(f"top k of {ref} vs {other}", 50))
            log_axis(ax.xaxis)
            ax.set(xlabel="k (the reference table's best k architectures)", ylabel=words,
                   title=f"{words} of the top k")
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=min(3, len(pairs)),
                   fontsize=6.5)
        footnote(fig, ["The reference is the table with the longer recipe; the last point of each line is every "
                       "architecture both tables hold."] + notes)
    return fig


def recipes_figure(rows: pd.DataFrame, notes: list[str]):
    groups = list(dict.fromkeys(zip(rows["store"], rows["space"], rows["dataset"], rows["short_hp"],
                                    rows["long_hp"])))
    with style():
        fig, axes = grid(len(groups), ncols=2, panel=(4.6, 3.2))
        for ax, (store, space, dataset, short_hp, long_hp) in zip(axes, groups):
            g = rows[(rows["store"] == store) & (rows["space"] == space) & (rows["dataset"] == dataset)
                     & (rows["short_hp"] == short_hp) & (rows["long_hp"] == long_hp)]
            for measure, color in (("kendall", "tab:blue"), ("spearman", "tab:green")):
                ax.plot(g["epoch"], g[measure], marker="o", ms=3, color=color,
                        label="Kendall tau" if measure == "kendall" else "Spearman rho")
            ax.set(xlabel=f"epoch of the hp={short_hp} recipe", ylabel="rank agreement",
                   title=short(f"{space}/{dataset} ({store}): {g['feedback'].iloc[0]} after each epoch of hp="
                               f"{short_hp} vs test acc at the end of hp={long_hp} ({int(g['archs'].iloc[0]):,} "
                               "archs)", 65))
            ax.legend(loc="lower right")
        footnote(fig, notes)
    return fig
