"""How good a surrogate is, measured where the truth is known: k-fold cross-validation.

A search ranks architectures, so the scores that matter are rank correlations (Kendall tau and
Spearman rho) between predicted and recorded final values; RMSE (in the metric's unit, percent
for accuracies) says how far off the values themselves are. The final values scored are the last
epoch's validation accuracy (what a search sees) and test accuracy (what it reports), where the
table has them. Folds group isomorphic architectures (``space.iso_class_ids``) so that no
architecture is scored by a model that was fitted on its twin.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from spaces.errors import UserError

from .models import fit_model
from .training import TrainingSet

FINAL_TARGETS = ("valid_acc", "test_acc")  # scored at their last epoch
FOLDS = 5


@dataclass(frozen=True)
class TargetScore:
    kendall_tau: float
    spearman_rho: float
    rmse: float


@dataclass(frozen=True)
class ModelScore:
    """Cross-validated quality of one candidate model on one training set."""
    model: str
    targets: dict[str, TargetScore]   # final metric -> its scores
    fit_s: float                      # median seconds per fold fit
    predict_s: float                  # median seconds per fold prediction
    # recorded minus out-of-fold predicted values [archs, columns]: how far one training lands
    # from the model's prediction (what ``noise="residual"`` draws from); None outside CV
    residuals: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def rank_score(self) -> float:
        """What candidates are chosen by: the mean Kendall tau over the final targets."""
        taus = [s.kendall_tau for s in self.targets.values() if not math.isnan(s.kendall_tau)]
        return float(np.mean(taus)) if taus else float("nan")

    def to_json(self) -> dict:
        return {"model": self.model, "fit_s": round(self.fit_s, 3), "predict_s": round(self.predict_s, 3),
                **{t: {k: round(v, 4) for k, v in asdict(s).items()} for t, s in self.targets.items()}}


def score_targets(ts: TrainingSet, predicted: np.ndarray, truth: np.ndarray) -> dict[str, TargetScore]:
    """Rank and error scores of predicted vs recorded final values ([n, columns] each)."""
    from scipy.stats import kendalltau, spearmanr

    out = {}
    for metric in FINAL_TARGETS:
        if metric not in ts.metrics:
            continue
        c = ts.column(metric)
        p, t = predicted[:, c].astype(np.float64), truth[:, c].astype(np.float64)
        tau = kendalltau(p, t).statistic if np.ptp(p) and np.ptp(t) else float("nan")
        rho = spearmanr(p, t).statistic if np.ptp(p) and np.ptp(t) else float("nan")
        out[metric] = TargetScore(float(tau), float(rho), float(np.sqrt(np.mean((p - t) ** 2))))
    if not out:
        raise UserError(f"the {ts.space.name}/{ts.dataset} hp={ts.hp} table records neither "
                        f"{' nor '.join(FINAL_TARGETS)}: there is nothing to score a surrogate by")
    return out


def fit_predict(model: str, seed: int, train: TrainingSet, X: np.ndarray
                ) -> tuple[np.ndarray, float, float]:
    """Fit ``model`` on ``train`` and predict rows ``X``: (predictions, fit s, predict s)."""
    start = time.perf_counter()
    estimator = fit_model(model, seed, train.X, train.Y)
    fitted = time.perf_counter()
    predicted = estimator.predict(X).reshape(len(X), -1)
    return predicted, fitted - start, time.perf_counter() - fitted


def cross_validate(ts: TrainingSet, models: Sequence[str], *, folds: int = FOLDS, seed: int = 0,
                   progress: Callable[[str], None] | None = None) -> list[ModelScore]:
    """k-fold CV scores of each model on ``ts`` (the same folds for every model)."""
    from sklearn.model_selection import GroupKFold

    if folds < 2:
        raise UserError(f"--folds {folds}: cross-validation needs at least 2 folds")
    groups = ts.space.iso_class_ids()[ts.archs]
    if np.unique(groups).size < folds:
        raise UserError(f"{np.unique(groups).size} isomorphism classes cannot fill {folds} folds; "
                        "lower --folds or train more architectures")
    splits = list(GroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(ts.X, groups=groups))
    out = []
    for model in models:
        predicted = np.empty_like(ts.Y)
        fit_times, predict_times = [], []
        for k, (train, test) in enumerate(splits):
            if progress:
                progress(f"{model}: fold {k + 1}/{folds}")
            p, fit_s, predict_s = fit_predict(model, seed, ts.subset(train), ts.X[test])
            predicted[test] = p
            fit_times.append(fit_s)
            predict_times.append(predict_s)
        out.append(ModelScore(model, score_targets(ts, predicted, ts.Y), float(np.median(fit_times)),
                              float(np.median(predict_times)), (ts.Y - predicted).astype(np.float32)))
    return out


def best(scores: Sequence[ModelScore]) -> ModelScore:
    """The candidate with the highest mean Kendall tau (the earlier one on a tie)."""
    ranked = [s for s in scores if not math.isnan(s.rank_score)]
    if not ranked:
        raise UserError("no candidate model produced a usable ranking in cross-validation "
                        "(are all recorded final values equal?)")
    return max(ranked, key=lambda s: s.rank_score)
