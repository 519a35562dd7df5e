"""The candidate surrogate models: each predicts every target column at once.

All candidates see standardized targets (accuracies in percent, losses near 1 and times in
fractions of a second would otherwise weigh by their units in a multi-output split criterion or
loss), are seeded, and run single-threaded so that a refit on the same data and seed gives
identical predictions. Which one a table gets is decided by cross-validation
(``scores.cross_validate``), not here:

* ``random-forest`` / ``extra-trees``: one multi-output forest for all columns, so a predicted
  curve is an average of real curves (coherent across epochs and metrics) and stays within the
  range of what was trained.
* ``hist-gbm``: gradient-boosted trees (scikit-learn's histogram GBM) on the leading principal
  components of the standardized curves: boosting is single-output, and curves are
  low-dimensional (a few components carry nearly all of their variance).
* ``mlp``: a small multi-layer perceptron on standardized features, the kind of model
  NAS-Bench-301 found competitive on one-hot cell encodings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spaces.errors import UserError

CANDIDATES: tuple[str, ...] = ("random-forest", "extra-trees", "hist-gbm", "mlp")
GBM_COMPONENTS = 8  # principal components of the curves that hist-gbm boosts (capped by the columns)


def make_model(name: str, seed: int, n_columns: int) -> Any:
    """An unfitted scikit-learn regressor ``name`` (one of ``CANDIDATES``), seeded."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    if name == "random-forest":
        from sklearn.ensemble import RandomForestRegressor
        inner = RandomForestRegressor(n_estimators=300, min_samples_leaf=3, max_features=0.7, n_jobs=1,
                                      random_state=seed)
        return TransformedTargetRegressor(regressor=inner, transformer=StandardScaler())
    if name == "extra-trees":
        from sklearn.ensemble import ExtraTreesRegressor
        inner = ExtraTreesRegressor(n_estimators=300, min_samples_leaf=3, max_features=0.7, n_jobs=1,
                                    random_state=seed)
        return TransformedTargetRegressor(regressor=inner, transformer=StandardScaler())
    if name == "hist-gbm":
        from sklearn.decomposition import PCA
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.multioutput import MultiOutputRegressor
        from sklearn.pipeline import make_pipeline
        inner = MultiOutputRegressor(HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1,
                                                                   random_state=seed))
        components = min(GBM_COMPONENTS, n_columns)
        return TransformedTargetRegressor(
            regressor=inner, check_inverse=False,
            transformer=make_pipeline(StandardScaler(), PCA(components, random_state=seed)))
    if name == "mlp":
        from sklearn.neural_network import MLPRegressor
        from sklearn.pipeline import make_pipeline
        inner = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(128, 128), max_iter=800,
                                                             early_stopping=True, random_state=seed))
        return TransformedTargetRegressor(regressor=inner, transformer=StandardScaler())
    raise UserError(f"unknown surrogate model {name!r}; choose one of {', '.join(CANDIDATES)} (or auto)")


def fit_model(name: str, seed: int, X: np.ndarray, Y: np.ndarray) -> Any:
    """``make_model(name, seed)`` fitted on ``X`` -> ``Y`` (a one-column target as the 1-d array
    scikit-learn expects of a single output, e.g. an imported table's one final accuracy)."""
    return make_model(name, seed, Y.shape[1]).fit(X, Y[:, 0] if Y.shape[1] == 1 else Y)


def describe(name: str) -> str:
    """The model with the library version that fits it, for a file's metadata."""
    import sklearn
    return f"{name} (scikit-learn {sklearn.__version__})"
