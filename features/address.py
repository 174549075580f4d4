"""Address reporting: recency, frequency and changes of residence reports."""

from __future__ import annotations

import numpy as np

from features.grouping import FloatArray, count_by, last_index_by, take
from features.snapshot import Snapshot
from features.timeline import NEVER
from features.windows import LONG_DAYS, days_since, within


def address_features(s: Snapshot) -> dict[str, FloatArray]:
    n, t = s.timeline.n_persons, s.t
    reports, permits = s.timeline.addresses, s.timeline.permits
    so_far = within(reports.day, t)
    year = within(reports.day, t, LONG_DAYS)
    last = last_index_by(reports.person, n, so_far)
    last_day = take(reports.day, last, np.nan).astype(np.float64)
    has_entry = s.last_entry > -NEVER
    reported_since_entry = last_day >= s.last_entry
    last_district = take(reports.district, last, -1)
    work_district = take(permits.work_district, s.current_permit, -1)
    comparable = (last_district >= 0) & (work_district >= 0)
    return {
        "days_since_last_address_report": days_since(t, last_day),
        "address_reports_365d": count_by(reports.person, n, year).astype(np.float64),
        "address_changes_365d": count_by(reports.person, n, year & reports.is_change).astype(np.float64),
        "no_report_since_entry": np.where(has_entry, (~reported_since_entry).astype(np.float64), np.nan),
        "work_residence_mismatch": np.where(
            comparable, (last_district != work_district).astype(np.float64), np.nan
        ),
    }
