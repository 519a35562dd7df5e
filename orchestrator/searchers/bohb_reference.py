"""The reference BOHB model: hpbandster's configuration generator, with ``CategoricalKDE`` when fixed.

What BOHB ran before ``bohb_kde.KDEModel``; the fast model hands it the cases it does not compute
itself, and tests pin the fast model to it. Importing this module imports hpbandster (and with it
ConfigSpace, scipy.stats and statsmodels.api: over a second), so it is imported only when needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hpbandster.optimizers.config_generators.bohb import BOHB as KDEGenerator

from .bohb_density import CategoricalKDE

__all__ = ["FixedKDEGenerator", "KDEGenerator"]


class FixedKDEGenerator(KDEGenerator):
    """hpbandster's generator with its fitted densities replaced by ``CategoricalKDE``.

    The reference implementation: what BOHB ran before ``KDEModel``, which tests pin it to.
    """

    def impute_conditional_data(self, array: np.ndarray) -> np.ndarray:
        # hpbandster fills the NaNs of inactive conditional parameters row by row in Python on
        # every model refit, which makes a long search quadratic in Python time. Rows without
        # NaNs are left unchanged by that loop, so skipping it when there are none changes nothing.
        if not np.isnan(array).any():
            return array
        return super().impute_conditional_data(array)

    def new_result(self, job: Any, update_model: bool = True) -> None:
        super().new_result(job, update_model)
        models = self.kde_models.get(job.kwargs["budget"])
        if models is not None and not isinstance(models["good"], CategoricalKDE):
            for key, kde in models.items():
                models[key] = CategoricalKDE(kde.data, kde.bw, self.vartypes, self.min_bandwidth)
