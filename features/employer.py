"""Employer violations: labour findings and past inspection results at the current sponsor."""

from __future__ import annotations

import numpy as np

from features.contract import LABOUR_VIOLATION
from features.grouping import FloatArray, count_by, lookup
from features.snapshot import Snapshot
from features.windows import LONG_DAYS, within

# Pseudo-inspections at the global hit rate added to every sponsor's record, so a
# sponsor with two inspections and one hit does not look like a 50% sponsor.
HIT_RATE_PRIOR_WEIGHT = 20.0
PERMIT_FINDINGS = (LABOUR_VIOLATION.index("NO_RPTKA"), LABOUR_VIOLATION.index("UNAPPROVED_POSITION"))


def employer_features(s: Snapshot) -> dict[str, FloatArray]:
    m, t = s.timeline.n_sponsors, s.t
    labour, inspections = s.timeline.labour, s.timeline.inspections
    recent = within(labour.day, t, LONG_DAYS)
    permit_findings = recent & np.isin(labour.violation, PERMIT_FINDINGS)

    done = within(inspections.day, t)
    at_sponsor = done & (inspections.sponsor >= 0)
    visits = count_by(inspections.sponsor, m, at_sponsor).astype(np.float64)
    hits = count_by(inspections.sponsor, m, at_sponsor & inspections.found).astype(np.float64)
    global_rate = inspections.found[done].mean() if done.any() else 0.0
    hit_rate = (hits + HIT_RATE_PRIOR_WEIGHT * global_rate) / (visits + HIT_RATE_PRIOR_WEIGHT)

    per_sponsor = {
        "sponsor_labour_findings_365d": count_by(labour.sponsor, m, recent),
        "sponsor_labour_findings_total": count_by(labour.sponsor, m, within(labour.day, t)),
        "sponsor_permit_findings_365d": count_by(labour.sponsor, m, permit_findings),
        "sponsor_inspections_total": visits,
        "sponsor_hit_rate_smoothed": hit_rate,
    }
    return {name: lookup(values, s.current_sponsor) for name, values in per_sponsor.items()}
