"""Selective labels: inverse-propensity weights for labelled training cases.

Only inspected cases carry labels, and inspections were not drawn at random:
targeted and tip-driven checks over-represent what the old policy looked at.
Weighting each labelled case by 1 / P(inspected | case) makes the labelled
sample stand in for all cases (Horvitz-Thompson).

The propensity comes from the data where the selecting policy logged it
(`selection_propensity`, e.g. RANDOM draws). Otherwise it is estimated: a
logistic regression of "inspected within the horizon" on the model's features
over all training cases. Estimated propensities are clipped to [`min_propensity`, 1]
(so no case weighs more than 1 / min_propensity) and weights are scaled to mean 1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.ranker import feature_matrix

MIN_PROPENSITY = 0.02


def estimate_propensity(features: pd.DataFrame, inspected: pd.Series, names: tuple[str, ...]) -> pd.Series:
    """P(inspected within the horizon | features) for every case, by logistic regression."""
    matrix = np.nan_to_num(feature_matrix(features, names), nan=-1.0)
    target = inspected.to_numpy(dtype=bool)
    if target.all() or not target.any():
        return pd.Series(float(target.mean()), index=features.index)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(matrix, target)
    return pd.Series(model.predict_proba(matrix)[:, 1], index=features.index)


def inverse_propensity_weights(
    logged: pd.Series, estimated: pd.Series, min_propensity: float = MIN_PROPENSITY
) -> npt.NDArray[np.float64]:
    """Weights 1/p (logged p where present, else estimated), clipped and scaled to mean 1."""
    propensity = logged.where(logged.notna(), estimated).to_numpy(dtype=np.float64)
    propensity = np.clip(propensity, min_propensity, 1.0)
    weights = 1.0 / propensity
    return np.asarray(weights / weights.mean(), dtype=np.float64)
