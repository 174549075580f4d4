"""Foreign nationals: who they are, why they came, who sponsors them and where they live.

Nationality shapes only the role mix, and mildly. Every violation probability
downstream reads role, sponsor and the latent `risk`, never nationality.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

from features.contract import SEX
from simulator.ids import make_ids
from simulator.period import FloatArray, IntArray, Period, categorical, choose_weighted, risk_multiplier
from simulator.reference import (
    DISTRICT_REGION,
    HOUSEHOLD_REGIONS,
    LEISURE_LEANING,
    NATIONALITIES,
    NATIONALITY_WEIGHTS,
    PORTS,
    RETIREMENT_AGENT_SECTOR,
    SECTORS,
    TOURIST_REGIONS,
    UNIVERSITY_SECTOR,
    VISA_RUN_REGIONS,
    WORK_LEANING,
    district_weights,
    weights_over,
)
from simulator.sponsors import COMPANY, INDIVIDUAL, INSTITUTION, Sponsors


class Role(IntEnum):
    WORKER = 0
    INVESTOR = 1
    FAMILY = 2
    STUDENT = 3
    RETIREE = 4
    PERMANENT = 5  # ITAP holder
    VISITOR = 6


class VisitorKind(IntEnum):
    NONE = -1
    TOURIST = 0
    BUSINESS = 1
    RUNNER = 2  # chains short visits with quick exits and re-entries


ROLE_SHARES = np.array([0.30, 0.04, 0.12, 0.05, 0.04, 0.05, 0.40])
VISITOR_KIND_SHARES = np.array([0.65, 0.23, 0.12])
MALE_SHARE = np.array([0.85, 0.8, 0.3, 0.55, 0.6, 0.45, 0.55])
X_SHARE = 0.003
# (mean, sd, min, max) age at the start of the period, by role.
AGE = np.array([[38, 8, 21, 62], [46, 9, 25, 75], [36, 8, 20, 70], [23, 3, 18, 35], [66, 5, 60, 85],
                [48, 12, 25, 85], [38, 12, 18, 80]], dtype=np.float64)  # fmt: skip
RISK_SIGMA = 0.9
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Persons:
    """Person attributes, one entry per person."""

    nationality: IntArray  # code in NATIONALITIES
    sex: IntArray  # code in SEX
    birth_year: IntArray  # the year of `born`
    role: IntArray  # Role
    visitor_kind: IntArray  # VisitorKind
    risk: FloatArray  # latent propensity to violate, mean 1 (hidden)
    sponsor: IntArray  # first sponsor, -1 for none
    home: IntArray  # district code of residence (or stay, for visitors)
    alt: IntArray  # another district in the same region (moves, work elsewhere)
    born: IntArray  # day number of birth: no permit of the person is issued before it

    @property
    def n(self) -> int:
        return len(self.role)

    @property
    def port(self) -> IntArray:
        """The checkpoint serving the person's home region (code in PORTS)."""
        return DISTRICT_REGION[self.home]


def role_probabilities() -> FloatArray:
    """Role shares per nationality (rows): the base mix, tilted mildly by nationality."""
    tilt = np.ones((len(NATIONALITIES), len(Role)))
    for i, code in enumerate(NATIONALITIES):
        if code in WORK_LEANING:
            tilt[i, [Role.WORKER, Role.VISITOR, Role.RETIREE]] = (1.3, 0.85, 0.6)
        elif code in LEISURE_LEANING:
            tilt[i, [Role.WORKER, Role.VISITOR, Role.RETIREE]] = (0.75, 1.15, 1.6)
    probs = ROLE_SHARES * tilt
    return probs / probs.sum(axis=1, keepdims=True)


def draw_persons(n: int, sponsors: Sponsors, period: Period, rng: np.random.Generator) -> Persons:
    """Nationality, sex, birth year, role, sponsor and home district for `n` persons."""
    nationality = categorical(rng, weights_over(NATIONALITIES, NATIONALITY_WEIGHTS), n)
    role = categorical(rng, role_probabilities()[nationality], n)
    kind = np.where(role == Role.VISITOR, categorical(rng, VISITOR_KIND_SHARES, n), VisitorKind.NONE)
    sex = np.where(rng.random(n) < MALE_SHARE[role], SEX.index("M"), SEX.index("F"))
    sex = np.where(rng.random(n) < X_SHARE, SEX.index("X"), sex)
    mean, sd, lo, hi = AGE[role].T
    age = np.clip(mean + sd * rng.standard_normal(n), lo, hi)
    child = (role == Role.FAMILY) & (rng.random(n) < 0.4)
    age = np.where(child, rng.uniform(0, 17.9, n), age)
    # The birth year of the birthday `age` years before the period starts (not the start's year minus
    # whole years of age, which is a year late for everyone whose birthday falls after the start's day).
    born = period.start - np.floor(age * DAYS_PER_YEAR).astype(np.int64)
    birth_year = born.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    risk = risk_multiplier(rng.standard_normal(n), RISK_SIGMA)
    sponsor = _draw_sponsor(role, kind, sponsors, rng)
    home = _draw_home(role, kind, sponsor, sponsors, rng)
    alt = _other_district_in_region(home, rng)
    return Persons(nationality, sex, birth_year, role, kind, risk, sponsor, home, alt, born)


def _draw_sponsor(role: IntArray, kind: IntArray, sponsors: Sponsors, rng: np.random.Generator) -> IntArray:
    n = len(role)
    stype, sector, size, bad = sponsors.type, sponsors.sector, sponsors.size, sponsors.noncompliant
    company = (stype == COMPANY) * size
    pools = {
        "company": company,
        "investor": (stype == COMPANY) * 1.0,
        "individual": (stype == INDIVIDUAL) * size,
        "university": (stype == INSTITUTION) * (sector == SECTORS.index(UNIVERSITY_SECTOR)) * size,
        "agent": company * (sector == SECTORS.index(RETIREMENT_AGENT_SECTOR)),
        "business": company * np.where(bad, 2.0, 1.0),
        "bad_leaning": company * np.where(bad, 8.0, 1.0),
    }
    if pools["university"].sum() == 0:
        pools["university"] = (stype == INSTITUTION) * size
    u = rng.random(n)
    wants = np.full(n, "", dtype=object)
    wants[role == Role.WORKER] = "company"
    wants[role == Role.INVESTOR] = "investor"
    wants[role == Role.FAMILY] = np.where(u[role == Role.FAMILY] < 0.65, "individual", "company")
    wants[role == Role.STUDENT] = "university"
    wants[role == Role.RETIREE] = "agent"
    wants[role == Role.PERMANENT] = np.where(u[role == Role.PERMANENT] < 0.6, "individual", "company")
    wants[(kind == VisitorKind.BUSINESS) & (u < 0.8)] = "business"
    wants[(kind == VisitorKind.RUNNER) & (u < 0.3)] = "bad_leaning"
    sponsor = np.full(n, -1, dtype=np.int64)
    for pool, weights in pools.items():  # a handful of pools, each drawn vectorised
        who = wants == pool
        sponsor[who] = choose_weighted(rng, weights, int(who.sum()))
    return sponsor


def _draw_home(
    role: IntArray, kind: IntArray, sponsor: IntArray, sponsors: Sponsors, rng: np.random.Generator
) -> IntArray:
    n = len(role)
    home = categorical(rng, district_weights(HOUSEHOLD_REGIONS), n)
    home = np.where(kind == VisitorKind.TOURIST, categorical(rng, district_weights(TOURIST_REGIONS), n), home)
    home = np.where(kind == VisitorKind.RUNNER, categorical(rng, district_weights(VISA_RUN_REGIONS), n), home)
    sponsored = sponsor >= 0
    sponsor_district = np.where(sponsored, sponsors.district[np.maximum(sponsor, 0)], home)
    home = np.where(sponsored, sponsor_district, home)
    # Some live in another district of their sponsor's region.
    commute = sponsored & (sponsors.type[np.maximum(sponsor, 0)] != INDIVIDUAL) & (rng.random(n) < 0.3)
    return np.where(commute, _other_district_in_region(home, rng), home)


def _other_district_in_region(district: IntArray, rng: np.random.Generator) -> IntArray:
    """A different district in the same region (every region has at least two)."""
    region = DISTRICT_REGION[district]
    sizes = np.bincount(DISTRICT_REGION, minlength=len(PORTS))
    first = np.cumsum(sizes) - sizes
    offset = district - first[region]
    step = 1 + np.floor(rng.random(len(district)) * (sizes[region] - 1)).astype(np.int64)
    return first[region] + (offset + step) % sizes[region]


def person_ids(n: int) -> pd.Series:
    """Pseudonymous person ids P0000001, P0000002, ..."""
    return make_ids("P", n, 7)


def persons_frame(persons: Persons) -> pd.DataFrame:
    """The persons table (contract columns)."""
    return pd.DataFrame(
        {
            "person_id": person_ids(persons.n),
            "nationality": np.array(NATIONALITIES, dtype=object)[persons.nationality],
            "sex": np.array(SEX, dtype=object)[persons.sex],
            "birth_year": persons.birth_year,
        }
    )
