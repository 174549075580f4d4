"""The order of a list: score descending, ties broken by a key, reproducible.

Inference and evaluation rank cases with this one function, so a served list and
a measured list put the same case in the same place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

Values: TypeAlias = np.ndarray | pd.Series | pd.Index | ExtensionArray | Sequence[Any]


def as_floats(values: Values) -> np.ndarray:
    """A 1-D float array (NA becomes NaN); 2-D input is rejected."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def finite_scores(scores: Values) -> np.ndarray:
    """Scores as floats; ValueError when one is missing (every case needs a score to be ranked)."""
    values = as_floats(scores)
    if np.isnan(values).any():
        raise ValueError("scores contain NaN: every case needs a score to be ranked")
    return values


def rank_order(scores: Values, tie_key: Values | None = None) -> np.ndarray:
    """Positions of the cases from first to inspect to last: score descending, then tie_key ascending.

    Cases tied on both (or on score, without a tie_key) keep their input order, so a list is reproducible.
    """
    values = finite_scores(scores)
    order = np.argsort(-values, kind="stable")
    if tie_key is None:
        return order
    keys = tie_key if isinstance(tie_key, pd.Series) else pd.Series(tie_key)
    if len(keys) != len(values):
        raise ValueError(f"tie_key ({len(keys)}) and scores ({len(values)}) differ in length")
    if keys.isna().any():
        raise ValueError("tie_key contains missing values")
    # Only cases sharing a score need their keys compared: cheap when ties are rare.
    ranked = values[order]
    same = ranked[1:] == ranked[:-1]
    tied = np.concatenate(([False], same)) | np.concatenate((same, [False]))
    if not tied.any():
        return order
    cases = order[tied]
    group = np.cumsum(np.concatenate(([True], ~same)))[tied]
    tied_keys = keys.iloc[cases].to_numpy()
    if tied_keys.dtype == object:
        tied_keys = tied_keys.astype(str)  # numpy sorts fixed-width strings far faster than objects
    by_key = np.argsort(tied_keys, kind="stable")
    order[tied] = cases[by_key[np.argsort(group[by_key], kind="stable")]]
    return order
