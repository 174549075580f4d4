"""Agency reports: tips about the person and about their sponsor, by window, agency and category."""

from __future__ import annotations

import numpy as np

from features.contract import AGENCY, REPORT_CATEGORY
from features.grouping import BoolArray, FloatArray, count_by, lookup
from features.snapshot import Snapshot
from features.timeline import NEVER
from features.windows import LONG_DAYS, SHORT_DAYS, days_since, within

ENFORCEMENT = tuple(
    AGENCY.index(a) for a in ("POLICE", "MILITARY", "INTELLIGENCE", "NARCOTICS", "PROSECUTOR")
)
MANPOWER = (AGENCY.index("MANPOWER"),)
PUBLIC = (AGENCY.index("PUBLIC"), AGENCY.index("LOCAL_GOV"))
ILLEGAL_WORK = REPORT_CATEGORY.index("ILLEGAL_WORK")


def agency_features(s: Snapshot) -> dict[str, FloatArray]:
    n, m, t = s.timeline.n_persons, s.timeline.n_sponsors, s.t
    reports = s.timeline.agency
    year = within(reports.day, t, LONG_DAYS)
    quarter = within(reports.day, t, SHORT_DAYS)
    so_far = within(reports.day, t)

    def about_person(mask: BoolArray) -> FloatArray:
        return count_by(reports.person, n, mask).astype(np.float64)

    # Reports are not sorted by person, so the latest one comes from a per-person maximum.
    latest = np.full(n, -NEVER, dtype=np.int64)
    has_person = so_far & (reports.person >= 0)
    np.maximum.at(latest, reports.person[has_person], reports.day[has_person])
    latest_day = np.where(latest > -NEVER, latest, np.nan).astype(np.float64)
    return {
        "person_reports_90d": about_person(quarter),
        "person_reports_365d": about_person(year),
        "person_reports_total": about_person(so_far),
        "person_illegal_work_reports_365d": about_person(year & (reports.category == ILLEGAL_WORK)),
        "person_enforcement_reports_365d": about_person(year & np.isin(reports.agency, ENFORCEMENT)),
        "person_manpower_reports_365d": about_person(year & np.isin(reports.agency, MANPOWER)),
        "person_public_reports_365d": about_person(year & np.isin(reports.agency, PUBLIC)),
        "days_since_last_person_report": days_since(t, latest_day),
        "sponsor_reports_90d": lookup(count_by(reports.sponsor, m, quarter), s.current_sponsor),
        "sponsor_reports_365d": lookup(count_by(reports.sponsor, m, year), s.current_sponsor),
    }
