"""Past inspections of the person: how often inspected and what was found, up to T."""

from __future__ import annotations

import numpy as np

from features.grouping import FloatArray, count_by, last_index_by, take
from features.snapshot import Snapshot
from features.windows import LONG_DAYS, days_since, within


def inspection_features(s: Snapshot) -> dict[str, FloatArray]:
    n, t = s.timeline.n_persons, s.t
    inspections = s.timeline.inspections
    done = within(inspections.day, t)
    found = done & inspections.found
    last = last_index_by(inspections.person, n, done)
    last_found = last_index_by(inspections.person, n, found)
    return {
        "past_inspections_total": count_by(inspections.person, n, done).astype(np.float64),
        "past_violations_found_total": count_by(inspections.person, n, found).astype(np.float64),
        "past_violations_found_365d": count_by(
            inspections.person, n, found & within(inspections.day, t, LONG_DAYS)
        ).astype(np.float64),
        "days_since_last_inspection": days_since(t, take(inspections.day, last, np.nan).astype(np.float64)),
        "days_since_last_violation_found": days_since(
            t, take(inspections.day, last_found, np.nan).astype(np.float64)
        ),
    }
