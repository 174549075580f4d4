"""Point-in-interval lookups over per-person intervals, vectorised over queries."""

from __future__ import annotations

import numpy as np

from simulator.period import BoolArray, IntArray

_SHIFT = np.int64(2**32)  # person * _SHIFT + day orders by person, then day (days < 2**32)


def covering(
    person: IntArray, start: IntArray, last: IntArray, query_person: IntArray, query_day: IntArray
) -> IntArray:
    """Per query: index of the interval [start, last] of that person holding the day, or -1.

    Intervals must be sorted by (person, start) and must not overlap within a person.
    """
    if len(person) == 0:
        return np.full(len(query_person), -1, dtype=np.int64)
    keys = person * _SHIFT + start
    pos = np.searchsorted(keys, query_person * _SHIFT + query_day, side="right") - 1
    safe = np.maximum(pos, 0)
    hit = (pos >= 0) & (person[safe] == query_person) & (query_day <= last[safe])
    return np.where(hit, pos, -1).astype(np.int64)


def pairs_by_person(sorted_person: IntArray, query_person: IntArray) -> tuple[IntArray, IntArray]:
    """Every (query, row) pair where the row belongs to the query's person; rows sorted by person."""
    lo = np.searchsorted(sorted_person, query_person, side="left")
    hi = np.searchsorted(sorted_person, query_person, side="right")
    counts = hi - lo
    query = np.repeat(np.arange(len(query_person), dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    row = lo[query] + np.arange(len(query), dtype=np.int64) - first[query]
    return query, row.astype(np.int64)


def mask_of(persons: IntArray, n: int) -> BoolArray:
    """Boolean mask over n persons, True for the given ones."""
    out = np.zeros(n, dtype=bool)
    out[persons] = True
    return out
