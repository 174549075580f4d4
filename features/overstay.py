"""Overstay history: staying past permit cover, now and at past departures."""

from __future__ import annotations

import numpy as np

from features.grouping import FloatArray, count_by, last_index_by, sum_by, take
from features.snapshot import Snapshot
from features.windows import days_since, within


def overstay_features(s: Snapshot) -> dict[str, FloatArray]:
    n, t = s.timeline.n_persons, s.t
    crossings = s.timeline.crossings
    overstay_now = s.is_case & ~s.has_valid_permit
    days_now = np.where(overstay_now, np.float64(t) - s.cover_end, 0.0)
    days_now[overstay_now & ~s.has_permit] = np.nan  # never had a permit: length unknown
    past = within(crossings.day, t) & (crossings.exit_overstay_days > 0)
    last_exit = last_index_by(crossings.person, n, past)
    return {
        "overstay_now": overstay_now.astype(np.float64),
        "overstay_days_now": days_now,
        "past_overstay_exits": count_by(crossings.person, n, past).astype(np.float64),
        "past_overstay_days_total": sum_by(
            crossings.person, crossings.exit_overstay_days.astype(np.float64), n, past
        ),
        "days_since_last_overstay_exit": days_since(t, take(crossings.day, last_exit, np.nan)),
    }
