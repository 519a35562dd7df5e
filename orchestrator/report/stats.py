"""The report's few statistical rules, in one place: rank agreement, the spread over runs, the
pairwise test and its multiple-comparison correction.

* Rank agreement is Kendall's tau-b and Spearman's rho (scipy), over the architectures that have a
  value in both tables; ties count as ties (digits' accuracies repeat: 449 validation images).
* The spread over runs never leaves the range of the values drawn: with ``FEW_RUNS`` runs or fewer
  it is their minimum and maximum (and the figures draw every run), with more the band holds the
  middle 80 % of the runs (10th to 90th percentile). A mean +- std band can leave 0..100 % when a
  few runs disagree (three DARTS-V2 seeds at 10 % and 97 % give 68 +- 41 %), so it is never drawn.
* Two searchers' final values are compared with the two-sided Mann-Whitney U test (no normality
  assumed; with 3 runs against 3 its smallest possible p is 0.1), and the p values of all pairs
  of one comparison are corrected with Holm's step-down method (family-wise error rate).
"""

from __future__ import annotations

import numpy as np

FEW_RUNS = 10
BAND_QUANTILES = (0.1, 0.9)
ALPHA = 0.05
TEST_NAME = "two-sided Mann-Whitney U"
CORRECTION_NAME = "Holm"


def agreement(x: np.ndarray, y: np.ndarray) -> tuple[int, float, float]:
    """(pairs with both values, Kendall tau-b, Spearman rho); NaN below 3 pairs or when one side
    is constant."""
    from scipy import stats

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    both = np.isfinite(x) & np.isfinite(y)
    n = int(both.sum())
    if n < 3 or np.ptp(x[both]) == 0 or np.ptp(y[both]) == 0:
        return n, float("nan"), float("nan")
    tau = stats.kendalltau(x[both], y[both]).statistic
    rho = stats.spearmanr(x[both], y[both]).statistic
    return n, float(tau), float(rho)


def band_name(runs: int) -> str:
    """What the shaded band of ``runs`` runs is (the words the figures and tables use)."""
    if runs <= FEW_RUNS:
        return "min-max"
    lo, hi = BAND_QUANTILES
    return f"{100 * lo:.0f}th-{100 * hi:.0f}th percentile"


def spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high, runs) at each point of ``values`` [runs, points] over the runs with a
    value there (NaN: none): the band is ``band_name(runs)``'s (see the module docstring)."""
    values = np.asarray(values, np.float64)
    n = np.isfinite(values).sum(0)
    mean, low, high = (np.full(values.shape[1], np.nan) for _ in range(3))
    some = n > 0
    v = values[:, some]
    mean[some] = np.nanmean(v, 0)
    few = n[some] <= FEW_RUNS
    q_lo, q_hi = np.nanquantile(v, BAND_QUANTILES, axis=0)
    low[some] = np.where(few, np.nanmin(v, 0), q_lo)
    high[some] = np.where(few, np.nanmax(v, 0), q_hi)
    return mean, low, high, n


def mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(U of ``a``, two-sided p) of the Mann-Whitney U test; NaN when a side has no value."""
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not a.size or not b.size:
        return float("nan"), float("nan")
    if np.ptp(np.concatenate([a, b])) == 0:  # every value equal: no evidence of any difference
        return a.size * b.size / 2, 1.0
    result = stats.mannwhitneyu(a, b, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p values (NaN stays NaN and is not counted as a test)."""
    p = np.asarray(pvalues, np.float64)
    out = np.full(p.shape, np.nan)
    known = np.flatnonzero(np.isfinite(p))
    order = known[np.argsort(p[known], kind="stable")]
    m = order.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else np.array([])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def seed_ranges(seeds) -> str:
    """0..4, 7, 9..10: the seeds of some runs, short."""
    values = sorted({int(s) for s in seeds})
    parts, start = [], None
    for i, s in enumerate(values):
        if start is None:
            start = s
        if i + 1 == len(values) or values[i + 1] != s + 1:
            parts.append(str(s) if s == start else f"{start}..{s}")
            start = None
    return ", ".join(parts)
