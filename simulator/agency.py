"""Reports from partner agencies and the public: true tips, false tips, reports about sponsors.

True tips fall inside violation intervals, with the agency and category such a
violation draws. False tips hit people and sponsors at a low background rate.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from features.contract import AGENCY, REPORT_CATEGORY, VIOLATION_TYPE
from simulator.ids import decode, make_ids
from simulator.movements import Presence
from simulator.period import BoolArray, FloatArray, IntArray, Period, categorical, concat_rows, repeat_counts
from simulator.sponsors import COMPANY, INSTITUTION, Sponsors
from simulator.violations import (
    DOCUMENT_FRAUD,
    OVERSTAY,
    PERMIT_MISUSE,
    UNAPPROVED_WORK,
    UNREPORTED_ADDRESS,
    Truth,
)

# (agency, category) -> weight, by the reason behind a report.
SOURCES: dict[str, dict[tuple[str, str], float]] = {
    "UNAPPROVED_WORK": {
        ("MANPOWER", "ILLEGAL_WORK"): 0.5,
        ("PUBLIC", "ILLEGAL_WORK"): 0.25,
        ("LOCAL_GOV", "ILLEGAL_WORK"): 0.1,
        ("POLICE", "ILLEGAL_WORK"): 0.1,
        ("MANPOWER", "OTHER"): 0.05,
    },
    "PERMIT_MISUSE": {
        ("PUBLIC", "ILLEGAL_WORK"): 0.3,
        ("POLICE", "PERMIT_MISUSE"): 0.2,
        ("LOCAL_GOV", "PERMIT_MISUSE"): 0.15,
        ("MANPOWER", "ILLEGAL_WORK"): 0.15,
        ("PUBLIC", "PERMIT_MISUSE"): 0.15,
        ("INTELLIGENCE", "PERMIT_MISUSE"): 0.05,
    },
    "OVERSTAY": {
        ("POLICE", "PERMIT_MISUSE"): 0.3,
        ("LOCAL_GOV", "ADDRESS"): 0.2,
        ("PUBLIC", "PERMIT_MISUSE"): 0.25,
        ("INTELLIGENCE", "OTHER"): 0.15,
        ("PORT_AUTHORITY", "PERMIT_MISUSE"): 0.05,
        ("MILITARY", "OTHER"): 0.05,
    },
    "UNREPORTED_ADDRESS": {
        ("LOCAL_GOV", "ADDRESS"): 0.5,
        ("PUBLIC", "ADDRESS"): 0.35,
        ("POLICE", "ADDRESS"): 0.15,
    },
    "DOCUMENT_FRAUD": {
        ("POLICE", "OTHER"): 0.3,
        ("INTELLIGENCE", "PERMIT_MISUSE"): 0.25,
        ("PROSECUTOR", "OTHER"): 0.2,
        ("CUSTOMS", "OTHER"): 0.1,
        ("PUBLIC", "PERMIT_MISUSE"): 0.15,
    },
    "NOISE": {
        ("PUBLIC", "PUBLIC_ORDER"): 0.3,
        ("PUBLIC", "ILLEGAL_WORK"): 0.15,
        ("POLICE", "PUBLIC_ORDER"): 0.15,
        ("NARCOTICS", "PUBLIC_ORDER"): 0.05,
        ("RELIGIOUS_AFFAIRS", "OTHER"): 0.05,
        ("LOCAL_GOV", "ADDRESS"): 0.1,
        ("CUSTOMS", "OTHER"): 0.05,
        ("MILITARY", "OTHER"): 0.05,
        ("PUBLIC", "OTHER"): 0.1,
    },
    "SPONSOR": {
        ("MANPOWER", "ILLEGAL_WORK"): 0.5,
        ("PUBLIC", "ILLEGAL_WORK"): 0.2,
        ("LOCAL_GOV", "OTHER"): 0.15,
        ("POLICE", "PUBLIC_ORDER"): 0.05,
        ("MANPOWER", "OTHER"): 0.1,
    },
}
# True tips per year in violation, by violation type code (OVERSTAY .. DOCUMENT_FRAUD).
TIP_RATE = {
    OVERSTAY: 0.6,
    PERMIT_MISUSE: 0.8,
    UNAPPROVED_WORK: 0.8,
    UNREPORTED_ADDRESS: 0.4,
    DOCUMENT_FRAUD: 0.6,
}
REASON = {code: VIOLATION_TYPE[code] for code in TIP_RATE}  # the key into SOURCES
FALSE_TIPS_PER_YEAR = 0.03  # per person-year in the country
FALSE_TIP_MULTIPLIER = 10.0  # a targeted nationality's false public tips, relative to the background


@dataclass(frozen=True)
class FalseTipBias:
    """False PUBLIC tips concentrated on one nationality: extra tips at (multiplier - 1) x the background."""

    nationality: IntArray  # per person: code in NATIONALITIES
    target: int  # the nationality code the public over-reports
    multiplier: float = FALSE_TIP_MULTIPLIER


SPONSOR_REPORTS_PER_YEAR = (0.04, 0.6)  # (compliant, non-compliant) companies


@dataclass(frozen=True)
class AgencyReports:
    """Reports sorted by day; person or sponsor is -1 when not the subject."""

    day: IntArray
    agency: IntArray  # code in AGENCY
    category: IntArray  # code in REPORT_CATEGORY
    person: IntArray
    sponsor: IntArray

    def __len__(self) -> int:
        return len(self.day)

    def take(self, index: IntArray | BoolArray) -> AgencyReports:
        return AgencyReports(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def draw_agency_reports(
    truth: Truth,
    presence: Presence,
    sponsors: Sponsors,
    period: Period,
    rng: np.random.Generator,
    bias: FalseTipBias | None = None,
) -> AgencyReports:
    """True tips about violators, false tips about anyone present, and reports about sponsors.

    Reports about a person are dated while the person is in the country. With a
    `bias`, the public also files extra false tips about one nationality (drawn
    after the rest, so a world without bias is unchanged).
    """
    tips = _true_tips(truth, period, rng)
    parts = [
        tips.take(presence.contains(tips.person, tips.day)),  # said by someone who saw them here
        _false_tips(presence, period, rng),
        _sponsor_reports(sponsors, period, rng),
    ]
    if bias is not None and bias.multiplier > 1.0:
        parts.append(_biased_public_tips(presence, period, bias, rng))
    joined = concat_rows(AgencyReports, parts)
    order = np.lexsort((joined.sponsor, joined.person, joined.day))
    return joined.take(order)


def _true_tips(truth: Truth, period: Period, rng: np.random.Generator) -> AgencyReports:
    last = np.minimum(truth.end, period.end)
    years = np.maximum(last - truth.start + 1, 0) / 365.0
    rate = np.array([TIP_RATE.get(t, 0.0) for t in range(max(REASON) + 1)])[truth.type]
    owner, _ = repeat_counts(rng.poisson(rate * np.minimum(years, 2.0)))
    day = truth.start[owner] + np.floor(rng.random(len(owner)) * (last - truth.start + 1)[owner]).astype(
        np.int64
    )
    agency, category = np.empty(len(owner), dtype=np.int64), np.empty(len(owner), dtype=np.int64)
    for vtype, reason in REASON.items():  # five reasons
        here = truth.type[owner] == vtype
        agency[here], category[here] = _sources(reason, int(here.sum()), rng)
    none = np.full(len(owner), -1, dtype=np.int64)
    return AgencyReports(day, agency, category, truth.person[owner], none)


def _false_tips(presence: Presence, period: Period, rng: np.random.Generator) -> AgencyReports:
    stop = np.minimum(presence.stop, period.end + 1)
    length = np.maximum(stop - presence.start, 0)
    owner, _ = repeat_counts(rng.poisson(FALSE_TIPS_PER_YEAR * length / 365.0))
    day = presence.start[owner] + np.floor(rng.random(len(owner)) * length[owner]).astype(np.int64)
    agency, category = _sources("NOISE", len(owner), rng)
    return AgencyReports(
        day, agency, category, presence.person[owner], np.full(len(owner), -1, dtype=np.int64)
    )


def _biased_public_tips(
    presence: Presence, period: Period, bias: FalseTipBias, rng: np.random.Generator
) -> AgencyReports:
    """Extra false tips from the public about persons of the targeted nationality."""
    stop = np.minimum(presence.stop, period.end + 1)
    length = np.maximum(stop - presence.start, 0)
    targeted = bias.nationality[presence.person] == bias.target
    rate = np.where(targeted, FALSE_TIPS_PER_YEAR * (bias.multiplier - 1.0), 0.0)
    owner, _ = repeat_counts(rng.poisson(rate * length / 365.0))
    day = presence.start[owner] + np.floor(rng.random(len(owner)) * length[owner]).astype(np.int64)
    public = {pair: w for pair, w in SOURCES["NOISE"].items() if pair[0] == "PUBLIC"}
    pairs = list(public)
    pick = categorical(rng, np.array([public[p] for p in pairs]), len(owner))
    agency = np.full(len(owner), AGENCY.index("PUBLIC"), dtype=np.int64)
    category = np.array([REPORT_CATEGORY.index(c) for _, c in pairs], dtype=np.int64)[pick]
    return AgencyReports(
        day, agency, category, presence.person[owner], np.full(len(owner), -1, dtype=np.int64)
    )


def _sponsor_reports(sponsors: Sponsors, period: Period, rng: np.random.Generator) -> AgencyReports:
    first = np.maximum(sponsors.registered, period.start)
    length = np.maximum(period.end - first + 1, 0)
    rate: FloatArray = np.where(
        sponsors.noncompliant, SPONSOR_REPORTS_PER_YEAR[1], SPONSOR_REPORTS_PER_YEAR[0]
    )
    rate = np.select([sponsors.type == COMPANY, sponsors.type == INSTITUTION], [rate, rate / 2], 0.0)
    owner, _ = repeat_counts(rng.poisson(rate * length / 365.0))
    day = first[owner] + np.floor(rng.random(len(owner)) * length[owner]).astype(np.int64)
    agency, category = _sources("SPONSOR", len(owner), rng)
    return AgencyReports(day, agency, category, np.full(len(owner), -1, dtype=np.int64), owner)


def _sources(reason: str, size: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    pairs = list(SOURCES[reason])
    pick = categorical(rng, np.array([SOURCES[reason][p] for p in pairs]), size)
    agency = np.array([AGENCY.index(a) for a, _ in pairs], dtype=np.int64)[pick]
    category = np.array([REPORT_CATEGORY.index(c) for _, c in pairs], dtype=np.int64)[pick]
    return agency, category


def agency_frame(reports: AgencyReports, person_ids: pd.Series, sponsor_ids: pd.Series) -> pd.DataFrame:
    """The agency_reports table (contract columns); ids follow the row order."""
    return pd.DataFrame(
        {
            "report_id": make_ids("AR", len(reports), 7),
            "report_date": reports.day.astype("datetime64[D]").astype("datetime64[s]"),
            "agency": np.array(AGENCY, dtype=object)[reports.agency],
            "person_id": decode(person_ids.to_numpy(dtype=object), reports.person),
            "sponsor_id": decode(sponsor_ids.to_numpy(dtype=object), reports.sponsor),
            "category": np.array(REPORT_CATEGORY, dtype=object)[reports.category],
        }
    )
