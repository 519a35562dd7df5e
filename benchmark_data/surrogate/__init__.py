"""Surrogate completion of partial tables (``python -m benchmark_data surrogate``).

Training every architecture of a space is often out of reach (the size space's 32,768 networks
on two CPU cores, or a user's own space and dataset). As NAS-Bench-301, JAHS-Bench-201 and YAHPO
Gym do, a model fitted on the architectures that were trained predicts the rest, and the
predictions are labelled as such: they live in the store's own ``surrogate`` table, carry the
model, its cross-validated quality and a fingerprint of its training rows in their metadata, and
every result that used one says how much of it did.

``training``: features (the space's encoding) and targets (every recorded curve); ``models``:
the candidate regressors; ``scores``: k-fold cross-validation by rank correlation;
``complete``: fit, predict, write; ``cli``: the command line. scikit-learn is imported only
here, when a surrogate is fitted.
"""

from .complete import Completion, SurrogateFit, complete, fit
from .models import CANDIDATES
from .scores import FOLDS, ModelScore, cross_validate
from .training import MIN_ARCHS, TrainingSet, features, training_set

__all__ = ["CANDIDATES", "FOLDS", "MIN_ARCHS", "Completion", "ModelScore", "SurrogateFit", "TrainingSet",
           "complete", "cross_validate", "features", "fit", "training_set"]
