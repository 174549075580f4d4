"""Residence reports: hotels for visitors, sponsors, landlords and the person for residents.

Residents report with realistic gaps, and some move district. People in an
UNREPORTED_ADDRESS violation stop reporting (and have moved when they report
again); people working where they are not approved to often report living there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import REPORTER
from simulator.intervals import covering
from simulator.movements import Crossings, Presence
from simulator.period import NEVER, BoolArray, IntArray, Period, repeat_counts, uniform_days
from simulator.permits import VISIT, VOA, PermitRows
from simulator.persons import Persons, Role, VisitorKind
from simulator.reference import DISTRICTS
from simulator.sponsors import INDIVIDUAL, Sponsors
from simulator.violations import UNAPPROVED_WORK, UNREPORTED_ADDRESS, Truth
from simulator.visitors import Trips

HOTEL, LANDLORD, SPONSOR, SELF = (REPORTER.index(r) for r in ("HOTEL", "LANDLORD", "SPONSOR", "SELF"))
HOTEL_REPORT_P = np.array([0.85, 0.8, 0.45])  # by VisitorKind
REPORTS_PER_YEAR = np.array([3.0, 2.0, 2.0, 3.0, 2.5, 1.5])  # residents' own and landlords' reports, by Role
SPONSOR_REPORT_P = 0.75  # a sponsor reports the address when a permit is issued
RETURN_REPORT_P = 0.4  # a resident reports again after coming back
MOVE_P = 0.25  # a resident moves district once during the stay
SHOWS_WORKPLACE_P = 0.6  # unapproved workers reporting the place they actually work


@dataclass(frozen=True)
class AddressReports:
    person: IntArray
    day: IntArray
    district: IntArray  # code in DISTRICTS
    reporter: IntArray  # code in REPORTER

    def __len__(self) -> int:
        return len(self.person)


def draw_address_reports(
    persons: Persons,
    sponsors: Sponsors,
    trips: Trips,
    crossings: Crossings,
    permits: PermitRows,
    presence: Presence,
    truth: Truth,
    period: Period,
    rng: np.random.Generator,
) -> AddressReports:
    """Reports from every source, kept where the person is in the country and reporting."""
    resident = persons.role != Role.VISITOR
    parts = [
        _hotel_reports(persons, trips, rng),
        _sponsor_reports(resident, sponsors, permits, rng),
        _periodic_reports(persons, resident, presence, period, rng),
        _return_reports(resident, crossings, rng),
    ]
    person = np.concatenate([p[0] for p in parts])
    day = np.concatenate([p[1] for p in parts])
    reporter = np.concatenate([p[2] for p in parts])
    keep = (day >= period.start) & (day <= period.end) & presence.contains(person, day)
    silent = _sub(truth, UNREPORTED_ADDRESS)
    keep &= covering(silent.person, silent.start, silent.end, person, day) < 0
    person, day, reporter = person[keep], day[keep], reporter[keep]
    district = _district(persons, truth, person, day, period, rng)
    order = np.lexsort((reporter, day, person))
    return AddressReports(person[order], day[order], district[order], reporter[order])


def _hotel_reports(persons: Persons, trips: Trips, rng: np.random.Generator) -> tuple[IntArray, ...]:
    kind = persons.visitor_kind[trips.person]
    made = rng.random(len(trips)) < HOTEL_REPORT_P[np.maximum(kind, 0)]
    day = trips.entry[made] + uniform_days(rng, 0, 2, int(made.sum()))
    return trips.person[made], day, np.full(len(day), HOTEL, dtype=np.int64)


def _sponsor_reports(
    resident: BoolArray, sponsors: Sponsors, permits: PermitRows, rng: np.random.Generator
) -> tuple[IntArray, ...]:
    stay_permit = resident[permits.person] & ~np.isin(permits.type, (VOA, VISIT)) & (permits.sponsor >= 0)
    by_organisation = sponsors.type[np.maximum(permits.sponsor, 0)] != INDIVIDUAL
    made = stay_permit & by_organisation & (rng.random(len(permits)) < SPONSOR_REPORT_P)
    day = permits.issue[made] + uniform_days(rng, 0, 14, int(made.sum()))
    return permits.person[made], day, np.full(len(day), SPONSOR, dtype=np.int64)


def _periodic_reports(
    persons: Persons, resident: BoolArray, presence: Presence, period: Period, rng: np.random.Generator
) -> tuple[IntArray, ...]:
    spans = resident[presence.person]
    who, start = presence.person[spans], presence.start[spans]
    length = np.maximum(np.minimum(presence.stop[spans], period.end + 1) - start, 0)
    rate = REPORTS_PER_YEAR[persons.role[who]]
    owner, _ = repeat_counts(rng.poisson(rate * length / 365.0))
    day = start[owner] + np.floor(rng.random(len(owner)) * length[owner]).astype(np.int64)
    own = (rng.random(len(owner)) < 0.45) | (persons.sponsor[who[owner]] < 0)
    return who[owner], day, np.where(own, SELF, LANDLORD).astype(np.int64)


def _return_reports(
    resident: BoolArray, crossings: Crossings, rng: np.random.Generator
) -> tuple[IntArray, ...]:
    made = crossings.is_in & resident[crossings.person] & (rng.random(len(crossings)) < RETURN_REPORT_P)
    day = crossings.day[made] + uniform_days(rng, 0, 7, int(made.sum()))
    who = rng.random(int(made.sum())) < 0.5
    return crossings.person[made], day, np.where(who, SELF, LANDLORD).astype(np.int64)


def _district(
    persons: Persons, truth: Truth, person: IntArray, day: IntArray, period: Period, rng: np.random.Generator
) -> IntArray:
    """Home, or the other district after a move and (for many) while working unapproved."""
    n = persons.n
    move_day = np.where(rng.random(n) < MOVE_P, rng.integers(period.start, period.end + 1, n), NEVER)
    silent = _sub(truth, UNREPORTED_ADDRESS)
    move_day[silent.person] = np.minimum(move_day[silent.person], silent.start)  # moved without telling
    moved = day >= move_day[person]
    work = _sub(truth, UNAPPROVED_WORK)
    shows = rng.random(n) < SHOWS_WORKPLACE_P
    elsewhere = (covering(work.person, work.start, work.end, person, day) >= 0) & shows[person]
    runner = persons.visitor_kind[person] == VisitorKind.RUNNER
    roams = runner & (rng.random(len(person)) < 0.3)
    other = moved ^ elsewhere ^ roams
    return np.where(other, persons.alt[person], persons.home[person])


def _sub(truth: Truth, vtype: int) -> Truth:
    """Intervals of one type (at most one at a time per person), sorted by person and start."""
    return truth.take(truth.type == vtype)


def address_frame(reports: AddressReports, person_ids: pd.Series) -> pd.DataFrame:
    """The address_reports table (contract columns)."""
    return pd.DataFrame(
        {
            "person_id": person_ids.to_numpy()[reports.person],
            "report_date": reports.day.astype("datetime64[D]").astype("datetime64[s]"),
            "district": np.array(DISTRICTS, dtype=object)[reports.district],
            "reporter": np.array(REPORTER, dtype=object)[reports.reporter],
        }
    )
