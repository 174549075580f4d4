"""Vectorised per-key aggregations over integer keys (person or sponsor codes).

Event arrays are kept sorted by (key, day), so "the latest row on or before T"
is the last selected row of each key: one pass, no Python loop over keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def count_by(keys: IntArray, n: int, mask: BoolArray | None = None) -> IntArray:
    """Rows per key in [0, n); keys < 0 (no subject) are ignored."""
    selected = keys if mask is None else keys[mask]
    selected = selected[selected >= 0]
    return np.bincount(selected, minlength=n).astype(np.int64)


def sum_by(keys: IntArray, values: FloatArray, n: int, mask: BoolArray | None = None) -> FloatArray:
    """Sum of `values` per key in [0, n)."""
    keep = keys >= 0 if mask is None else mask & (keys >= 0)
    return np.bincount(keys[keep], weights=values[keep], minlength=n).astype(np.float64)


def max_by(keys: IntArray, values: FloatArray, n: int, mask: BoolArray | None = None) -> FloatArray:
    """Maximum of `values` per key; NaN where a key has no row."""
    keep = keys >= 0 if mask is None else mask & (keys >= 0)
    out = np.full(n, -np.inf)
    np.maximum.at(out, keys[keep], values[keep])
    out[np.isneginf(out)] = np.nan
    return out


def last_index_by(sorted_keys: IntArray, n: int, mask: BoolArray | None = None) -> IntArray:
    """Index of the last selected row of each key (rows sorted by key, then time); -1 if none."""
    rows = np.arange(len(sorted_keys)) if mask is None else np.flatnonzero(mask)
    rows = rows[sorted_keys[rows] >= 0]
    out = np.full(n, -1, dtype=np.int64)
    if len(rows) == 0:
        return out
    keys = sorted_keys[rows]
    is_last = np.empty(len(rows), dtype=bool)
    is_last[:-1] = keys[1:] != keys[:-1]
    is_last[-1] = True
    out[keys[is_last]] = rows[is_last]
    return out


def take(values: npt.NDArray[Any], index: IntArray, fill: object) -> npt.NDArray[Any]:
    """`values[index]` with `fill` where index is -1."""
    found = index >= 0
    if np.issubdtype(values.dtype, np.integer) and isinstance(fill, float):
        values = values.astype(np.float64)
    out = np.full(len(index), fill, dtype=values.dtype)
    out[found] = values[index[found]]
    return out


def lookup(per_key: npt.NDArray[Any], keys: IntArray, fill: float = np.nan) -> FloatArray:
    """Per-key values broadcast to rows by `keys` (e.g. a sponsor's count to its persons)."""
    out = np.full(len(keys), fill, dtype=np.float64)
    has = keys >= 0
    out[has] = per_key[keys[has]]
    return out


def previous_in_group(sorted_keys: IntArray) -> BoolArray:
    """True where the row above belongs to the same key (rows sorted by key)."""
    same = np.zeros(len(sorted_keys), dtype=bool)
    same[1:] = sorted_keys[1:] == sorted_keys[:-1]
    return same
