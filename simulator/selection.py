"""How the office picks whom to inspect in a month: sponsor-site routines, a naive targeting rule,
tips from agency reports, and a small uniformly random sample.

Selection for a month uses only what is known at the start of that month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract import AGENCY
from simulator.agency import AgencyReports
from simulator.intervals import mask_of
from simulator.labour import LabourFindings
from simulator.period import NEVER, BoolArray, FloatArray, IntArray, uniform_days
from simulator.permits import PermitRows
from simulator.sponsors import INDIVIDUAL, Sponsors
from simulator.violations import OVERSTAY, Truth

ROUTINE_PER_CASE_YEAR = 0.05  # persons checked at sponsor sites, per case-year
TARGETED_PER_CASE_YEAR = 0.03
PERSONS_PER_VISIT = 3.5
RECHECK_GAP_DAYS = 60  # targeting skips persons inspected this recently
TIP_DELAY_DAYS = (2, 42)
# Share of reports about a person that the office follows up with an inspection, by agency.
FOLLOW_UP = {
    "POLICE": 0.6,
    "INTELLIGENCE": 0.6,
    "PROSECUTOR": 0.6,
    "NARCOTICS": 0.5,
    "MILITARY": 0.5,
    "MANPOWER": 0.5,
    "LOCAL_GOV": 0.4,
    "PUBLIC": 0.3,
}  # other agencies: 0.25
_SHIFT = np.int64(2**32)


@dataclass(frozen=True)
class Picks:
    """Persons chosen for inspection, with day and (for site visits) sponsor."""

    person: IntArray
    day: IntArray
    sponsor: IntArray

    def __len__(self) -> int:
        return len(self.person)


def draw_random(cases: BoolArray, n: int, rng: np.random.Generator) -> tuple[IntArray, float]:
    """`n` cases drawn uniformly without replacement, and each case's probability of being drawn."""
    pool = np.flatnonzero(cases)
    n = min(n, len(pool))
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0.0
    return rng.choice(pool, size=n, replace=False).astype(np.int64), n / len(pool)


def schedule_tips(reports: AgencyReports, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """(person, day) of follow-up inspections of reports about persons, sorted by day."""
    follow = np.array([FOLLOW_UP.get(a, 0.25) for a in AGENCY])[reports.agency]
    chosen = (reports.person >= 0) & (rng.random(len(reports)) < follow)
    day = reports.day[chosen] + uniform_days(rng, *TIP_DELAY_DAYS, int(chosen.sum()))
    person = reports.person[chosen]
    order = np.lexsort((person, day))
    return person[order], day[order]


def routine_picks(
    present: BoolArray,
    permits: PermitRows,
    sponsors: Sponsors,
    labour: LabourFindings,
    reports: AgencyReports,
    month: tuple[int, int],
    rng: np.random.Generator,
) -> Picks:
    """Site visits at sponsors with foreigners on their books; a few of each sponsor's people are checked."""
    ref = month[0]
    people = np.flatnonzero(present)
    sponsor = current_sponsor(permits, people, ref)
    on_site = (sponsor >= 0) & (sponsors.type[np.maximum(sponsor, 0)] != INDIVIDUAL)
    people, sponsor = people[on_site], sponsor[on_site]
    counts = np.bincount(sponsor, minlength=sponsors.n).astype(np.float64)
    recent_labour = np.bincount(
        labour.sponsor[(labour.day < ref) & (labour.day >= ref - 365)], minlength=sponsors.n
    )
    tip = (reports.sponsor >= 0) & (reports.day < ref) & (reports.day >= ref - 90)
    recent_tips = np.bincount(reports.sponsor[tip], minlength=sponsors.n)
    weight = counts * (1 + 3 * (recent_labour > 0)) * (1 + (recent_tips > 0))
    target = ROUTINE_PER_CASE_YEAR / 12 * present.sum() / PERSONS_PER_VISIT
    n_visits = min(int(rng.poisson(target)), int((weight > 0).sum()))
    if n_visits == 0:
        return _no_picks()
    visited = rng.choice(sponsors.n, size=n_visits, replace=False, p=weight / weight.sum())
    quota = np.zeros(sponsors.n, dtype=np.int64)
    quota[visited] = 1 + rng.poisson(PERSONS_PER_VISIT - 1, n_visits)
    visit_day = np.zeros(sponsors.n, dtype=np.int64)
    visit_day[visited] = uniform_days(rng, month[0], month[1], n_visits)
    order = np.lexsort((rng.random(len(people)), sponsor))
    people, sponsor = people[order], sponsor[order]
    first = np.searchsorted(sponsor, sponsor, side="left")
    rank = np.arange(len(sponsor)) - first
    keep = rank < quota[sponsor]
    return Picks(people[keep], visit_day[sponsor[keep]], sponsor[keep])


def targeted_picks(
    present: BoolArray,
    last_inspected: IntArray,
    removed: IntArray,
    truth: Truth,
    truth_end: IntArray,
    permits: PermitRows,
    reports: AgencyReports,
    month: tuple[int, int],
    rng: np.random.Generator,
) -> Picks:
    """The office's naive rule: overstaying now, reported lately, or permit about to expire."""
    ref, n = month[0], len(present)
    over = (truth.type == OVERSTAY) & (truth.start <= ref) & (truth_end >= ref)
    reported = (reports.person >= 0) & (reports.day < ref) & (reports.day >= ref - 60)
    expiring = (permits.issue <= ref) & (permits.expiry >= ref) & (permits.expiry <= ref + 30)
    expiring &= permits.cancelled > ref
    score: FloatArray = (
        6.0 * mask_of(truth.person[over], n)
        + 3.0 * mask_of(reports.person[reported], n)
        + 1.0 * mask_of(permits.person[expiring], n)
    )
    eligible = present & (ref - last_inspected > RECHECK_GAP_DAYS) & (removed == NEVER) & (score > 0)
    pool = np.flatnonzero(eligible)
    size = min(int(rng.poisson(TARGETED_PER_CASE_YEAR / 12 * present.sum())), len(pool))
    if size == 0:
        return _no_picks()
    chosen = rng.choice(pool, size=size, replace=False, p=score[pool] / score[pool].sum()).astype(np.int64)
    day = uniform_days(rng, month[0], month[1], size)
    return Picks(chosen, day, np.full(size, -1, dtype=np.int64))


def current_sponsor(permits: PermitRows, people: IntArray, day: int) -> IntArray:
    """Sponsor of each person's latest permit issued on or before `day` (-1 if none); permits sorted."""
    keys = permits.person * _SHIFT + permits.issue
    pos = np.searchsorted(keys, people * _SHIFT + day, side="right") - 1
    safe = np.maximum(pos, 0)
    ok = (pos >= 0) & (permits.person[safe] == people)
    return np.where(ok, permits.sponsor[safe], -1).astype(np.int64)


def _no_picks() -> Picks:
    empty = np.zeros(0, dtype=np.int64)
    return Picks(empty, empty, empty)
