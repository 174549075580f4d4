"""The office rule: how supervision teams order their work today, as scores.

Currently overstaying first, then recent agency reports about the person, then
fewest days to permit expiry. Served beside the model (an arm of a randomised
comparison) and measured against it in training.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

Scores = npt.NDArray[np.float64]


def office_rule_scores(features: pd.DataFrame) -> Scores:
    """Scores in (0, 1] that order cases by the office rule; cases equal on all keys tie."""
    overstay = features["overstay_now"].fillna(0).to_numpy(dtype=np.float64)
    reports = features["person_reports_90d"].fillna(0).to_numpy(dtype=np.float64)
    expiry = features["days_to_expiry"].fillna(np.inf).to_numpy(dtype=np.float64)
    if len(overstay) == 0:
        return np.empty(0)
    order = np.lexsort((expiry, -reports, -overstay))  # lexsort: last key first
    keys = np.column_stack((overstay, reports, expiry))[order]
    new_key = np.ones(len(order), dtype=bool)
    new_key[1:] = (keys[1:] != keys[:-1]).any(axis=1)
    dense_rank = np.cumsum(new_key)
    scores = np.empty(len(order))
    scores[order] = 1.0 - (dense_rank - 1) / dense_rank[-1]
    return scores
