"""What the service computes, without HTTP: scores, explanations and inspection lists for one data set.

Everything goes through `models.scoring` (the same path as `timpora rank`), so
the features are computed by the training code and nowhere else. Scoring a date
costs about a second for 30,000 cases, so each date's scored cases are cached
(a few dates, least recently used); reasons (TreeSHAP) are computed only for
the ids asked for and cached with their date.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.registry import FAMILY_LABELS, FEATURES_BY_NAME, Family
from features.tables import Tables
from features.timeline import build_timeline
from models.listing import ListDraw, draw_inspection_list
from models.ranker import RiskModel
from models.reasons import format_value
from models.scoring import ScoredCases, filter_cases, reasons_for_matrix, score_cases
from serving.schemas import (
    CaseStatus,
    ExplainResponse,
    FamilyExplanation,
    FeatureContribution,
    InspectionListResponse,
    ListedCase,
    ListFilters,
    ListOptions,
    ReasonOut,
    ScoreResponse,
    Selection,
)
from timpora.config import SETTINGS

_SERVING = SETTINGS.serving
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
    """An inspection list and the draw behind it (the service logs the draw)."""

    response: InspectionListResponse
    draw: ListDraw


class ScoringEngine:
    """Scores, explanations and lists for the cases of one data set with one model version."""

    def __init__(
        self, model: RiskModel, version: str, tables: Tables, cached_dates: int = _SERVING.cached_dates
    ):
        first, last = tables.first_date(), tables.last_date()
        if first is None or last is None:
            raise ValueError("the data set has no dated rows: nothing to score")
        self.model, self.version = model, version
        self.first_date, self.last_date = first.date(), last.date()
        self.timeline = build_timeline(tables)
        self.districts = sorted(str(d) for d in self.timeline.districts)
        self._cached_dates = cached_dates
        self._cache: OrderedDict[dt.date, _ScoredDate] = OrderedDict()
        self._lock = threading.Lock()
        self._date_locks: dict[dt.date, threading.Lock] = {}

    # -- dates and caching -------------------------------------------------------------------------

    def resolve_date(self, as_of: DateLike) -> dt.date:
        """The requested date (default: the data's last date), within the data's dates."""
        if as_of is None:
            return self.last_date
        date = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
        if not self.first_date <= date <= self.last_date:
            raise RequestError(
                f"as_of must be between {self.first_date} and {self.last_date} (the data's dates): {as_of}",
                "as_of",
            )
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
            computed = reasons_for_matrix(self.model, matrix, _SERVING.n_reasons)
            fresh = {
                person: [
                    ReasonOut(feature=r.feature, contribution=r.contribution, en=r.en, id=r.id) for r in case
                ]
                for person, case in zip(missing, computed, strict=True)
            }
            with self._lock:
                entry.remember(fresh, max(_SERVING.reasons_cached, len(fresh)))
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
            score=np.where(present, entry.score[rows], np.nan),
            rank=np.where(present, entry.rank[rows], -1),
            percentile=np.where(present, entry.percentile[rows], np.nan),
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
        exploration_share: float = _SERVING.exploration_share,
        seed: int | None = None,
    ) -> ListResult:
        """The top cases for a capacity, with an exploration share drawn at random (seeded) from the rest."""
        date = self.resolve_date(as_of)
        entry = self._scored_date(date)
        eligible = filter_cases(entry.scored.table, district, permit_types)
        seed = secrets.randbits(32) if seed is None else seed
        draw = draw_inspection_list(eligible, k, exploration_share, seed)
        rows = draw.rows
        ids = [str(i) for i in rows.index]
        why = self._reasons(entry, ids)
        listed = [
            ListedCase(
                list_rank=position + 1,
                person_id=person,
                score=float(score),
                rank=int(rank),
                percentile=float(percentile),
                district=None if pd.isna(district_) else str(district_),
                permit_type=None if pd.isna(permit) else str(permit),
                selection=Selection(selection),
                propensity=float(propensity),
                reasons=reasons,
            )
            for position, (
                person,
                score,
                rank,
                percentile,
                district_,
                permit,
                selection,
                propensity,
                reasons,
            ) in (
                enumerate(
                    zip(
                        ids,
                        rows["score"],
                        rows["rank"],
                        rows["percentile"],
                        rows["district"],
                        rows["permit_type"],
                        rows["selection"],
                        rows["propensity"],
                        why,
                        strict=True,
                    )
                )
            )
        ]
        response = InspectionListResponse(
            list_id=str(uuid.uuid4()),
            as_of=date.isoformat(),
            model_version=self.version,
            k=k,
            filters=ListFilters(district=district, permit_types=list(permit_types or [])),
            cases_eligible=len(eligible),
            exploration_share=exploration_share,
            exploration_seed=seed,
            n_model=draw.n_model,
            n_exploration=draw.n_exploration,
            rows=listed,
        )
        return ListResult(response, draw)

    def options(self) -> ListOptions:
        """The filter choices of the supervisor page."""
        return ListOptions(
            first_date=self.first_date.isoformat(),
            last_date=self.last_date.isoformat(),
            districts=self.districts,
            permit_types=sorted({str(p) for p in self.scored(self.last_date).table["permit_type"].dropna()}),
            default_k=_SERVING.default_k,
            max_k=_SERVING.max_k,
            default_exploration_share=_SERVING.exploration_share,
            model_version=self.version,
        )
