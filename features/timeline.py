"""The data set as integer-coded, time-sorted event arrays (built once per run).

Every event table becomes numpy arrays keyed by person (or sponsor) code and
sorted by (key, day). Per-date work is done by `features.snapshot` and the
family modules by masking these arrays with "day <= T", which is what makes the
features point-in-time.

Each row also carries the day it became known (`known`: its recorded_date, or
its event date when that is null or absent; never before the event date). A
row dated on or before T but recorded after T is unknown on T: `Timeline.known_on`
gives the timeline without such rows (and without permit cancellations recorded
after T), with the attributes that depend on neighbouring rows (extensions,
visa runs, address changes, overstay at an exit) recomputed, exactly as if the
rows were not in the data. Features keep using event dates for everything
else (windows, days since an event).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.catalog import KBLI_SECTIONS
from features.contract import (
    AGENCY,
    CANCELLED_RECORDED_DATE,
    LABOUR_VIOLATION,
    PERMIT_TYPE,
    RECORDED_DATE,
    REPORT_CATEGORY,
    SPONSOR_TYPE,
)
from features.grouping import BoolArray, FloatArray, IntArray, previous_in_group
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


def known_days(frame: pd.DataFrame, event_date: str, recorded_date: str = RECORDED_DATE) -> IntArray:
    """The day each row became known: the later of its event day and its recorded day (when set).

    A frame without the (optional) recorded column is known on its event days.
    A null event day stays `NEVER`.
    """
    event = day_numbers(frame[event_date])
    if recorded_date not in frame.columns:
        return event
    recorded = day_numbers(frame[recorded_date], missing=np.int64(-NEVER))
    return np.maximum(event, recorded)


def unknown_on(day: IntArray, known: IntArray, t: int) -> BoolArray:
    """Rows dated on or before t that were recorded only after t."""
    return (day <= t) & (known > t)


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
    known: IntArray  # day the permit became known (issue day unless recorded later)
    cancel_known: IntArray  # day the cancellation became known; NEVER when not cancelled
    is_extension: BoolArray  # continues the previous permit with the same type
    is_conversion: BoolArray  # continues the previous permit with another type
    is_sponsor_switch: BoolArray  # sponsor differs from the previous permit's sponsor


@dataclass(frozen=True)
class CrossingEvents:
    person: IntArray
    day: IntArray
    is_in: BoolArray
    known: IntArray
    exit_overstay_days: IntArray  # days past permit cover at an exit; 0 otherwise
    is_visa_run_return: BoolArray  # an entry shortly after an exit


@dataclass(frozen=True)
class AddressEvents:
    person: IntArray
    day: IntArray
    district: IntArray
    known: IntArray
    is_change: BoolArray  # district differs from the person's previous report


@dataclass(frozen=True)
class AgencyEvents:
    person: IntArray
    sponsor: IntArray
    day: IntArray
    agency: IntArray
    category: IntArray
    known: IntArray

    def without(self, rows: BoolArray) -> AgencyEvents:
        keep = ~rows
        return AgencyEvents(
            self.person[keep],
            self.sponsor[keep],
            self.day[keep],
            self.agency[keep],
            self.category[keep],
            self.known[keep],
        )


@dataclass(frozen=True)
class LabourEvents:
    sponsor: IntArray
    day: IntArray
    violation: IntArray
    known: IntArray

    def without(self, rows: BoolArray) -> LabourEvents:
        keep = ~rows
        return LabourEvents(self.sponsor[keep], self.day[keep], self.violation[keep], self.known[keep])


@dataclass(frozen=True)
class InspectionEvents:
    person: IntArray
    sponsor: IntArray
    day: IntArray
    found: BoolArray
    known: IntArray

    def without(self, rows: BoolArray) -> InspectionEvents:
        keep = ~rows
        return InspectionEvents(
            self.person[keep], self.sponsor[keep], self.day[keep], self.found[keep], self.known[keep]
        )


@dataclass(frozen=True)
class SponsorAttributes:
    type: IntArray
    sector: IntArray  # code in features.catalog.KBLI_SECTIONS, -1 when null or unknown
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

    def known_on(self, t: int) -> Timeline:
        """The timeline as known on day t: no row dated on or before t but recorded after t.

        Equal to the timeline of the data set without those rows, and with the
        permit cancellations recorded after t left out. Rows dated after t stay
        (every feature masks them by date). Returns `self` when nothing is
        pending on t, as always for a data set without late records.
        """
        permits = self.permits
        late_permits = unknown_on(permits.issue, permits.known, t)
        late_cancels = unknown_on(permits.cancelled, permits.cancel_known, t)
        crossings, addresses = self.crossings, self.addresses
        late_crossings = unknown_on(crossings.day, crossings.known, t)
        late_addresses = unknown_on(addresses.day, addresses.known, t)
        late_agency = unknown_on(self.agency.day, self.agency.known, t)
        late_labour = unknown_on(self.labour.day, self.labour.known, t)
        late_inspections = unknown_on(self.inspections.day, self.inspections.known, t)
        permits_change = bool(late_permits.any() or late_cancels.any())
        crossings_change = bool(late_crossings.any())
        if not (
            permits_change
            or crossings_change
            or late_addresses.any()
            or late_agency.any()
            or late_labour.any()
            or late_inspections.any()
        ):
            return self
        if permits_change:
            keep = ~late_permits
            uncancel = late_cancels[keep]
            permits = _permit_events_sorted(
                person=permits.person[keep],
                sponsor=permits.sponsor[keep],
                ptype=permits.type[keep],
                issue=permits.issue[keep],
                expiry=permits.expiry[keep],
                cancelled=np.where(uncancel, NEVER, permits.cancelled[keep]),
                work_district=permits.work_district[keep],
                known=permits.known[keep],
                cancel_known=np.where(uncancel, NEVER, permits.cancel_known[keep]),
            )
        if permits_change or crossings_change:
            keep = ~late_crossings
            crossings = _crossing_events_sorted(
                crossings.person[keep],
                crossings.day[keep],
                crossings.is_in[keep],
                crossings.known[keep],
                permits,
            )
        if late_addresses.any():
            keep = ~late_addresses
            addresses = _address_events_sorted(
                addresses.person[keep], addresses.day[keep], addresses.district[keep], addresses.known[keep]
            )
        return replace(
            self,
            permits=permits,
            crossings=crossings,
            addresses=addresses,
            agency=self.agency.without(late_agency) if late_agency.any() else self.agency,
            labour=self.labour.without(late_labour) if late_labour.any() else self.labour,
            inspections=(
                self.inspections.without(late_inspections) if late_inspections.any() else self.inspections
            ),
        )


def _permit_events(
    frame: pd.DataFrame, persons: pd.Index, sponsors: pd.Index, districts: pd.Index
) -> PermitEvents:
    person = codes_of(frame["person_id"], persons)
    issue = day_numbers(frame["issue_date"])
    expiry = day_numbers(frame["expiry_date"])
    order = _sort_by_key_then_day(person, issue, expiry)
    cancelled = day_numbers(frame["cancelled_date"])
    cancel_known = np.where(
        cancelled == NEVER, NEVER, known_days(frame, "cancelled_date", CANCELLED_RECORDED_DATE)
    )
    return _permit_events_sorted(
        person=person[order],
        sponsor=codes_of(frame["sponsor_id"], sponsors)[order],
        ptype=enum_codes(frame["permit_type"], PERMIT_TYPE)[order],
        issue=issue[order],
        expiry=expiry[order],
        cancelled=cancelled[order],
        work_district=codes_of(frame["work_district"], districts)[order],
        known=known_days(frame, "issue_date")[order],
        cancel_known=cancel_known[order],
    )


def _permit_events_sorted(
    *,
    person: IntArray,
    sponsor: IntArray,
    ptype: IntArray,
    issue: IntArray,
    expiry: IntArray,
    cancelled: IntArray,
    work_district: IntArray,
    known: IntArray,
    cancel_known: IntArray,
) -> PermitEvents:
    """Permits already sorted by (person, issue, expiry), with what each continues from the previous."""
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
        cancelled=cancelled,
        work_district=work_district,
        known=known,
        cancel_known=cancel_known,
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
    known = known_days(frame, "crossing_date")
    return _crossing_events_sorted(person[order], day[order], is_in[order], known[order], permits)


def _crossing_events_sorted(
    person: IntArray, day: IntArray, is_in: BoolArray, known: IntArray, permits: PermitEvents
) -> CrossingEvents:
    """Crossings already sorted by (person, day, entry last), with overstay at exits and visa runs."""
    cover_end = _cover_end_as_of(permits, person, day)
    had_permit = cover_end > -NEVER
    overstay = np.where(~is_in & had_permit & (cover_end < day), day - cover_end, 0)
    same = previous_in_group(person)
    prev_day = np.roll(day, 1)
    prev_is_out = ~np.roll(is_in, 1)
    visa_run = same & is_in & prev_is_out & (day - prev_day <= VISA_RUN_MAX_GAP_DAYS)
    return CrossingEvents(person, day, is_in, known, overstay.astype(np.int64), visa_run)


def _address_events(frame: pd.DataFrame, persons: pd.Index, districts: pd.Index) -> AddressEvents:
    person = codes_of(frame["person_id"], persons)
    day = day_numbers(frame["report_date"])
    district = codes_of(frame["district"], districts)
    known = known_days(frame, "report_date")
    order = _sort_by_key_then_day(person, day)
    return _address_events_sorted(person[order], day[order], district[order], known[order])


def _address_events_sorted(
    person: IntArray, day: IntArray, district: IntArray, known: IntArray
) -> AddressEvents:
    """Address reports already sorted by (person, day), with changes of district."""
    is_change = previous_in_group(person) & (district != np.roll(district, 1))
    return AddressEvents(person, day, district, known, is_change)


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
            known=known_days(agency, "report_date"),
        ),
        labour=LabourEvents(
            sponsor=codes_of(labour["sponsor_id"], sponsors),
            day=day_numbers(labour["finding_date"]),
            violation=enum_codes(labour["violation"], LABOUR_VIOLATION),
            known=known_days(labour, "finding_date"),
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
        known=known_days(frame, "inspection_date")[order],
    )
