"""The HTTP contract: validated request fields and the response models of every endpoint.

Requests are flat JSON objects (`{"as_of": "2026-06-30", "person_ids": [...]}`);
BentoML builds their schema from the typed parameters of the API methods, using
the field types below (strict: no `true` for a number, no `"5"` for 5), and
`serving.access` refuses a request that breaks them, or names a field twice or a
field the endpoint does not have, with 400 and the name of the field. Responses
are these pydantic models; the OpenAPI document at `/docs.json` is generated
from both.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from serving.options import ServingSettings

_SERVING = ServingSettings()  # request limits in the schema: the declared defaults


IsoDate = Annotated[
    dt.date,
    Field(strict=True, description="A date as YYYY-MM-DD.", examples=["2026-06-30"]),  # no timestamps
]
PersonId = Annotated[
    str, Field(strict=True, min_length=1, max_length=64, description="A person_id from the data set.")
]
PersonIds = Annotated[
    list[PersonId],
    Field(min_length=1, max_length=_SERVING.max_ids, description=f"1 to {_SERVING.max_ids:,} person ids."),
]
Capacity = Annotated[
    int, Field(strict=True, ge=1, le=_SERVING.max_k, description=f"Cases to list: 1 to {_SERVING.max_k:,}.")
]
ExplorationShare = Annotated[
    float,
    Field(
        strict=True,
        ge=0.0,
        le=_SERVING.max_exploration_share,
        description="Share of the slots drawn at random from the cases below the model's picks.",
    ),
]
District = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=64,
        description="A district code or a code prefix (e.g. 36 or 3672), or a district's name.",
    ),
]
PermitType = Annotated[
    str, Field(strict=True, min_length=1, max_length=32, description="A permit type, e.g. ITAS_WORK.")
]
PermitTypes = Annotated[
    list[PermitType], Field(max_length=32, description="Only cases on these permit types.")
]
Seed = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=2**32 - 1,
        description="Seed of the exploration draw, for an analyst's re-draw only (with redraw_reason).",
    ),
]
DesignKind = Annotated[
    Literal["boundary", "uniform"],
    Field(
        description="boundary: most draws just below the model's picks plus a thin uniform layer; "
        "uniform: every draw from all the cases below the model's picks."
    ),
]
RedrawReason = Annotated[
    str,
    Field(
        strict=True,
        min_length=3,
        max_length=500,
        description="Why an analyst re-draws a committed list (recorded; the earlier list is superseded).",
    ),
]
ListId = Annotated[str, Field(min_length=3, max_length=80, pattern=r"^L-[0-9A-Za-z-]+$")]


class CaseStatus(StrEnum):
    SCORED = "scored"
    UNKNOWN_PERSON = "unknown_person"  # not in the data set's persons table
    NOT_A_CASE = "not_a_case"  # known, but not in the country on a permit as of the date


class Selection(StrEnum):
    MODEL = "MODEL"  # chosen because of its rank
    EXPLORATION = "EXPLORATION"  # drawn at random from the rest, with a known propensity


class ReasonOut(BaseModel):
    """A feature that raised the score, worded for a supervisor."""

    feature: str
    contribution: float = Field(description="SHAP contribution to the score's log-odds.")
    en: str
    id: str


class ScoredCase(BaseModel):
    person_id: str
    status: CaseStatus
    score: float | None = Field(None, description="Calibrated chance of a violation found on inspection.")
    rank: int | None = Field(None, description="Rank among all cases as of the date; 1 = inspect first.")
    percentile: float | None = Field(None, description="100 = the top of the list.")
    reasons: list[ReasonOut] = Field(default_factory=list)


class ScoreResponse(BaseModel):
    as_of: str
    model_version: str
    cases_total: int = Field(description="Cases as of the date, which ranks are out of.")
    scored: int
    not_scored: int
    results: list[ScoredCase] = Field(description="One entry per requested id, in request order.")


class FeatureContribution(BaseModel):
    name: str
    en: str
    id: str
    value: float | str | None
    value_en: str
    value_id: str
    contribution: float


class FamilyExplanation(BaseModel):
    family: str
    en: str
    id: str
    contribution: float = Field(description="Sum of the family's feature contributions.")
    features: list[FeatureContribution]


class ExplainResponse(BaseModel):
    person_id: str
    as_of: str
    model_version: str
    score: float
    rank: int
    percentile: float
    cases_total: int
    base_value: float = Field(description="The model's log-odds before any feature (the SHAP bias term).")
    reasons: list[ReasonOut]
    families: list[FamilyExplanation] = Field(description="Families by total contribution, largest first.")


class ListedCase(BaseModel):
    list_rank: int
    person_id: str
    score: float
    rank: int
    percentile: float
    district: str | None
    permit_type: str | None
    selection: Selection
    stratum: str = Field(description="model, boundary or uniform: the stratum the case was drawn from.")
    propensity: float = Field(description="Probability this case was put on the list by this draw.")
    reasons: list[ReasonOut]


class ListFilters(BaseModel):
    district: str | None = Field(None, description="District code or prefix; null = every district.")
    permit_types: list[str] = Field(default_factory=list, description="Empty = every permit type.")


class StratumOut(BaseModel):
    """Ranks first..last among the eligible cases, of which `draws` were put on the list at random."""

    name: str = Field(description="model (the model's picks), boundary or uniform.")
    first_rank: int
    last_rank: int
    size: int
    draws: int
    probability: float = Field(description="Inclusion probability of each case of the stratum: draws / size.")


class ListOutcomes(BaseModel):
    """What became of a committed list's cases, from the data set's inspections and the list's record."""

    listed: int
    visited: int = Field(description="Listed cases with a LIST inspection from this list.")
    found: int = Field(description="Of the visited, those where a violation was found.")
    not_visited: int = Field(description="Listed cases recorded as not inspected (outcomes template).")


class InspectionListResponse(BaseModel):
    list_id: str = Field(description="The committed list: the same request returns the same list.")
    as_of: str
    model_version: str
    k: int
    filters: ListFilters
    cases_eligible: int = Field(description="Cases as of the date that pass the filters.")
    exploration_share: float
    exploration_seed: int
    n_model: int
    n_exploration: int
    rows: list[ListedCase]
    status: str = Field("committed", description="committed, or superseded by an analyst's re-draw.")
    exploration_design: dict[str, str | float] = Field(
        default_factory=dict, description="The design of the exploration draw (models.listing)."
    )
    strata: list[StratumOut] = Field(
        default_factory=list, description="The model's picks, then each stratum."
    )
    created_at: str | None = None
    redraw_reason: str | None = Field(None, description="Set on an analyst's re-draw.")
    replaces: str | None = Field(None, description="The list a re-draw superseded.")
    superseded_by: str | None = None
    outcomes: ListOutcomes | None = Field(None, description="Visits and findings so far (GET /lists/{id}).")


class ListOptions(BaseModel):
    """What the supervisor page offers in its filters."""

    first_date: str
    last_date: str
    known_through: str = Field(
        description="The default date: the last date every continuously fed table covers (<= last_date)."
    )
    districts: list[str]
    permit_types: list[str]
    default_k: int
    max_k: int
    default_exploration_share: float
    default_exploration_design: str = "boundary"
    model_version: str
    drift_warning: str | None = Field(
        default=None,
        description="Set when the latest date's cases have drifted from the model's training cases.",
    )


class DriftInfo(BaseModel):
    """Population stability of the latest date's cases against the model's training cases."""

    as_of: str
    reference: str = Field(description="The training as-of dates the cases are compared with.")
    max_psi: float = Field(description="Largest PSI of a feature; lower is better (0.1 moderate, 0.25 large)")
    score_psi: float = Field(description="PSI of the model's scores; lower is better.")
    level: str = Field(description="stable, moderate or large: the level of max(max_psi, score_psi).")
    worst: list[str] = Field(description="The features that moved most, most first.")
    warning: str | None = Field(description="A plain warning when the level reaches the configured one.")


class ModelInfo(BaseModel):
    model_name: str
    version: str
    alias: str | None = Field(description="The alias served (champion), or null when a version is pinned.")
    aliases: list[str]
    objective: str
    horizon_days: int
    contract_version: str
    trained_on: dict[str, str] = Field(description="Training window: first and last as-of date, test date.")
    metrics: dict[str, float]
    bias_flags: list[str]
    data_dir: str
    data_last_date: str
    cases_latest: int
    drift: DriftInfo | None = Field(
        default=None, description="Measured at start-up; null if it could not be."
    )
    registry: str | None = Field(
        default=None,
        description="Null when aliases, metrics and flags were read from the registry for this answer; "
        "'busy, details as of <UTC time>' when it was locked and the last details read are shown.",
    )


class ErrorResponse(BaseModel):
    error: str
    field: str | None = None
