"""Pseudonymous identifiers: a prefix and a zero-padded running number."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def make_ids(prefix: str, n: int, width: int = 7) -> pd.Series:
    """`prefix` + 1..n zero-padded to `width` digits (wider if n needs it)."""
    width = max(width, len(str(n)))
    numbers = pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)
    return (prefix + numbers).astype("str")


def decode(values: Sequence[str] | np.ndarray, codes: np.ndarray) -> np.ndarray:
    """`values[codes]` as an object array, with None where the code is -1."""
    table = np.array([*values, None], dtype=object)
    return table[np.where(codes >= 0, codes, len(table) - 1)]
