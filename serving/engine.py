"""What the service computes, without HTTP: scores, explanations and inspection lists for one data set.

Everything goes through `models.scoring` (the same path as `timpora rank`), so
the features are computed by the training code and nowhere else. Scoring a date
costs about a second for 30,000 cases, so each date's scored cases are cached
(a few dates, least recently used); reasons (TreeSHAP) are computed only for
the ids asked for and cached with their date.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.assignment import RULE, arm_for
from features.catalog import FAMILY_LABELS, FEATURES_BY_NAME, Family
from features.filters import KnownFilters, UnknownFilterError
from features.lists import (
    CommittedList,
    UnknownListError,
    commit_list,
    find_committed,
    outcomes_template,
    read_list,
    read_outcomes,
)
from features.settings import DEFAULT_DATASET, DatasetSettings
from features.tables import Tables, as_of_refusal
from features.timeline import build_timeline
from models.listing import ExplorationDesign, draw_inspection_list
from models.office_rule import office_rule_scores
from models.order import rank_order
from models.ranker import RiskModel
from models.reasons import format_value
from models.scoring import ScoredCases, filter_cases, reasons_for_matrix, score_cases
from serving.options import ServingSettings
from serving.schemas import (
    CaseStatus,
    ExplainResponse,
    FamilyExplanation,
    FeatureContribution,
    InspectionListResponse,
    ListedCase,
    ListFilters,
    ListOptions,
    ListOutcomes,
    ReasonOut,
    ScoreResponse,
    Selection,
    StratumOut,
)

_Item = TypeVar("_Item", bound=np.generic)
DateLike = dt.date | str | None  # None = the data's last date
_SMALL_BATCH = 200  # answers up to this many ids are written with the json module


class RequestError(ValueError):
    """A request the data cannot answer (a date outside the data, an unknown case): a 4xx, not a crash."""

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.field, self.status = message, field, status


@dataclass
class _ScoredDate:
    """One date's scored cases, with row-aligned arrays for fast lookups and a bounded reasons cache."""

    scored: ScoredCases
    score: npt.NDArray[np.float64]  # score, rank and percentile in `scored.features` row order
    rank: npt.NDArray[np.int64]
    percentile: npt.NDArray[np.float64]
    reasons: OrderedDict[str, list[ReasonOut]] = field(default_factory=OrderedDict)

    @classmethod
    def of(cls, scored: ScoredCases) -> _ScoredDate:
        aligned = scored.table.reindex(scored.features.index)
        return cls(
            scored=scored,
            score=aligned["score"].to_numpy(dtype=np.float64),
            rank=aligned["rank"].to_numpy(dtype=np.int64),
            percentile=aligned["percentile"].to_numpy(dtype=np.float64),
        )

    def remember(self, fresh: dict[str, list[ReasonOut]], limit: int) -> None:
        self.reasons.update(fresh)
        while len(self.reasons) > limit:
            self.reasons.popitem(last=False)


@dataclass(frozen=True)
class ScoreBatch:
    """The answer to a /score request, column-wise; `to_json` writes it in `ScoreResponse`'s shape.

    Large answers are written by pandas' C JSON writer (10,000 ids in about
    10 ms, where building pydantic objects takes ten times longer), small ones
    by the json module, which is faster below a few hundred rows. Both round
    scores and percentiles to 10 decimals.
    """

    as_of: str
    model_version: str
    cases_total: int
    person_ids: list[str]
    status: npt.NDArray[np.object_]
    score: npt.NDArray[np.float64]  # NaN where not scored
    rank: npt.NDArray[np.int64]  # -1 where not scored
    percentile: npt.NDArray[np.float64]
    reasons: list[list[dict[str, object]]] | None  # None when not asked for
    scored: int

    def _head(self) -> str:
        head = {
            "as_of": self.as_of,
            "model_version": self.model_version,
            "cases_total": self.cases_total,
            "scored": self.scored,
            "not_scored": len(self.person_ids) - self.scored,
        }
        return json.dumps(head)[:-1]

    def _results_small(self) -> str:
        results = []
        for i, person in enumerate(self.person_ids):
            hit = self.rank[i] >= 0
            item: dict[str, object] = {
                "person_id": person,
                "status": self.status[i],
                "score": round(float(self.score[i]), 10) if hit else None,
                "rank": int(self.rank[i]) if hit else None,
                "percentile": round(float(self.percentile[i]), 10) if hit else None,
            }
            if self.reasons is not None:
                item["reasons"] = self.reasons[i]
            results.append(item)
        return json.dumps(results, ensure_ascii=False)

    def _results_large(self) -> str:
        frame = pd.DataFrame(
            {
                "person_id": np.asarray(self.person_ids, dtype=object),
                "status": self.status,
                "score": self.score,
                "rank": pd.array(np.where(self.rank >= 0, self.rank, 0), dtype="Int64"),
                "percentile": self.percentile,
            }
        )
        frame.loc[self.rank < 0, "rank"] = pd.NA
        if self.reasons is not None:
            frame["reasons"] = pd.Series(self.reasons, index=frame.index, dtype=object)
        return str(frame.to_json(orient="records", force_ascii=False, double_precision=10))

    def to_json(self) -> bytes:
        small = len(self.person_ids) <= _SMALL_BATCH
        results = self._results_small() if small else self._results_large()
        return f'{self._head()}, "results": {results}}}'.encode()

    def to_response(self) -> ScoreResponse:
        """The validated model (for in-process callers and tests)."""
        return ScoreResponse.model_validate_json(self.to_json())


@dataclass(frozen=True)
class ListResult:
    """An inspection list, the committed list behind it, and whether this request committed it."""

    response: InspectionListResponse
    committed: CommittedList
    created: bool  # False: the list committed earlier for the same request was returned


def list_scope(district: str | None, permit_types: Sequence[str] | None) -> dict[str, object]:
    """The scope a list is committed for: the request's filters (the same filters, the same list)."""
    return {"district": district or None, "permit_types": sorted(set(permit_types or []))}


def exploration_design(kind: str, share: float, settings: ServingSettings) -> ExplorationDesign:
    """The served design of that kind and share, with the configured boundary stratum."""
    if kind == "uniform":
        return ExplorationDesign.uniform(share)
    return ExplorationDesign(
        kind="boundary",
        share=share,
        boundary_share=settings.boundary_share,
        boundary_depth=settings.boundary_depth,
    )


def rank_for_arm(scored: ScoredCases, arm: str | None) -> pd.DataFrame:
    """The date's cases in the arm's order: the model's table, or for the rule arm the office rule's.

    The rule's table has the same columns, with the rule's score, rank and
    percentile, so a rule list is drawn (same k, same exploration design) and
    committed exactly like a model list, with exact propensities.
    """
    if arm != RULE:
        return scored.table
    features = scored.features
    score = office_rule_scores(features)
    order = rank_order(score, features.index.to_numpy(dtype=str))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    table = scored.table.reindex(features.index).assign(
        score=score, rank=rank, percentile=100.0 * (1.0 - (rank - 1) / max(len(rank), 1))
    )
    return table.iloc[order]


def _take(values: npt.NDArray[_Item], rows: npt.NDArray[np.intp], missing: float) -> npt.NDArray[_Item]:
    """`values[rows]` with `missing` where a row is -1 (also for no values at all: a date without cases)."""
    out = np.full(len(rows), missing, dtype=values.dtype)
    present = rows >= 0
    out[present] = values[rows[present]]
    return out


class ScoringEngine:
    """Scores, explanations and lists for the cases of one data set with one model version."""

    def __init__(
        self,
        model: RiskModel,
        version: str,
        tables: Tables,
        settings: ServingSettings | None = None,
        data_dir: Path | None = None,
        *,
        dataset: DatasetSettings = DEFAULT_DATASET,
    ):
        first, last = tables.first_date(), tables.last_date()
        known = tables.known_through(dataset.continuous_tables)
        if first is None or last is None or known is None:
            raise ValueError("the data set has no dated rows: nothing to score")
        self.model, self.version = model, version
        self.first_date, self.last_date = first.date(), last.date()  # the dates a request may ask for
        self.known_through = known.date()  # the default date: every continuously fed table covers it
        self.timeline = build_timeline(tables)
        self.districts = sorted(str(d) for d in self.timeline.districts)
        self.known_filters = KnownFilters.of(tables.districts, self.timeline.districts)  # the CLI's rule too
        self.data_dir = data_dir  # where lists are committed (`<data_dir>/_lists/`)
        self.permits = tables.permits[["person_id", "sponsor_id", "issue_date"]]  # sponsors for templates
        self.settings = settings or ServingSettings()
        self._cached_dates = self.settings.cached_dates
        self._cache: OrderedDict[dt.date, _ScoredDate] = OrderedDict()
        self._lock = threading.Lock()
        self._date_locks: dict[dt.date, threading.Lock] = {}

    def for_model(self, model: RiskModel, version: str) -> ScoringEngine:
        """An engine for another model version on the same data: the tables, timeline and settings are
        shared (read only; rebuilding them takes seconds), the scores and reasons caches start empty."""
        engine = copy.copy(self)
        engine.model, engine.version = model, version
        engine._cache = OrderedDict()
        engine._lock = threading.Lock()
        engine._date_locks = {}
        return engine

    # -- dates and caching -------------------------------------------------------------------------

    def resolve_date(self, as_of: DateLike) -> dt.date:
        """The requested date (default: the date the data set is known through), within the data's dates."""
        if as_of is None:
            return self.known_through
        date = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
        if refusal := as_of_refusal(date, self.first_date, self.last_date):  # the CLI's rule too
            raise RequestError(refusal, "as_of")
        return date

    def _scored_date(self, date: dt.date) -> _ScoredDate:
        with self._lock:
            hit = self._cache.get(date)
            if hit is not None:
                self._cache.move_to_end(date)
                return hit
            date_lock = self._date_locks.setdefault(date, threading.Lock())
        with date_lock:  # one computation per date, however many requests wait for it
            with self._lock:
                hit = self._cache.get(date)
            if hit is not None:
                return hit
            entry = _ScoredDate.of(score_cases(self.model, self.version, self.timeline, date))
            with self._lock:
                self._cache[date] = entry
                while len(self._cache) > self._cached_dates:
                    evicted, _ = self._cache.popitem(last=False)
                    self._date_locks.pop(evicted, None)
            return entry

    def scored(self, date: dt.date) -> ScoredCases:
        """Every case as of the date with score and rank (cached)."""
        return self._scored_date(date).scored

    def _reasons(self, entry: _ScoredDate, ids: Sequence[str]) -> list[list[ReasonOut]]:
        missing = [i for i in dict.fromkeys(ids) if i not in entry.reasons]
        if missing:
            matrix = entry.scored.matrix[entry.scored.rows(missing)]
            computed = reasons_for_matrix(self.model, matrix, self.settings.n_reasons)
            fresh = {
                person: [
                    ReasonOut(feature=r.feature, contribution=r.contribution, en=r.en, id=r.id) for r in case
                ]
                for person, case in zip(missing, computed, strict=True)
            }
            with self._lock:
                entry.remember(fresh, max(self.settings.reasons_cached, len(fresh)))
                return [entry.reasons[i] if i in entry.reasons else fresh[i] for i in ids]
        return [entry.reasons[i] for i in ids]

    def _absent_status(self, person_ids: Sequence[str]) -> npt.NDArray[np.object_]:
        """For ids that are not cases on a date: `not_a_case` for a known person, else `unknown_person`."""
        known = self.timeline.person_ids.get_indexer(pd.Index(list(person_ids), dtype="str")) >= 0
        return np.where(known, CaseStatus.NOT_A_CASE.value, CaseStatus.UNKNOWN_PERSON.value).astype(object)

    # -- endpoints -----------------------------------------------------------------------------------

    def score(self, person_ids: Sequence[str], as_of: DateLike, reasons: bool = True) -> ScoreBatch:
        """Score, rank and percentile per id in request order; unknown ids and non-cases reported per id."""
        date = self.resolve_date(as_of)
        entry = self._scored_date(date)
        rows = entry.scored.rows(person_ids)
        present = rows >= 0
        status = np.full(len(rows), CaseStatus.SCORED.value, dtype=object)
        absent = np.flatnonzero(~present)
        if len(absent):  # an unknown person or one who is not a case: only these need the persons index
            status[absent] = self._absent_status([person_ids[int(i)] for i in absent])
        why: list[list[dict[str, object]]] | None = None
        if reasons:  # without reasons the field is left out (it defaults to an empty list)
            why = [[] for _ in range(len(rows))]
            positions = [int(i) for i in np.flatnonzero(present)]
            explained = self._reasons(entry, [person_ids[i] for i in positions])
            for position, case in zip(positions, explained, strict=True):
                why[position] = [reason.model_dump() for reason in case]
        return ScoreBatch(
            as_of=date.isoformat(),
            model_version=self.version,
            cases_total=len(entry.scored.table),
            person_ids=list(person_ids),
            status=status,
            score=_take(entry.score, rows, np.nan),
            rank=_take(entry.rank, rows, -1),
            percentile=_take(entry.percentile, rows, np.nan),
            reasons=why,
            scored=int(present.sum()),
        )

    def explain(self, person_id: str, as_of: DateLike) -> ExplainResponse:
        """Every model feature's value and contribution for one case, grouped by family."""
        date = self.resolve_date(as_of)
        entry = self._scored_date(date)
        row = int(entry.scored.rows([person_id])[0])
        if row < 0:
            known = self._absent_status([person_id])[0] == CaseStatus.NOT_A_CASE.value
            what = "is not a case (not in the country on a permit)" if known else "is not in the data set"
            raise RequestError(f"person_id {person_id!r} {what} as of {date}", "person_id", 404)
        matrix = entry.scored.matrix[[row]]
        contributions = self.model.contributions_of(matrix)[0]
        values = self.model.readable_values(matrix)[0]
        by_family: dict[Family, list[FeatureContribution]] = {}
        for j, name in enumerate(self.model.feature_names):
            spec, value = FEATURES_BY_NAME[name], values[j]
            by_family.setdefault(spec.family, []).append(
                FeatureContribution(
                    name=name,
                    en=spec.en,
                    id=spec.id,
                    value=value if value is None or isinstance(value, str) else float(value),
                    value_en=format_value(name, value, "en"),
                    value_id=format_value(name, value, "id"),
                    contribution=float(contributions[j]),
                )
            )
        families = [
            FamilyExplanation(
                family=family.value,
                en=FAMILY_LABELS[family][0],
                id=FAMILY_LABELS[family][1],
                contribution=sum(item.contribution for item in items),
                features=sorted(items, key=lambda item: -abs(item.contribution)),
            )
            for family, items in by_family.items()
        ]
        families.sort(key=lambda f: -f.contribution)
        return ExplainResponse(
            person_id=person_id,
            as_of=date.isoformat(),
            model_version=self.version,
            score=float(entry.score[row]),
            rank=int(entry.rank[row]),
            percentile=float(entry.percentile[row]),
            cases_total=len(entry.scored.table),
            base_value=float(contributions[-1]),
            reasons=self._reasons(entry, [person_id])[0],
            families=families,
        )

    def inspection_list(
        self,
        as_of: DateLike,
        k: int,
        district: str | None = None,
        permit_types: Sequence[str] | None = None,
        exploration_share: float | None = None,
        seed: int | None = None,
        design_kind: str | None = None,
        redraw_reason: str | None = None,
        created_by: str | None = None,
    ) -> ListResult:
        """The committed list for this request: drawn and committed the first time, returned after.

        With `redraw_reason` (an analyst's deliberate re-draw; who may ask is the
        service's business) a new draw, seeded by `seed` or at random, is
        committed and supersedes the list in force.
        """
        if self.data_dir is None:
            raise RuntimeError("the engine has no data set directory to commit lists to")
        date = self.resolve_date(as_of)
        try:  # an unknown district or permit type is a 400 with close valid values, not an empty list
            checked = self.known_filters.check(district, permit_types)
        except UnknownFilterError as error:
            raise RequestError(error.message, error.field) from None
        district, permit_types = checked.district, checked.permit_types
        entry = self._scored_date(date)
        share = self.settings.exploration_share if exploration_share is None else exploration_share
        design = exploration_design(design_kind or self.settings.exploration_design, share, self.settings)
        scope = list_scope(district, permit_types)
        found = None
        if redraw_reason is None:
            found = find_committed(self.data_dir, date, scope, k, design, self.version)
        if found is not None:
            return ListResult(self.list_response(found), found, False)
        arm = arm_for(self.data_dir, date, district)  # a randomised comparison with the office rule
        eligible = filter_cases(rank_for_arm(entry.scored, arm), district, permit_types)
        seed = secrets.randbits(32) if seed is None else seed
        draw = draw_inspection_list(eligible, k, design, seed)
        committed = commit_list(
            self.data_dir,
            draw,
            as_of=date,
            scope=scope,
            k=k,
            model_version=self.version,
            design=design,
            seed=seed,
            redraw_reason=redraw_reason,
            created_by=created_by,
            ranked=eligible,
            extra=None if arm is None else {"arm": arm},
        )
        created = committed.seed == seed and committed.created_by == created_by  # else another request won
        return ListResult(self.list_response(committed), committed, created)

    def committed_list(self, list_id: str) -> CommittedList:
        """A committed list of the served data set (404 if unknown)."""
        if self.data_dir is None:
            raise RuntimeError("the engine has no data set directory with lists")
        try:
            return read_list(self.data_dir, list_id)
        except UnknownListError as error:
            raise RequestError(str(error), "list_id", 404) from None

    def list_response(self, committed: CommittedList, with_outcomes: bool = False) -> InspectionListResponse:
        """A committed list in the shape of the /inspection_list answer (reasons when this model drew it)."""
        listed = committed.listed
        ids = listed["person_id"].astype(str).tolist()
        why: list[list[ReasonOut]] = [[] for _ in ids]
        by_model = committed.extra.get("arm") != RULE  # the rule's picks have no model reasons
        if (
            by_model
            and committed.model_version == self.version
            and self.first_date <= committed.as_of <= self.last_date
        ):
            entry = self._scored_date(committed.as_of)
            present = entry.scored.rows(ids) >= 0
            known = [person for person, ok in zip(ids, present, strict=True) if ok]
            reasons = dict(zip(known, self._reasons(entry, known), strict=True))
            why = [reasons.get(person, []) for person in ids]
        rows = [
            ListedCase(
                list_rank=int(case["list_rank"]),
                person_id=person,
                score=float(case["score"]),
                rank=int(case["rank"]),
                percentile=float(case["percentile"]),
                district=None if pd.isna(case["district"]) else str(case["district"]),
                permit_type=None if pd.isna(case["permit_type"]) else str(case["permit_type"]),
                selection=Selection(case["selection"]),
                stratum=str(case["stratum"]),
                propensity=float(case["inclusion_probability"]),
                reasons=reasons,
            )
            for person, case, reasons in zip(ids, listed.to_dict("records"), why, strict=True)
        ]
        outcomes = None
        if with_outcomes and self.data_dir is not None:
            counts = read_outcomes(self.data_dir, [committed]).iloc[0]
            outcomes = ListOutcomes(
                listed=int(counts["listed"]),
                visited=int(counts["visited"]),
                found=int(counts["found"]),
                not_visited=int(counts["not_visited"]),
            )
        scope = committed.scope
        return InspectionListResponse(
            list_id=committed.list_id,
            as_of=committed.as_of.isoformat(),
            model_version=committed.model_version,
            k=committed.k,
            filters=ListFilters(
                district=scope.get("district"), permit_types=list(scope.get("permit_types") or [])
            ),
            cases_eligible=committed.n_eligible,
            exploration_share=float(committed.design.get("share", 0.0)),
            exploration_seed=committed.seed,
            n_model=committed.n_model,
            n_exploration=committed.n_exploration,
            rows=rows,
            status=committed.status,
            exploration_design=committed.design,
            strata=[StratumOut.model_validate(stratum) for stratum in committed.strata],
            created_at=committed.created_at,
            redraw_reason=committed.redraw_reason,
            replaces=committed.replaces,
            superseded_by=committed.superseded_by,
            outcomes=outcomes,
        )

    def outcomes_template_csv(self, list_id: str) -> str:
        """The committed list's outcomes template (`timpora outcomes-template`) as CSV text."""
        template = outcomes_template(self.committed_list(list_id), self.permits)
        return str(template.to_csv(index=False))

    def options(self) -> ListOptions:
        """The filter choices of the supervisor page."""
        return ListOptions(
            first_date=self.first_date.isoformat(),
            last_date=self.last_date.isoformat(),
            known_through=self.known_through.isoformat(),
            districts=self.districts,
            permit_types=sorted(
                {str(p) for p in self.scored(self.known_through).table["permit_type"].dropna()}
            ),
            default_k=self.settings.default_k,
            max_k=self.settings.max_k,
            default_exploration_share=self.settings.exploration_share,
            default_exploration_design=self.settings.exploration_design,
            model_version=self.version,
        )
