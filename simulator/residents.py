"""Residents' stays and permit chains: extensions, conversions, sponsor switches, overstays.

A resident is either already in the country at the start (their first permit
was issued before it, and no entry is recorded) or arrives during the period.
Each permit starts the day after the previous one ends. Overstayers stop
extending and stay past their last permit, to leave later or never.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.period import (
    NEVER,
    BoolArray,
    IntArray,
    Period,
    choose_weighted,
    lognormal_days,
    uniform_days,
)
from simulator.permits import (
    ITAP,
    ITAS_FAMILY,
    ITAS_INVESTOR,
    ITAS_RETIREMENT,
    ITAS_STUDY,
    ITAS_WORK,
    VISIT,
    PermitRows,
    concat_permits,
    visa_code,
)
from simulator.persons import Persons, Role
from simulator.reference import POSITIONS, POSITIONS_BY_SECTOR, SECTORS
from simulator.sponsors import COMPANY, INDIVIDUAL, Sponsors

# Indexed by Role (residents only: WORKER .. PERMANENT).
ROLE_PERMIT = np.array([ITAS_WORK, ITAS_INVESTOR, ITAS_FAMILY, ITAS_STUDY, ITAS_RETIREMENT, ITAS_FAMILY])
PRESENT_AT_START = np.array([0.4, 0.45, 0.45, 0.35, 0.5, 0.9])
STAY_MEDIAN_YEARS = np.array([2.5, 3.5, 3.0, 2.5, 4.0, 10.0])
OVERSTAY_BASE = np.array([0.05, 0.02, 0.04, 0.06, 0.04, 0.01])
ITAP_DAYS = 1826
VISIT_DAYS = 60
SWITCH_RATE = 0.05  # work permits ending early for a new employer
ITAP_CONVERSION_RATE = 0.1  # per permit, from the fourth permit on
VISA_OF_TYPE = {
    VISIT: "C2",
    ITAS_WORK: "E23",
    ITAS_INVESTOR: "E28A",
    ITAS_STUDY: "E30A",
    ITAS_RETIREMENT: "E33F",
}


@dataclass(frozen=True)
class Stays:
    """One entry per resident."""

    person: IntArray
    first_issue: IntArray  # issue day of the first permit (before the period for those present at start)
    entered: BoolArray  # arrived inside the period: an entry is recorded on first_issue
    leaves: IntArray  # day of the final exit, even when after the end of the period
    departure: IntArray  # day of the final exit; NEVER if still in the country at the end
    cover_end: IntArray  # last day covered by the permit chain
    overstay: BoolArray  # stayed on past cover_end
    visit_first: BoolArray  # came on a visit permit before the work permit

    def __len__(self) -> int:
        return len(self.person)

    def start(self, period: Period) -> IntArray:
        """First day in the country within the period."""
        return np.maximum(self.first_issue, period.start)

    def trip_window_end(self, period: Period) -> IntArray:
        """Trips abroad must be back by this day: inside the permit cover and before departing."""
        last = np.minimum(np.where(self.departure < NEVER, self.departure, period.end), self.cover_end)
        return last - 25


def plan_residents(
    persons: Persons, sponsors: Sponsors, period: Period, rng: np.random.Generator
) -> tuple[Stays, PermitRows]:
    """Stays and permit chains for everyone who is not a visitor."""
    idx = np.flatnonzero(persons.role != Role.VISITOR)
    n, role, sponsor = len(idx), persons.role[idx], persons.sponsor[idx]
    bad = sponsors.noncompliant[sponsor]
    base_len = np.select(
        [role == Role.WORKER, role == Role.INVESTOR],
        [rng.choice(np.array([365, 182, 730]), n, p=[0.7, 0.15, 0.15]), np.full(n, 730)],
        365,
    ).astype(np.int64)
    pre = rng.random(n) < PRESENT_AT_START[role]
    arrival = uniform_days(rng, period.start, period.end, n)
    burst = (role == Role.WORKER) & bad & (rng.random(n) < 0.5)  # bad employers hire in bursts
    growth = sponsors.growth_start[sponsor]
    arrival = np.where(burst, uniform_days(rng, growth, np.minimum(growth + 240, period.end), n), arrival)
    pre &= ~burst
    first_len = np.where((role == Role.PERMANENT) & pre, ITAP_DAYS, base_len)
    issued_before = period.start - np.floor(rng.random(n) * first_len).astype(np.int64)
    first_issue = np.where(pre, np.maximum(issued_before, persons.born[idx]), arrival)  # not before birth
    median_stay = STAY_MEDIAN_YEARS[role] * 365
    stay = lognormal_days(rng, median_stay, 0.6, n, minimum=30)
    leave = np.where(
        pre, period.start + lognormal_days(rng, 0.6 * median_stay, 0.8, n, minimum=30), arrival + stay
    )
    visit_first = ~pre & (role == Role.WORKER) & (rng.random(n) < np.where(bad, 0.5, 0.12))
    p_over = OVERSTAY_BASE[role] * np.where(bad, 2.5, 1.0) * persons.risk[idx]
    lo, hi = np.maximum(first_issue, period.start) + 60, np.minimum(leave, period.end)
    over = (rng.random(n) < p_over) & (hi > lo)
    stop = np.where(over, uniform_days(rng, lo, hi, n), leave)
    chain = _Chain(idx, role, sponsor, base_len, visit_first, pre, sponsors, rng)
    rows, last_row, cover_end = chain.run(first_issue, np.minimum(stop, period.end))
    over &= cover_end < period.end
    overstay_days = lognormal_days(rng, 45.0, 1.0, n, minimum=2)
    leaves = np.where(over, cover_end + overstay_days, leave)
    departure = np.where(leaves > period.end, NEVER, leaves)
    # Leavers often have their permit cancelled on departure (exit permit only).
    cancel = ~over & (departure < NEVER) & (cover_end - departure >= 30) & (rng.random(n) < 0.7)
    cancelled = rows.cancelled.copy()
    cancelled[last_row[cancel]] = departure[cancel]
    stays = Stays(idx, first_issue, ~pre, leaves, departure, cover_end, over, visit_first)
    return stays, rows.with_cancelled(cancelled)


class _Chain:
    """Builds permit chains one position at a time, vectorised over residents."""

    def __init__(
        self,
        idx: IntArray,
        role: IntArray,
        sponsor: IntArray,
        base_len: IntArray,
        visit_first: BoolArray,
        pre: BoolArray,
        sponsors: Sponsors,
        rng: np.random.Generator,
    ) -> None:
        self.idx, self.role, self.base_len, self.visit_first = idx, role, base_len, visit_first
        self.sponsors, self.rng = sponsors, rng
        self.sponsor = sponsor.copy()
        self.itap = (role == Role.PERMANENT) & pre
        self.position = _draw_positions(sponsors.sector[sponsor], rng)
        self.company_weights = (sponsors.type == COMPANY) * sponsors.size

    def run(self, first_issue: IntArray, limit: IntArray) -> tuple[PermitRows, IntArray, IntArray]:
        """Permits from `first_issue` until the cover reaches `limit`; rows, each last row, cover end."""
        n = len(self.idx)
        cur, active = first_issue.copy(), np.ones(n, dtype=bool)
        last_row, cover = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
        parts: list[PermitRows] = []
        offset, k = 0, 0
        while active.any():
            a = np.flatnonzero(active)
            part, nxt, cover_a = self._step(a, cur[a], limit[a], k)
            parts.append(part)
            last_row[a] = offset + np.arange(len(a))
            offset += len(a)
            cover[a], cur[a] = cover_a, nxt
            active[a] = nxt <= limit[a]
            k += 1
        return concat_permits(parts), last_row, cover

    def _step(
        self, a: IntArray, issue: IntArray, limit: IntArray, k: int
    ) -> tuple[PermitRows, IntArray, IntArray]:
        rng, role, m = self.rng, self.role[a], len(a)
        if k >= 2:
            self.itap[a] |= role == Role.PERMANENT
        if k >= 3:
            eligible = np.isin(role, (Role.WORKER, Role.INVESTOR, Role.FAMILY, Role.RETIREE))
            self.itap[a] |= eligible & (rng.random(m) < ITAP_CONVERSION_RATE)
        is_visit = self.visit_first[a] & (k == 0)
        itap = self.itap[a]
        ptype = np.where(is_visit, VISIT, np.where(itap, ITAP, ROLE_PERMIT[role]))
        length = np.where(is_visit, VISIT_DAYS, np.where(itap, ITAP_DAYS, self.base_len[a]))
        expiry = issue + length - 1
        cut = issue + uniform_days(rng, 30, np.maximum(length - 30, 30), m)
        switch = (ptype == ITAS_WORK) & (k >= 1) & (rng.random(m) < SWITCH_RATE) & (cut + 1 <= limit)
        sponsor = self.sponsor[a]
        is_work = ptype == ITAS_WORK
        rows = PermitRows(
            person=self.idx[a],
            sponsor=sponsor,
            type=ptype,
            visa=self._visa(ptype, sponsor),
            position=np.where(is_work, self.position[a], -1),
            work_district=np.where(is_work, self.sponsors.district[sponsor], -1),
            issue=issue,
            expiry=expiry,
            cancelled=np.where(switch, cut, NEVER),
        )
        new_sponsor = choose_weighted(rng, self.company_weights, int(switch.sum()))
        self.sponsor[a[switch]] = new_sponsor
        return rows, np.where(switch, cut + 1, expiry + 1), np.where(switch, cut, expiry)

    def _visa(self, ptype: IntArray, sponsor: IntArray) -> IntArray:
        visa = np.full(len(ptype), -1, dtype=np.int64)
        for permit_type, code in VISA_OF_TYPE.items():
            visa[ptype == permit_type] = visa_code(code)
        family = ptype == ITAS_FAMILY
        by_individual = self.sponsors.type[sponsor] == INDIVIDUAL
        visa[family] = np.where(by_individual[family], visa_code("E31A"), visa_code("E31B"))
        return visa


def _draw_positions(sector: IntArray, rng: np.random.Generator) -> IntArray:
    """An approved job title from the sponsor's sector (-1 without a sector)."""
    out = np.full(len(sector), -1, dtype=np.int64)
    u = rng.random(len(sector))
    for code, name in enumerate(SECTORS):  # a dozen sectors
        options = np.array([POSITIONS.index(p) for p in POSITIONS_BY_SECTOR[name]])
        here = sector == code
        out[here] = options[np.floor(u[here] * len(options)).astype(np.int64)]
    return out
