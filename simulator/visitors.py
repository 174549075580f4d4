"""Visitors' trips and visit permits: tourists, business visitors and visa runners.

Every trip starts with a visit permit issued on entry (visa on arrival, or a
C-index visit visa), extended while the trip lasts. Visa runners chain trips
with exits and re-entries a few days (or hours) apart. A few visitors overstay
their last trip. Visiting patterns that began before the period are included:
a trip under way at the start has its permits (issued earlier) but no recorded entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.period import NEVER, BoolArray, IntArray, Period, concat_rows, lognormal_days, uniform_days
from simulator.permits import VISIT, VOA, PermitRows, concat_permits, visa_code
from simulator.persons import Persons, Role, VisitorKind
from simulator.sponsors import Sponsors

PERMIT_DAYS = {VOA: 30, VISIT: 60}
MAX_PERMITS_PER_TRIP = {VOA: 2, VISIT: 3}  # one extension of a VOA, two of a visit visa
VOA_SHARE = np.array([0.6, 0.2, 0.5])  # by VisitorKind
EXTRA_TRIPS = np.array([0.5, 1.5, 5.0])  # Poisson mean of trips after the first
MIN_TRIPS = np.array([1, 1, 3])
MAX_TRIPS = 16
OVERSTAY_BASE = np.array([0.01, 0.015, 0.06])
LEAD_IN_DAYS = 730  # first trips start at most this long before the period


@dataclass(frozen=True)
class Trips:
    """One entry per trip into the country."""

    person: IntArray
    entry: IntArray
    exit: IntArray  # NEVER if still in the country at the end
    cover_end: IntArray  # last day covered by the trip's permits
    overstay: BoolArray  # stayed past cover_end

    def __len__(self) -> int:
        return len(self.person)


def plan_visitors(
    persons: Persons, sponsors: Sponsors, period: Period, rng: np.random.Generator
) -> tuple[Trips, PermitRows]:
    """Trips and visit permits for every visitor."""
    idx = np.flatnonzero(persons.role == Role.VISITOR)
    n, kind, sponsor = len(idx), persons.visitor_kind[idx], persons.sponsor[idx]
    bad = (sponsor >= 0) & sponsors.noncompliant[np.maximum(sponsor, 0)]
    ptype = np.where((rng.random(n) < VOA_SHARE[kind]) & (sponsor < 0), VOA, VISIT)
    visa = np.where(ptype == VOA, visa_code("B1"), np.where(sponsor >= 0, visa_code("C2"), visa_code("C1")))
    length = np.where(ptype == VOA, PERMIT_DAYS[VOA], PERMIT_DAYS[VISIT])
    cap = np.where(ptype == VOA, MAX_PERMITS_PER_TRIP[VOA], MAX_PERMITS_PER_TRIP[VISIT])
    n_trips = np.minimum(MIN_TRIPS[kind] + rng.poisson(EXTRA_TRIPS[kind]), MAX_TRIPS)
    over = rng.random(n) < OVERSTAY_BASE[kind] * persons.risk[idx] * np.where(bad, 2.0, 1.0)
    # Visiting patterns may have begun before the period, by about as long as they last.
    cycle = np.where(kind == VisitorKind.RUNNER, 60, 300)
    lead_in = np.minimum((n_trips - 1) * cycle + 30, LEAD_IN_DAYS)
    entry = uniform_days(rng, period.start - lead_in, period.end, n)
    going = np.ones(n, dtype=bool)
    trips: list[Trips] = []
    permits: list[PermitRows] = []
    for k in range(MAX_TRIPS):
        a = np.flatnonzero(going & (k < n_trips) & (entry <= period.end))
        if len(a) == 0:
            break
        m = len(a)
        runner = kind[a] == VisitorKind.RUNNER
        stay = np.where(kind[a] == VisitorKind.BUSINESS, 8.0, 12.0)
        dur = np.where(
            runner,
            cap[a] * length[a] - uniform_days(rng, 1, 5, m),
            lognormal_days(rng, stay, 0.6, m, minimum=1),
        )
        dur = np.minimum(dur, cap[a] * length[a] - 1)
        n_permits = -(-dur // length[a])
        cover_end = entry[a] + n_permits * length[a] - 1
        # An overstay must start inside the period, after a recorded entry, to be a case.
        is_over = over[a] & (k == n_trips[a] - 1) & (cover_end < period.end) & (entry[a] >= period.start)
        late = lognormal_days(rng, np.where(runner, 30.0, 12.0), 1.2, m, minimum=2)
        exit_day = np.where(is_over, cover_end + late, entry[a] + dur)
        exit_day = np.where(exit_day > period.end, NEVER, exit_day)
        seen = exit_day >= period.start  # trips over before the period leave no trace
        trips.append(Trips(idx[a][seen], entry[a][seen], exit_day[seen], cover_end[seen], is_over[seen]))
        for j in range(int(cap[a].max())):
            issue = entry[a] + j * length[a]
            keep = seen & (j < n_permits) & (issue <= period.end)
            permits.append(
                _permit_rows(
                    idx[a][keep],
                    sponsor[a][keep],
                    ptype[a][keep],
                    visa[a][keep],
                    issue[keep],
                    length[a][keep],
                )
            )
        gap = np.where(runner, uniform_days(rng, 0, 4, m), 30 + rng.exponential(240.0, m).astype(np.int64))
        entry[a] = np.where(exit_day < NEVER, exit_day + gap, NEVER)
        going[a] = (exit_day < NEVER) & ~is_over
    joined = concat_rows(Trips, trips)
    return joined, concat_permits(permits)


def _permit_rows(
    person: IntArray, sponsor: IntArray, ptype: IntArray, visa: IntArray, issue: IntArray, length: IntArray
) -> PermitRows:
    none = np.full(len(person), -1, dtype=np.int64)
    return PermitRows(
        person=person,
        sponsor=np.where(ptype == VOA, -1, sponsor),
        type=ptype,
        visa=visa,
        position=none,
        work_district=none,
        issue=issue,
        expiry=issue + length - 1,
        cancelled=np.full(len(person), NEVER, dtype=np.int64),
    )
