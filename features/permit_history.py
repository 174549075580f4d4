"""Permit patterns: current permit, extensions, conversions, visa runs, time in country."""

from __future__ import annotations

import numpy as np

from features.grouping import FloatArray, count_by, take
from features.snapshot import Snapshot
from features.timeline import NEVER
from features.windows import LONG_DAYS, days_since, within


def permit_features(s: Snapshot) -> dict[str, FloatArray]:
    n, t = s.timeline.n_persons, s.t
    permits, crossings = s.timeline.permits, s.timeline.crossings
    issued = within(permits.issue, t)
    issued_recently = within(permits.issue, t, LONG_DAYS)
    recent_crossings = within(crossings.day, t, LONG_DAYS)
    last_entry = np.where(s.last_entry > -NEVER, s.last_entry, np.nan).astype(np.float64)
    return {
        "current_permit_type": take(permits.type, s.current_permit, -1).astype(np.float64),
        "days_to_expiry": np.where(s.has_permit, s.cover_end - np.float64(t), np.nan),
        "days_since_permit_issue": days_since(t, take(permits.issue, s.current_permit, np.nan)),
        "permits_total": count_by(permits.person, n, issued).astype(np.float64),
        "permit_extensions_365d": count_by(permits.person, n, issued_recently & permits.is_extension).astype(
            np.float64
        ),
        "permit_conversions_total": count_by(permits.person, n, issued & permits.is_conversion).astype(
            np.float64
        ),
        "permit_cancellations_total": count_by(permits.person, n, within(permits.cancelled, t)).astype(
            np.float64
        ),
        "visa_runs_365d": count_by(
            crossings.person, n, recent_crossings & crossings.is_visa_run_return
        ).astype(np.float64),
        "entries_365d": count_by(
            crossings.person, n, within(crossings.day, t, LONG_DAYS) & crossings.is_in
        ).astype(np.float64),
        "days_since_last_entry": days_since(t, last_entry),
    }
