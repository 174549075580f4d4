"""Look-back windows shared by the feature families."""

from __future__ import annotations

import numpy as np

from features.grouping import BoolArray, FloatArray, IntArray

SHORT_DAYS = 90
LONG_DAYS = 365


def within(days: IntArray, t: int, window: int | None = None) -> BoolArray:
    """Rows dated on or before t and, with a window, after t - window."""
    mask = days <= t
    if window is not None:
        mask &= days > t - window
    return mask


def days_since(t: int, day: FloatArray) -> FloatArray:
    """t minus a day number; NaN stays NaN (no such event)."""
    return np.float64(t) - day
