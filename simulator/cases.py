"""The contract's case rule evaluated on the tables themselves (not on the simulator's internals).

A person is a case on day T when their last crossing on or before T is an entry
(an entry on the same day as an exit counts as later), or, with no crossing on
or before T, when they hold a permit valid on T (issued on or before T, expiring
on or after T, not cancelled before T). The summary and the tests use this to
check the simulator against the contract.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.tables import Tables
from simulator.intervals import pairs_by_person
from simulator.period import NEVER, BoolArray, IntArray

_SHIFT = np.int64(2**34)


def _days(values: pd.Series) -> IntArray:
    raw = values.to_numpy(dtype="datetime64[s]")
    days = raw.astype("datetime64[D]").astype(np.int64)
    days[np.isnat(raw)] = NEVER
    return days


class CaseIndex:
    """Answers "is this person a case on this day?" for many persons or days, from the tables."""

    def __init__(self, tables: Tables) -> None:
        self.person_ids = pd.Index(tables.persons["person_id"])
        crossings = tables.border_crossings
        person = self.person_ids.get_indexer(crossings["person_id"]).astype(np.int64)
        is_in = (crossings["direction"] == "IN").to_numpy(dtype=bool)
        # Key orders by person, day, then exit before entry: the entry is the later crossing.
        keys = person * _SHIFT + _days(crossings["crossing_date"]) * 2 + is_in
        order = np.argsort(keys, kind="stable")
        self._crossing_keys, self._crossing_person, self._crossing_in = (
            keys[order],
            person[order],
            is_in[order],
        )
        permits = tables.permits
        p_person = self.person_ids.get_indexer(permits["person_id"]).astype(np.int64)
        p_order = np.argsort(p_person, kind="stable")
        self._permit_person = p_person[p_order]
        self._issue = _days(permits["issue_date"])[p_order]
        self._expiry = _days(permits["expiry_date"])[p_order]
        self._cancelled = _days(permits["cancelled_date"])[p_order]

    def at(self, person: IntArray, day: IntArray) -> BoolArray:
        """Per query (person code, day number): a case on that day."""
        crossed, by_crossing = self._last_crossing(person, day)
        query, row = pairs_by_person(self._permit_person, person)
        valid = (self._issue[row] <= day[query]) & (day[query] <= self._expiry[row])
        valid &= self._cancelled[row] >= day[query]
        holds = np.zeros(len(person), dtype=bool)
        holds[query[valid]] = True
        return np.where(crossed, by_crossing, holds)

    def _last_crossing(self, person: IntArray, day: IntArray) -> tuple[BoolArray, BoolArray]:
        """Per query: whether any crossing on or before the day, and whether the last one is an entry."""
        if len(self._crossing_keys) == 0:
            none = np.zeros(len(person), dtype=bool)
            return none, none
        pos = np.searchsorted(self._crossing_keys, person * _SHIFT + day * 2 + 1, side="right") - 1
        safe = np.maximum(pos, 0)
        crossed = (pos >= 0) & (self._crossing_person[safe] == person)
        return crossed, crossed & self._crossing_in[safe]

    def on(self, day: dt.date | pd.Timestamp) -> pd.Series:
        """Boolean per person (indexed by person_id): in the country on `day`."""
        t = int(np.datetime64(pd.Timestamp(day).date(), "D").astype(np.int64))
        n = len(self.person_ids)
        everyone = np.arange(n, dtype=np.int64)
        crossed, by_crossing = self._last_crossing(everyone, np.full(n, t, dtype=np.int64))
        valid = (self._issue <= t) & (t <= self._expiry) & (self._cancelled >= t)
        holds = np.bincount(self._permit_person[valid], minlength=n) > 0
        return pd.Series(np.where(crossed, by_crossing, holds), index=self.person_ids, name="is_case")

    def codes(self, person_ids: pd.Series) -> IntArray:
        """Person codes for ids (as used by `at`)."""
        return self.person_ids.get_indexer(person_ids).astype(np.int64)


def cases_on(tables: Tables, day: dt.date | pd.Timestamp) -> pd.Series:
    """Boolean per person (indexed by person_id): in the country on `day`."""
    return CaseIndex(tables).on(day)


def in_violation(
    truth: pd.DataFrame, first: dt.date | pd.Timestamp, last: dt.date | pd.Timestamp
) -> pd.Index:
    """Persons with a violation interval overlapping [first, last] (an open end runs on)."""
    lo, hi = pd.Timestamp(first), pd.Timestamp(last)
    overlap = (truth["start_date"] <= hi) & (truth["end_date"].isna() | (truth["end_date"] >= lo))
    return pd.Index(truth.loc[overlap, "person_id"].unique())
