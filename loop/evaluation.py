"""The truth beside the office's decisions: checks only, never deciding.

How precise a model's (or the office rule's) top k is by the simulated truth,
and what the retrain's evidence said the truth was. The runner calls these; the
office side never does (tests/test_loop_layers.py).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd

from features.pipeline import features_from_timeline
from features.timeline import Timeline
from loop.office import rule_order
from models.ranker import RiskModel
from models.scoring import score_cases
from training.evaluate import truth_labels
from training.retrain import RetrainOutcome
from training.truth import load_truth


def data_truth(data: Path) -> pd.DataFrame:
    """The truth a loop data set holds (the runner wrote it), read by the project's loader."""
    truth = load_truth(data)
    if truth is None:
        raise RuntimeError(f"the loop's data set {data} holds no truth")
    return truth


def _cases(ids: Any, as_of: dt.date) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays(
        [ids, pd.DatetimeIndex([pd.Timestamp(as_of)] * len(ids))], names=["person_id", "as_of"]
    )


def truth_precision(
    model: RiskModel | None, timeline: Timeline, truth: pd.DataFrame, as_of: dt.date, k: int, horizon: int
) -> float:
    """Share of a model's top k as of `as_of` in violation in (as_of, as_of + H] by the truth."""
    if model is None:
        return math.nan
    ranked = score_cases(model, "check", timeline, as_of).table
    top = ranked.sort_values("rank").head(k)
    cases = _cases(top.index.astype(str), as_of)
    return float(truth_labels(truth, cases, horizon).mean()) if len(top) else math.nan


def rule_truth_precision(
    timeline: Timeline, truth: pd.DataFrame, as_of: dt.date, k: int, horizon: int
) -> float:
    """The same for the office rule's top k."""
    features = features_from_timeline(timeline, [as_of]).droplevel("as_of")
    ids = features.index.to_numpy(dtype=str)
    order = rule_order(features)[:k]
    cases = _cases(ids[order], as_of)
    return float(truth_labels(truth, cases, horizon).mean()) if len(order) else math.nan


def truth_beside(
    outcome: RetrainOutcome,
    champion: RiskModel | None,
    timeline: Timeline,
    truth: pd.DataFrame,
    as_of: dt.date,
    k_op: int,
    horizon: int,
) -> dict[str, Any]:
    """Beside a retrain's decision: the truth its evidence printed, and both models' truth precision."""
    row: dict[str, Any] = {}
    decision = outcome.promotion.decision if outcome.promotion is not None else None
    for evidence in decision.evidence if decision is not None else []:
        row["evidence_truth"] = evidence.truth
        break  # the deciding one (challenger - champion)
    row["truth_challenger"] = truth_precision(
        outcome.training.result.model, timeline, truth, as_of, k_op, horizon
    )
    row["truth_champion"] = truth_precision(champion, timeline, truth, as_of, k_op, horizon)
    row["truth_says"] = (
        "challenger better"
        if row["truth_challenger"] > row["truth_champion"]
        else "champion better or equal"
        if champion is not None
        else "no champion"
    )
    return row
