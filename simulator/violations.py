"""The hidden truth: who is in violation, of what, from when to when.

Probabilities depend on role, the sponsor's hidden non-compliance, visa-run
behaviour and each person's latent `risk`; never on nationality. Overstays come
from the stays themselves (nobody left before their permit ran out).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from features.contract import VIOLATION_TYPE
from simulator.period import (
    NEVER,
    BoolArray,
    FloatArray,
    IntArray,
    Period,
    concat_rows,
    lognormal_days,
    to_datetimes,
)
from simulator.persons import Persons, Role, VisitorKind
from simulator.residents import Stays
from simulator.sponsors import Sponsors
from simulator.visitors import Trips

OVERSTAY, PERMIT_MISUSE, UNAPPROVED_WORK, UNREPORTED_ADDRESS, DOCUMENT_FRAUD, OTHER = range(
    len(VIOLATION_TYPE)
)
MAX_PROBABILITY = 0.95

# Per-stay probabilities for residents, indexed by Role (WORKER .. PERMANENT): (compliant, bad) sponsor.
UNAPPROVED_WORK_P = np.array([[0.06, 0.55], [0.04, 0.15], [0, 0], [0, 0], [0, 0], [0, 0]])
MISUSE_P = np.array([[0, 0], [0, 0], [0.06, 0.35], [0.12, 0.45], [0.05, 0.15], [0, 0]])
UNREPORTED_ADDRESS_P = 0.1
FRAUD_P = np.array(
    [[0.004, 0.04], [0.004, 0.02], [0.004, 0.02], [0.004, 0.02], [0.004, 0.004], [0.002, 0.002]]
)
VISIT_PHASE_MISUSE_P = np.array([0.15, 0.7])  # workers who came on a visit visa, working before the permit
# Visitors working on a visit permit, by VisitorKind: (compliant or no sponsor, bad sponsor).
VISITOR_MISUSE_P = np.array([[0.02, 0.25], [0.08, 0.5], [0.4, 0.7]])


@dataclass(frozen=True)
class Truth:
    """Violation intervals; `end` is the last day in violation, NEVER if ongoing at the end of the data."""

    person: IntArray
    type: IntArray  # code in VIOLATION_TYPE
    start: IntArray
    end: IntArray

    def __len__(self) -> int:
        return len(self.person)

    def take(self, index: IntArray | BoolArray) -> Truth:
        return Truth(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def sorted(self) -> Truth:
        """Ordered by person, start, type."""
        return self.take(np.lexsort((self.type, self.start, self.person)))


def draw_violations(
    persons: Persons, sponsors: Sponsors, stays: Stays, trips: Trips, period: Period, rng: np.random.Generator
) -> Truth:
    """All violation intervals of the world, before any inspection changes them."""
    parts = [_overstays(stays, trips)]
    parts += _resident_violations(persons, sponsors, stays, period, rng)
    parts.append(_visitor_misuse(persons, sponsors, trips, period, rng))
    truth = concat_rows(Truth, parts)
    # The truth covers the period only: what started earlier starts on its first day.
    truth = Truth(truth.person, truth.type, np.maximum(truth.start, period.start), truth.end)
    return truth.take((truth.end >= truth.start) & (truth.start <= period.end)).sorted()


def _overstays(stays: Stays, trips: Trips) -> Truth:
    r, t = stays.overstay, trips.overstay
    return Truth(
        person=np.concatenate([stays.person[r], trips.person[t]]),
        type=np.full(int(r.sum() + t.sum()), OVERSTAY, dtype=np.int64),
        start=np.concatenate([stays.cover_end[r], trips.cover_end[t]]) + 1,
        end=np.concatenate([_last_day(stays.departure[r]), _last_day(trips.exit[t])]),
    )


def _resident_violations(
    persons: Persons, sponsors: Sponsors, stays: Stays, period: Period, rng: np.random.Generator
) -> list[Truth]:
    who = stays.person
    role, risk, n = persons.role[who], persons.risk[who], len(who)
    bad = _bad_sponsor(persons, sponsors)[who].astype(np.int64)
    # Intervals are placed over the whole stay, also the part after the period, so that
    # people still here at the end are not more often in violation than anyone else.
    lo, hi = stays.start(period), stays.leaves - 1
    parts = []
    for vtype, p, median in (
        (UNAPPROVED_WORK, UNAPPROVED_WORK_P[role, bad], 300.0),
        (PERMIT_MISUSE, MISUSE_P[role, bad], 180.0),
        (UNREPORTED_ADDRESS, np.full(n, UNREPORTED_ADDRESS_P), 200.0),
    ):
        hit = _happens(rng, p * risk)
        # Residents present at the start may have been in violation since before it.
        earliest = np.where(stays.entered, stays.first_issue, stays.first_issue - 365)[hit]
        start, end = _interval_within(rng, earliest, hi[hit], median, period)
        parts.append(Truth(who[hit], np.full(len(start), vtype, dtype=np.int64), start, end))
    fraud = _happens(rng, FRAUD_P[role, bad] * risk)
    fraud_end = np.where(hi[fraud] > period.end, NEVER, hi[fraud])
    parts.append(
        Truth(who[fraud], np.full(int(fraud.sum()), DOCUMENT_FRAUD, dtype=np.int64), lo[fraud], fraud_end)
    )
    # Came on a visit visa and started working before the work permit.
    visit = stays.visit_first & _happens(rng, VISIT_PHASE_MISUSE_P[bad] * risk)
    start = stays.first_issue[visit] + rng.integers(0, 6, int(visit.sum()))
    end = np.minimum(stays.first_issue[visit] + 59, hi[visit])
    end = np.where(end > period.end, NEVER, end)
    parts.append(Truth(who[visit], np.full(len(start), PERMIT_MISUSE, dtype=np.int64), start, end))
    return parts


def _visitor_misuse(
    persons: Persons, sponsors: Sponsors, trips: Trips, period: Period, rng: np.random.Generator
) -> Truth:
    """Visitors who work: every trip of theirs is an interval of permit misuse."""
    bad = _bad_sponsor(persons, sponsors).astype(np.int64)
    kind = np.maximum(persons.visitor_kind, 0)
    works = _happens(rng, VISITOR_MISUSE_P[kind, bad] * persons.risk) & (persons.role == Role.VISITOR)
    works &= persons.visitor_kind != VisitorKind.NONE
    t = works[trips.person]
    start = trips.entry[t] + rng.integers(0, 6, int(t.sum()))
    end = _last_day(trips.exit[t])
    keep = start <= np.minimum(end, period.end)
    return Truth(
        trips.person[t][keep], np.full(int(keep.sum()), PERMIT_MISUSE, dtype=np.int64), start[keep], end[keep]
    )


def _bad_sponsor(persons: Persons, sponsors: Sponsors) -> BoolArray:
    return (persons.sponsor >= 0) & sponsors.noncompliant[np.maximum(persons.sponsor, 0)]


def _happens(rng: np.random.Generator, p: FloatArray) -> BoolArray:
    return rng.random(len(p)) < np.minimum(p, MAX_PROBABILITY)


def _last_day(exit_day: IntArray) -> IntArray:
    """The last day in the country before an exit; NEVER stays NEVER."""
    return np.where(exit_day < NEVER, exit_day - 1, NEVER)


def _interval_within(
    rng: np.random.Generator, lo: IntArray, hi: IntArray, median: float, period: Period
) -> tuple[IntArray, IntArray]:
    """An interval starting uniformly in [lo, hi] and ending by hi; an end after the period is NEVER."""
    start = lo + np.floor(rng.random(len(lo)) * np.maximum(hi - lo + 1, 1)).astype(np.int64)
    end = np.minimum(start + lognormal_days(rng, median, 0.8, len(lo)), hi)
    return start, np.where(end > period.end, NEVER, end)


def truth_frame(truth: Truth, person_ids: pd.Series) -> pd.DataFrame:
    """The evaluation-only truth table (`features.contract.TRUTH` columns)."""
    return pd.DataFrame(
        {
            "person_id": person_ids.to_numpy()[truth.person],
            "violation_type": np.array(VIOLATION_TYPE, dtype=object)[truth.type],
            "start_date": to_datetimes(truth.start),
            "end_date": to_datetimes(truth.end),
        }
    )
