"""Manpower office findings against employers: background findings, far more at bad employers.

Workers at unapproved positions also surface now and then as an
UNAPPROVED_POSITION finding against their sponsor while it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import LABOUR_VIOLATION
from simulator.period import IntArray, Period, categorical, repeat_counts
from simulator.persons import Persons
from simulator.sponsors import COMPANY, Sponsors
from simulator.violations import UNAPPROVED_WORK, Truth

FINDINGS_PER_YEAR = (0.08, 0.7)  # (compliant, non-compliant) companies
# Mix of findings over LABOUR_VIOLATION, in its order:
# NO_RPTKA, UNAPPROVED_POSITION, LEVY_UNPAID, NO_LOCAL_COUNTERPART, OTHER.
MIX_COMPLIANT = np.array([0.02, 0.1, 0.35, 0.25, 0.28])
MIX_NONCOMPLIANT = np.array([0.15, 0.3, 0.2, 0.2, 0.15])
MIX_NO_QUOTA = np.array([0.5, 0.2, 0.1, 0.1, 0.1])
LINKED_FINDING_P = 0.2  # an unapproved-work interval leads to a finding against the sponsor
UNAPPROVED_POSITION = LABOUR_VIOLATION.index("UNAPPROVED_POSITION")


@dataclass(frozen=True)
class LabourFindings:
    """Findings sorted by day, then sponsor."""

    sponsor: IntArray
    day: IntArray
    violation: IntArray  # code in LABOUR_VIOLATION

    def __len__(self) -> int:
        return len(self.day)


def draw_labour_findings(
    sponsors: Sponsors, persons: Persons, truth: Truth, period: Period, rng: np.random.Generator
) -> LabourFindings:
    """Findings against companies over the period."""
    first = np.maximum(sponsors.registered, period.start)
    length = np.maximum(period.end - first + 1, 0)
    rate = np.where(sponsors.noncompliant, FINDINGS_PER_YEAR[1], FINDINGS_PER_YEAR[0])
    rate = np.where(sponsors.type == COMPANY, rate, 0.0)
    owner, _ = repeat_counts(rng.poisson(rate * length / 365.0))
    day = first[owner] + np.floor(rng.random(len(owner)) * length[owner]).astype(np.int64)
    mix = np.where(
        np.isnan(sponsors.quota)[:, None] & sponsors.noncompliant[:, None],
        MIX_NO_QUOTA,
        np.where(sponsors.noncompliant[:, None], MIX_NONCOMPLIANT, MIX_COMPLIANT),
    )
    violation = categorical(rng, mix[owner], len(owner))
    # Findings that come from a worker at an unapproved position.
    work = truth.type == UNAPPROVED_WORK
    linked = work & (rng.random(len(truth)) < LINKED_FINDING_P) & (persons.sponsor[truth.person] >= 0)
    last = np.minimum(truth.end[linked], period.end)
    linked_day = truth.start[linked] + np.floor(
        rng.random(int(linked.sum())) * (last - truth.start[linked] + 1)
    )
    sponsor = np.concatenate([owner, persons.sponsor[truth.person[linked]]])
    day = np.concatenate([day, linked_day.astype(np.int64)])
    violation = np.concatenate([violation, np.full(int(linked.sum()), UNAPPROVED_POSITION, dtype=np.int64)])
    order = np.lexsort((violation, sponsor, day))
    return LabourFindings(sponsor[order], day[order], violation[order])


def labour_frame(findings: LabourFindings, sponsor_ids: pd.Series) -> pd.DataFrame:
    """The labour_violations table (contract columns)."""
    return pd.DataFrame(
        {
            "sponsor_id": sponsor_ids.to_numpy()[findings.sponsor],
            "finding_date": findings.day.astype("datetime64[D]").astype("datetime64[s]"),
            "violation": np.array(LABOUR_VIOLATION, dtype=object)[findings.violation],
        }
    )
