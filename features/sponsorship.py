"""Sponsorship patterns: the current sponsor's size, quota use, visit-visa share and growth."""

from __future__ import annotations

import numpy as np

from features.contract import PERMIT_TYPE, VISIT_PERMIT_TYPES
from features.grouping import FloatArray, count_by, lookup, take
from features.snapshot import Snapshot
from features.windows import SHORT_DAYS, within

WORK_PERMIT = PERMIT_TYPE.index("ITAS_WORK")
VISIT_CODES = tuple(PERMIT_TYPE.index(p) for p in VISIT_PERMIT_TYPES)


def sponsorship_features(s: Snapshot) -> dict[str, FloatArray]:
    n, m, t = s.timeline.n_persons, s.timeline.n_sponsors, s.t
    permits, sponsors = s.timeline.permits, s.timeline.sponsors
    active = s.has_valid_permit & (s.current_sponsor >= 0)
    current_type = take(permits.type, s.current_permit, -1)
    persons = count_by(s.current_sponsor, m, active).astype(np.float64)
    workers = count_by(s.current_sponsor, m, active & (current_type == WORK_PERMIT)).astype(np.float64)
    visitors = count_by(s.current_sponsor, m, active & np.isin(current_type, VISIT_CODES)).astype(np.float64)
    new_permits = count_by(permits.sponsor, m, within(permits.issue, t, SHORT_DAYS)).astype(np.float64)
    quota = sponsors.quota
    with np.errstate(divide="ignore", invalid="ignore"):
        quota_use = np.where(quota > 0, workers / quota, np.nan)
        visit_share = np.where(persons > 0, visitors / persons, np.nan)
        growth = new_permits / np.maximum(persons, 1.0)
    registered = sponsors.registered.astype(np.float64)
    age = np.where(registered <= t, t - registered, np.nan)
    per_sponsor = {
        "sponsor_type": sponsors.type.astype(np.float64),
        "sponsor_sector": sponsors.sector.astype(np.float64),
        "sponsor_active_persons": persons,
        "sponsor_active_workers": workers,
        "sponsor_quota_use": quota_use,
        "sponsor_workers_over_quota": np.where(np.isnan(quota), np.nan, np.maximum(workers - quota, 0.0)),
        "sponsor_visit_share": visit_share,
        "sponsor_growth_90d": growth,
        "sponsor_age_days": age,
    }
    out = {name: lookup(values, s.current_sponsor) for name, values in per_sponsor.items()}
    # Categorical codes: -1 (no sponsor / unknown sector) rather than NaN.
    for name in ("sponsor_type", "sponsor_sector"):
        out[name] = np.nan_to_num(out[name], nan=-1.0)
    out["sponsor_switches_total"] = count_by(
        permits.person, n, within(permits.issue, t) & permits.is_sponsor_switch
    ).astype(np.float64)
    return out
