"""Days as integers, the simulated period, and the vectorised random draws every module uses.

The simulator works in int64 day numbers (days since 1970-01-01) and turns them
into dates only when it builds the contract frames. `NEVER` stands for "not in
the data": an open end, a missing cancellation, a stay that outlasts the period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

RowsT = TypeVar("RowsT", bound=Any)

NEVER = 10**9
_EPOCH = dt.date(1970, 1, 1)


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - _EPOCH).days


@dataclass(frozen=True)
class Period:
    """The simulated period [start, end], both inclusive, as day numbers."""

    start: int
    end: int

    @classmethod
    def from_dates(cls, start: dt.date, end: dt.date) -> Period:
        if end <= start:
            raise ValueError("the period must end after it starts")
        return cls(day_number(start), day_number(end))

    @property
    def days(self) -> int:
        return self.end - self.start + 1

    @property
    def years(self) -> float:
        return self.days / 365.25


def to_datetimes(days: IntArray) -> npt.NDArray[np.datetime64]:
    """Day numbers as datetime64[s]; `NEVER` becomes NaT."""
    out = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[s]")
    out[np.asarray(days) >= NEVER] = np.datetime64("NaT")
    return out


def uniform_days(rng: np.random.Generator, low: IntArray | int, high: IntArray | int, size: int) -> IntArray:
    """Whole days uniform in [low, high] (inclusive, elementwise)."""
    low_a = np.broadcast_to(np.asarray(low, dtype=np.int64), (size,))
    high_a = np.broadcast_to(np.asarray(high, dtype=np.int64), (size,))
    span = np.maximum(high_a - low_a + 1, 1)
    return low_a + np.floor(rng.random(size) * span).astype(np.int64)


def lognormal_days(
    rng: np.random.Generator, median: FloatArray | float, sigma: float, size: int, minimum: int = 1
) -> IntArray:
    """Durations in whole days with the given median, at least `minimum`."""
    values = np.asarray(median, dtype=np.float64) * np.exp(sigma * rng.standard_normal(size))
    return np.maximum(np.rint(values).astype(np.int64), minimum)


def categorical(rng: np.random.Generator, probs: FloatArray, size: int) -> IntArray:
    """Category codes drawn with `probs` (shape (k,) shared, or (size, k) one row per draw)."""
    cum = np.cumsum(np.asarray(probs, dtype=np.float64), axis=-1)
    u = rng.random(size)
    if cum.ndim == 1:
        codes = np.searchsorted(cum / cum[-1], u, side="right")
    else:
        codes = (u[:, None] * cum[:, -1:] >= cum).sum(axis=1)
    return np.minimum(codes, cum.shape[-1] - 1).astype(np.int64)


def choose_weighted(rng: np.random.Generator, weights: FloatArray, size: int) -> IntArray:
    """Indices drawn with replacement in proportion to `weights`; -1 if all weights are zero."""
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    if size == 0 or len(cum) == 0 or cum[-1] <= 0:
        return np.full(size, -1, dtype=np.int64)
    return np.searchsorted(cum, rng.random(size) * cum[-1], side="right").astype(np.int64)


def risk_multiplier(z: FloatArray, sigma: float) -> FloatArray:
    """A lognormal multiplier with mean 1 from standard-normal scores `z`."""
    return np.exp(sigma * z - sigma * sigma / 2.0)


def repeat_counts(counts: IntArray) -> tuple[IntArray, IntArray]:
    """For counts per owner: the owner of each expanded row and its position within the owner."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    return owner, np.arange(len(owner), dtype=np.int64) - first[owner]


_DTYPE_OF_ANNOTATION = {"IntArray": np.int64, "BoolArray": np.bool_, "FloatArray": np.float64}


def concat_rows(cls: type[RowsT], parts: Sequence[RowsT]) -> RowsT:
    """Field-wise concatenation of dataclasses of equally long arrays (an empty list gives no rows)."""
    columns = {}
    for f in fields(cls):  # type: ignore[arg-type]
        dtype = _DTYPE_OF_ANNOTATION[str(f.type)]
        arrays: list[np.ndarray] = [np.asarray(getattr(p, f.name), dtype=dtype) for p in parts]
        columns[f.name] = np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)
    return cls(**columns)
