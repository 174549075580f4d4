"""The one inference path: tables -> features as of T -> scores, ranks and reasons.

Batch ranking (`timpora rank`) and the HTTP service both call these functions;
training and evaluation score through the same `RiskModel.score`. Reasons
(TreeSHAP, about 2 ms a case) are computed only for the rows someone will see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.case_context import case_context
from features.pipeline import features_from_timeline, to_day
from features.snapshot import take_snapshot
from features.timeline import Timeline
from models.order import rank_order
from models.ranker import FloatMatrix, RiskModel, feature_matrix
from models.reasons import Reason, top_reasons


@dataclass
class ScoredCases:
    """Every case on one date with its score and rank (1 = inspect first)."""

    as_of: dt.date
    model_version: str
    features: pd.DataFrame  # indexed by person_id
    table: pd.DataFrame  # score, rank, percentile, district, permit_type; in rank order
    matrix: FloatMatrix  # the model's features as floats, rows in `features` order (for reasons)

    def rows(self, person_ids: Sequence[str]) -> npt.NDArray[np.intp]:
        """Row of each id in `features` and `matrix` (-1 for an id that is not a case on this date)."""
        return np.asarray(self.features.index.get_indexer(pd.Index(list(person_ids), dtype="str")))


def score_cases(model: RiskModel, version: str, timeline: Timeline, as_of: dt.date) -> ScoredCases:
    """Score every case as of a date and order them (ties broken by person id)."""
    features = features_from_timeline(timeline, [as_of]).droplevel("as_of")
    context = case_context(take_snapshot(timeline, to_day(as_of))).droplevel("as_of")
    matrix = feature_matrix(features, model.feature_names)
    scores = model.probability(model.margin(matrix)) if len(features) else np.empty(0)
    order = rank_order(scores, features.index.to_numpy(dtype=str))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    table = pd.DataFrame(
        {
            "score": scores,
            "rank": rank,
            "percentile": 100.0 * (1.0 - (rank - 1) / max(len(rank), 1)),
            "district": context["district"].reindex(features.index),
            "permit_type": context["permit_type"].reindex(features.index),
        },
        index=features.index,
    ).iloc[order]
    return ScoredCases(as_of, version, features, table, matrix)


def filter_cases(
    table: pd.DataFrame, district: str | None = None, permit_types: Sequence[str] | None = None
) -> pd.DataFrame:
    """Keep cases in a district (a code or a code prefix) and of given permit types."""
    keep = np.ones(len(table), dtype=bool)
    if district:
        keep &= table["district"].fillna("").str.startswith(district).to_numpy(dtype=bool)
    if permit_types:
        keep &= table["permit_type"].isin(list(permit_types)).to_numpy(dtype=bool)
    return table[keep]


def reasons_for_matrix(model: RiskModel, matrix: FloatMatrix, n_reasons: int = 3) -> list[list[Reason]]:
    """The top reasons of each row of a model feature matrix (TreeSHAP on these rows only)."""
    if not len(matrix):
        return []
    contributions = model.contributions_of(matrix)
    return top_reasons(model.readable_values(matrix), contributions, model.feature_names, n_reasons)


def with_reasons(
    model: RiskModel, scored: ScoredCases, rows: pd.DataFrame, n_reasons: int = 3
) -> pd.DataFrame:
    """Add the top reasons (English and Bahasa Indonesia) to the given rows of a scored table."""
    reasons = reasons_for_matrix(model, scored.matrix[scored.rows(rows.index.tolist())], n_reasons)
    out = rows.copy()
    out["reasons_en"] = ["; ".join(r.en for r in case) for case in reasons]
    out["reasons_id"] = ["; ".join(r.id for r in case) for case in reasons]
    out["model_version"] = scored.model_version
    return out


def ranked_list(
    model: RiskModel,
    version: str,
    timeline: Timeline,
    as_of: dt.date,
    top: int,
    district: str | None = None,
    permit_types: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The ranked cases as of a date with reasons; `top=0` means every case (slow: reasons for all)."""
    scored = score_cases(model, version, timeline, as_of)
    rows = filter_cases(scored.table, district, permit_types)
    if top > 0:
        rows = rows.head(top)
    listed = with_reasons(model, scored, rows)
    listed.insert(0, "list_rank", np.arange(1, len(listed) + 1))
    return listed.reset_index()
