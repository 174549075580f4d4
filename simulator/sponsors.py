"""Sponsors (penjamin): employers across sectors, families, institutions, and a hidden bad minority."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.contract import SPONSOR_TYPE
from simulator.ids import make_ids
from simulator.period import BoolArray, FloatArray, IntArray, Period, categorical, uniform_days
from simulator.reference import (
    COMPANY_SECTORS,
    DISTRICTS,
    HOUSEHOLD_REGIONS,
    INSTITUTION_SECTORS,
    SECTOR_REGIONS,
    SECTORS,
    district_weights,
    weights_over,
)

COMPANY, INDIVIDUAL, INSTITUTION = (SPONSOR_TYPE.index(t) for t in ("COMPANY", "INDIVIDUAL", "INSTITUTION"))
NONCOMPLIANT_SHARE = {COMPANY: 0.12, INDIVIDUAL: 0.05, INSTITUTION: 0.10}


@dataclass(frozen=True)
class Sponsors:
    """Sponsor attributes, one entry per sponsor. `noncompliant` is hidden from the tables."""

    type: IntArray  # code in SPONSOR_TYPE
    sector: IntArray  # code in SECTORS; -1 for individuals
    district: IntArray  # code in DISTRICTS
    registered: IntArray  # day number
    size: FloatArray  # relative hiring weight
    noncompliant: BoolArray
    growth_start: IntArray  # start of a hiring burst (used for non-compliant employers)
    quota: FloatArray  # RPTKA positions; NaN when not an employer (set by `finalise_sponsors`)

    @property
    def n(self) -> int:
        return len(self.type)


def draw_sponsors(n_persons: int, period: Period, rng: np.random.Generator) -> Sponsors:
    """Companies, individual family sponsors and institutions, scaled to the population."""
    counts = {
        COMPANY: max(12, round(n_persons / 22)),
        INDIVIDUAL: max(6, round(n_persons / 30)),
        INSTITUTION: max(3, round(n_persons / 1500)),
    }
    kind = np.concatenate([np.full(c, k, dtype=np.int64) for k, c in counts.items()])
    n = len(kind)
    sector = np.full(n, -1, dtype=np.int64)
    is_company, is_inst = kind == COMPANY, kind == INSTITUTION
    company_sectors = weights_over(SECTORS, COMPANY_SECTORS)
    sector[is_company] = categorical(rng, company_sectors, int(is_company.sum()))
    sector[is_inst] = categorical(rng, weights_over(SECTORS, INSTITUTION_SECTORS), int(is_inst.sum()))
    # Every world gets at least one employer in each company sector, so every role finds a sponsor.
    first = np.flatnonzero(is_company)[: len(COMPANY_SECTORS)]
    sector[first] = np.arange(len(first))
    district = np.empty(n, dtype=np.int64)
    region_probs = np.stack([district_weights(SECTOR_REGIONS[s]) for s in SECTORS])
    has_sector = sector >= 0
    district[has_sector] = categorical(rng, region_probs[sector[has_sector]], int(has_sector.sum()))
    district[~has_sector] = categorical(rng, district_weights(HOUSEHOLD_REGIONS), int((~has_sector).sum()))
    size = np.where(kind == INDIVIDUAL, 1.0, np.minimum(1.0 + rng.pareto(1.3, n), 80.0))
    share = np.array([NONCOMPLIANT_SHARE[k] for k in range(len(SPONSOR_TYPE))])[kind]
    noncompliant = rng.random(n) < share
    # Bad employers are young, hire fast and hire many.
    size = np.where(noncompliant & is_company, size * 1.5, size)
    growth_start = uniform_days(rng, period.start, max(period.start, period.end - 240), n)
    registered = np.where(
        noncompliant & is_company,
        uniform_days(rng, period.start - 4 * 365, growth_start - 30, n),
        uniform_days(rng, period.start - 20 * 365, period.end - 90, n),
    )
    quota = np.full(n, np.nan)
    return Sponsors(kind, sector, district, registered, size, noncompliant, growth_start, quota)


def finalise_sponsors(
    sponsors: Sponsors,
    permit_person: IntArray,
    permit_sponsor: IntArray,
    permit_issue: IntArray,
    is_work_permit: BoolArray,
    rng: np.random.Generator,
) -> Sponsors:
    """Registration before the first sponsored permit, and RPTKA quotas from the hiring that happened.

    Compliant employers hold quotas above their concurrent foreign workforce;
    non-compliant ones hire well beyond theirs, and some have none at all.
    """
    n = sponsors.n
    has = permit_sponsor >= 0
    first_issue = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_issue, permit_sponsor[has], permit_issue[has])
    lead = uniform_days(rng, 30, 900, n)
    registered = np.minimum(sponsors.registered, first_issue - lead)
    work = has & is_work_permit
    pairs = np.unique(np.stack([permit_sponsor[work], permit_person[work]]), axis=1)
    workers = np.bincount(pairs[0], minlength=n).astype(np.float64)  # distinct workers ever hired
    factor = np.where(sponsors.noncompliant, rng.uniform(0.15, 0.35, n), rng.uniform(0.45, 0.9, n))
    quota = np.where(workers > 0, np.maximum(1.0, np.ceil(workers * factor)), np.nan)
    no_rptka = sponsors.noncompliant & (rng.random(n) < 0.15)
    quota = np.where(no_rptka | (sponsors.type != COMPANY), np.nan, quota)
    return replace(sponsors, registered=registered, quota=quota)


def sponsor_ids(n: int) -> pd.Series:
    """Pseudonymous sponsor ids S00001, S00002, ..."""
    return make_ids("S", n, 5)


def sponsors_frame(sponsors: Sponsors) -> pd.DataFrame:
    """The sponsors table (contract columns)."""
    sector = np.array([*SECTORS, None], dtype=object)[sponsors.sector]
    return pd.DataFrame(
        {
            "sponsor_id": sponsor_ids(sponsors.n),
            "sponsor_type": np.array(SPONSOR_TYPE, dtype=object)[sponsors.type],
            "sector": sector,
            "district": np.array(DISTRICTS, dtype=object)[sponsors.district],
            "registered_date": sponsors.registered.astype("datetime64[D]").astype("datetime64[s]"),
            "rptka_quota": pd.array(sponsors.quota, dtype="Float64").astype("Int64"),
        }
    )
