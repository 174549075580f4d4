"""The data set as integer-coded, time-sorted event arrays (built once per run).

Every event table becomes numpy arrays keyed by person (or sponsor) code and
sorted by (key, day). Nothing here depends on an as-of date: per-date work is
done by `features.snapshot` and the family modules by masking these arrays with
"day <= T", which is what makes the features point-in-time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import (
    AGENCY,
    LABOUR_VIOLATION,
    PERMIT_TYPE,
    REPORT_CATEGORY,
    SPONSOR_TYPE,
)
from features.grouping import BoolArray, FloatArray, IntArray, previous_in_group
from features.registry import KBLI_SECTIONS
from features.tables import Tables

# Day numbers are days since 1970-01-01; a missing end date is "never".
NEVER = np.int64(10**9)
VISA_RUN_MAX_GAP_DAYS = 7  # an exit and re-entry within this many days is a visa run


def day_numbers(dates: pd.Series, missing: np.int64 = NEVER) -> IntArray:
    """Dates as int64 days since the epoch; NaT becomes `missing`."""
    values = dates.to_numpy(dtype="datetime64[s]")
    days = values.astype("datetime64[D]").astype(np.int64)
    days[np.isnat(values)] = missing
    return days


def codes_of(values: pd.Series, index: pd.Index) -> IntArray:
    """Positions of `values` in `index`; -1 for null or unknown values."""
    return index.get_indexer(pd.Index(values)).astype(np.int64)


def enum_codes(values: pd.Series, categories: tuple[str, ...]) -> IntArray:
    """Positions of enumeration values in their closed vocabulary; -1 for null."""
    return codes_of(values, pd.Index(categories))


def _sort_by_key_then_day(*columns: IntArray) -> IntArray:
    """Stable order by the first array, then the next ones (lexsort takes the last key first)."""
    return np.lexsort(tuple(reversed(columns)))


@dataclass(frozen=True)
class PermitEvents:
    person: IntArray
    sponsor: IntArray
    type: IntArray
    issue: IntArray
    expiry: IntArray
    cancelled: IntArray  # NEVER when not cancelled
    work_district: IntArray  # code in Timeline.districts, -1 when null
    is_extension: BoolArray  # continues the previous permit with the same type
    is_conversion: BoolArray  # continues the previous permit with another type
    is_sponsor_switch: BoolArray  # sponsor differs from the previous permit's sponsor


@dataclass(frozen=True)
class CrossingEvents:
    person: IntArray
    day: IntArray
    is_in: BoolArray
    exit_overstay_days: IntArray  # days past permit cover at an exit; 0 otherwise
    is_visa_run_return: BoolArray  # an entry shortly after an exit


@dataclass(frozen=True)
class AddressEvents:
    person: IntArray
    day: IntArray
    district: IntArray
    is_change: BoolArray  # district differs from the person's previous report


@dataclass(frozen=True)
class AgencyEvents:
    person: IntArray
    sponsor: IntArray
    day: IntArray
    agency: IntArray
    category: IntArray


@dataclass(frozen=True)
class LabourEvents:
    sponsor: IntArray
    day: IntArray
    violation: IntArray


@dataclass(frozen=True)
class InspectionEvents:
    person: IntArray
    sponsor: IntArray
    day: IntArray
    found: BoolArray


@dataclass(frozen=True)
class SponsorAttributes:
    type: IntArray
    sector: IntArray  # code in features.registry.KBLI_SECTIONS, -1 when null or unknown
    registered: IntArray
    quota: FloatArray  # NaN when the sponsor has no RPTKA quota
    district: IntArray  # code in Timeline.districts


@dataclass(frozen=True)
class Timeline:
    """All event tables, coded and sorted; the input of every per-date computation."""

    person_ids: pd.Index
    sponsor_ids: pd.Index
    districts: pd.Index
    permits: PermitEvents
    crossings: CrossingEvents
    addresses: AddressEvents
    agency: AgencyEvents
    labour: LabourEvents
    inspections: InspectionEvents
    sponsors: SponsorAttributes

    @property
    def n_persons(self) -> int:
        return len(self.person_ids)

    @property
    def n_sponsors(self) -> int:
        return len(self.sponsor_ids)


def _permit_events(
    frame: pd.DataFrame, persons: pd.Index, sponsors: pd.Index, districts: pd.Index
) -> PermitEvents:
    person = codes_of(frame["person_id"], persons)
    issue = day_numbers(frame["issue_date"])
    expiry = day_numbers(frame["expiry_date"])
    order = _sort_by_key_then_day(person, issue, expiry)
    person, issue, expiry = person[order], issue[order], expiry[order]
    sponsor = codes_of(frame["sponsor_id"], sponsors)[order]
    ptype = enum_codes(frame["permit_type"], PERMIT_TYPE)[order]
    same = previous_in_group(person)
    prev_expiry = np.roll(expiry, 1)
    prev_type = np.roll(ptype, 1)
    prev_sponsor = np.roll(sponsor, 1)
    continues = same & (issue <= prev_expiry + 1)
    return PermitEvents(
        person=person,
        sponsor=sponsor,
        type=ptype,
        issue=issue,
        expiry=expiry,
        cancelled=day_numbers(frame["cancelled_date"])[order],
        work_district=codes_of(frame["work_district"], districts)[order],
        is_extension=continues & (ptype == prev_type),
        is_conversion=continues & (ptype != prev_type),
        is_sponsor_switch=same & (sponsor >= 0) & (prev_sponsor >= 0) & (sponsor != prev_sponsor),
    )


def _cover_end_as_of(permits: PermitEvents, person: IntArray, day: IntArray) -> IntArray:
    """For each (person, day): the last day covered by any permit issued on or before that day.

    A permit covers issue..min(expiry, cancelled). Using the cancellation here is
    safe for days <= T: it only matters when it falls before `day`.
    """
    cover_end = np.minimum(permits.expiry, permits.cancelled)
    running = pd.Series(cover_end).groupby(permits.person).cummax().to_numpy(dtype=np.int64)
    # Position of the last permit of the same person issued on or before `day`.
    span = np.int64(2 * NEVER + 2)
    permit_keys = permits.person * span + permits.issue
    query_keys = person * span + day
    pos = np.searchsorted(permit_keys, query_keys, side="right") - 1
    ok = (pos >= 0) & (permits.person[np.clip(pos, 0, None)] == person) if len(permit_keys) else pos >= 0
    out = np.full(len(person), -NEVER, dtype=np.int64)
    out[ok] = running[pos[ok]]
    return out


def _crossing_events(frame: pd.DataFrame, persons: pd.Index, permits: PermitEvents) -> CrossingEvents:
    person = codes_of(frame["person_id"], persons)
    day = day_numbers(frame["crossing_date"])
    is_in = (frame["direction"] == "IN").to_numpy(dtype=bool)
    # On a day with both, the entry is the later crossing (the contract's rule).
    order = _sort_by_key_then_day(person, day, is_in.astype(np.int64))
    person, day, is_in = person[order], day[order], is_in[order]
    cover_end = _cover_end_as_of(permits, person, day)
    had_permit = cover_end > -NEVER
    overstay = np.where(~is_in & had_permit & (cover_end < day), day - cover_end, 0)
    same = previous_in_group(person)
    prev_day = np.roll(day, 1)
    prev_is_out = ~np.roll(is_in, 1)
    visa_run = same & is_in & prev_is_out & (day - prev_day <= VISA_RUN_MAX_GAP_DAYS)
    return CrossingEvents(person, day, is_in, overstay.astype(np.int64), visa_run)


def _address_events(frame: pd.DataFrame, persons: pd.Index, districts: pd.Index) -> AddressEvents:
    person = codes_of(frame["person_id"], persons)
    day = day_numbers(frame["report_date"])
    district = codes_of(frame["district"], districts)
    order = _sort_by_key_then_day(person, day)
    person, day, district = person[order], day[order], district[order]
    is_change = previous_in_group(person) & (district != np.roll(district, 1))
    return AddressEvents(person, day, district, is_change)


def build_timeline(tables: Tables) -> Timeline:
    """Code and sort every event table of a validated data set."""
    persons = pd.Index(tables.persons["person_id"])
    sponsors = pd.Index(tables.sponsors["sponsor_id"])
    districts = pd.Index(
        pd.concat(
            [tables.address_reports["district"], tables.permits["work_district"], tables.sponsors["district"]]
        )
        .dropna()
        .unique()
    )
    permits = _permit_events(tables.permits, persons, sponsors, districts)
    agency = tables.agency_reports
    labour = tables.labour_violations
    inspections = tables.inspections
    sponsor_frame = tables.sponsors
    return Timeline(
        person_ids=persons,
        sponsor_ids=sponsors,
        districts=districts,
        permits=permits,
        crossings=_crossing_events(tables.border_crossings, persons, permits),
        addresses=_address_events(tables.address_reports, persons, districts),
        agency=AgencyEvents(
            person=codes_of(agency["person_id"], persons),
            sponsor=codes_of(agency["sponsor_id"], sponsors),
            day=day_numbers(agency["report_date"]),
            agency=enum_codes(agency["agency"], AGENCY),
            category=enum_codes(agency["category"], REPORT_CATEGORY),
        ),
        labour=LabourEvents(
            sponsor=codes_of(labour["sponsor_id"], sponsors),
            day=day_numbers(labour["finding_date"]),
            violation=enum_codes(labour["violation"], LABOUR_VIOLATION),
        ),
        inspections=_inspection_events(inspections, persons, sponsors),
        sponsors=SponsorAttributes(
            type=enum_codes(sponsor_frame["sponsor_type"], SPONSOR_TYPE),
            sector=enum_codes(sponsor_frame["sector"], KBLI_SECTIONS),
            registered=day_numbers(sponsor_frame["registered_date"]),
            quota=np.asarray(sponsor_frame["rptka_quota"].astype("float64"), dtype=np.float64),
            district=codes_of(sponsor_frame["district"], districts),
        ),
    )


def _inspection_events(frame: pd.DataFrame, persons: pd.Index, sponsors: pd.Index) -> InspectionEvents:
    person = codes_of(frame["person_id"], persons)
    day = day_numbers(frame["inspection_date"])
    order = _sort_by_key_then_day(person, day)
    return InspectionEvents(
        person=person[order],
        sponsor=codes_of(frame["sponsor_id"], sponsors)[order],
        day=day[order],
        found=frame["violation_found"].to_numpy(dtype=bool)[order],
    )
