"""Ranking metrics for inspection lists, with the dssg/triage conventions.

All cases are ranked by score; the metrics at k read the labels of the labelled
cases among the top k. An unlabelled case (not inspected in the horizon) takes a
slot in the list but counts neither as a hit nor as a miss: selective labels are
not negatives. Inputs are aligned by position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from models.order import Values, as_floats, finite_scores, rank_order


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


METRIC_DIRECTIONS: dict[str, Direction] = {
    "precision_at_k": Direction.HIGHER_IS_BETTER,
    "recall_at_k": Direction.HIGHER_IS_BETTER,
    "ndcg_at_k": Direction.HIGHER_IS_BETTER,
    "pr_auc": Direction.HIGHER_IS_BETTER,
    "roc_auc": Direction.HIGHER_IS_BETTER,
    "brier": Direction.LOWER_IS_BETTER,
}
_AT_K = {"precision": "precision_at_k", "recall": "recall_at_k", "ndcg": "ndcg_at_k"}


def metric_direction(name: str) -> Direction:
    """Direction of a metric named as a function (`ndcg_at_k`) or an `evaluate_ranking` key (`ndcg@5%`)."""
    base, at, _ = name.partition("@")
    key = _AT_K.get(base, "") if at else base
    if key not in METRIC_DIRECTIONS:
        raise KeyError(f"{name!r} has no declared direction (counts such as labelled@k are not metrics)")
    return METRIC_DIRECTIONS[key]


def label_masks(labels: Values) -> tuple[np.ndarray, np.ndarray]:
    """(labelled, positive) boolean masks from booleans or 0/1, with NA/NaN for unlabelled cases."""
    values = as_floats(labels)
    labelled = ~np.isnan(values)
    if not np.isin(values[labelled], (0.0, 1.0)).all():
        raise ValueError("labels must be boolean or 0/1, with NA or NaN for unlabelled cases")
    return labelled, values == 1.0


def _prepare(scores: Values, labels: Values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = finite_scores(scores)
    labelled, positive = label_masks(labels)
    if len(labelled) != len(values):
        raise ValueError(f"scores ({len(values)}) and labels ({len(labelled)}) differ in length")
    return values, labelled, positive


def resolve_k(k: int | str, n_cases: int) -> int:
    """A list length from a count (50) or a percentage of the cases ("5%", rounded up), at most n_cases."""
    if n_cases < 0:
        raise ValueError(f"n_cases must be non-negative, got {n_cases}")
    if isinstance(k, str):
        text = k.strip()
        if text.endswith("%"):
            try:
                percent = Decimal(text[:-1].strip())
            except InvalidOperation:
                raise ValueError(f"k={k!r} is not a percentage such as '5%'") from None
            if not (percent.is_finite() and 0 < percent <= 100):
                raise ValueError(f"k={k!r}: a percentage must be in (0%, 100%]")
            return math.ceil(n_cases * percent / 100)  # Decimal: "7%" of 100 is exactly 7
        if not text.isdigit():
            raise ValueError(f"k={k!r} is neither a count (50) nor a percentage ('5%')")
        count = int(text)
    elif isinstance(k, int | np.integer) and not isinstance(k, bool):
        count = int(k)
    else:
        raise ValueError(f"k={k!r} is neither a count (50) nor a percentage ('5%')")
    if count < 1:
        raise ValueError(f"k={k!r}: a list holds at least one case")
    return min(count, n_cases)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator > 0 else math.nan


@dataclass(frozen=True)
class _Ranked:
    """Cumulative counts down the ranked list; entry k is the value over the top k (entry 0 is 0)."""

    labelled: np.ndarray
    positive: np.ndarray
    dcg: np.ndarray
    ideal_dcg: np.ndarray

    @classmethod
    def build(
        cls, values: np.ndarray, labelled: np.ndarray, positive: np.ndarray, tie_key: Values | None
    ) -> _Ranked:
        order = rank_order(values, tie_key)
        discount = 1.0 / np.log2(np.arange(len(values)) + 2.0)

        def cumulative(x: np.ndarray) -> np.ndarray:
            return np.concatenate(([0.0], np.cumsum(x, dtype=np.float64)))

        return cls(
            labelled=cumulative(labelled[order]),
            positive=cumulative(positive[order]),
            dcg=cumulative(positive[order] * discount),
            ideal_dcg=cumulative(discount),
        )

    @property
    def n_positive(self) -> int:
        return int(self.positive[-1])

    def precision(self, k: int) -> float:
        return _ratio(self.positive[k], self.labelled[k])

    def recall(self, k: int) -> float:
        return _ratio(self.positive[k], self.n_positive)

    def ndcg(self, k: int) -> float:
        return _ratio(self.dcg[k], self.ideal_dcg[min(k, self.n_positive)])


def _ranked(scores: Values, labels: Values, tie_key: Values | None) -> _Ranked:
    return _Ranked.build(*_prepare(scores, labels), tie_key)


def precision_at_k(scores: Values, labels: Values, k: int | str, tie_key: Values | None = None) -> float:
    """Share of the labelled cases in the top k that are positive; NaN when none of them is labelled."""
    ranked = _ranked(scores, labels, tie_key)
    return ranked.precision(resolve_k(k, len(ranked.labelled) - 1))


def recall_at_k(scores: Values, labels: Values, k: int | str, tie_key: Values | None = None) -> float:
    """Share of all labelled positives that are in the top k; NaN when there is no labelled positive."""
    ranked = _ranked(scores, labels, tie_key)
    return ranked.recall(resolve_k(k, len(ranked.labelled) - 1))


def labelled_in_top_k(scores: Values, labels: Values, k: int | str, tie_key: Values | None = None) -> int:
    """How many labelled cases the top k holds: the support behind precision_at_k."""
    ranked = _ranked(scores, labels, tie_key)
    return int(ranked.labelled[resolve_k(k, len(ranked.labelled) - 1)])


def ndcg_at_k(scores: Values, labels: Values, k: int | str, tie_key: Values | None = None) -> float:
    """Normalised DCG of the top k with binary gains; NaN when there is no labelled positive.

    A labelled positive at rank i (1-based, in the ranking of all cases) gains 1/log2(i + 1);
    negatives and unlabelled cases gain 0 but hold their rank. The ideal list puts all labelled
    positives first, so it scores sum(1/log2(i + 1) for i in 1..min(k, positives)).
    """
    ranked = _ranked(scores, labels, tie_key)
    return ranked.ndcg(resolve_k(k, len(ranked.labelled) - 1))


def _two_classes(labelled: np.ndarray, positive: np.ndarray) -> bool:
    y = positive[labelled]
    return bool(y.any() and not y.all())


def _pr_auc(values: np.ndarray, labelled: np.ndarray, positive: np.ndarray) -> float:
    if not _two_classes(labelled, positive):
        return math.nan
    return float(average_precision_score(positive[labelled], values[labelled]))


def _roc_auc(values: np.ndarray, labelled: np.ndarray, positive: np.ndarray) -> float:
    if not _two_classes(labelled, positive):
        return math.nan
    return float(roc_auc_score(positive[labelled], values[labelled]))


def pr_auc(scores: Values, labels: Values) -> float:
    """Average precision on the labelled cases; NaN unless both classes are present."""
    return _pr_auc(*_prepare(scores, labels))


def roc_auc(scores: Values, labels: Values) -> float:
    """ROC AUC on the labelled cases; NaN unless both classes are present."""
    return _roc_auc(*_prepare(scores, labels))


def _are_probabilities(values: np.ndarray) -> bool:
    return bool(((values >= 0.0) & (values <= 1.0)).all())


def _require_probabilities(values: np.ndarray) -> None:
    if not _are_probabilities(values):
        raise ValueError("scores must be probabilities in [0, 1]")


def _brier(values: np.ndarray, labelled: np.ndarray, positive: np.ndarray) -> float:
    if not labelled.any():
        return math.nan
    return float(np.mean((values[labelled] - positive[labelled]) ** 2))


def brier(scores: Values, labels: Values) -> float:
    """Mean squared error of the probabilities on the labelled cases; NaN when none is labelled."""
    values, labelled, positive = _prepare(scores, labels)
    _require_probabilities(values)
    return _brier(values, labelled, positive)


def reliability_curve(
    scores: Values, labels: Values, bins: int = 10, strategy: Literal["uniform", "quantile"] = "uniform"
) -> pd.DataFrame:
    """Per score bin, on the labelled cases: bin, mean_predicted, observed_rate, count, lower, upper.

    Bins span [0, 1] and are [lower, upper) except the last, which is closed. "uniform" bins have
    equal width (comparable across models); "quantile" bins hold about equal numbers of labelled
    cases (edges at quantiles of their scores, merged when equal). Empty bins are kept with count 0
    and NaN rates. Calibration against selective labels is biased; pass `random_label` for the
    unbiased sample.
    """
    values, labelled, positive = _prepare(scores, labels)
    _require_probabilities(values)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    s, y = values[labelled], positive[labelled]
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
    elif strategy == "quantile":
        inner = np.quantile(s, np.linspace(0.0, 1.0, bins + 1)[1:-1]) if len(s) else np.empty(0)
        edges = np.unique(np.concatenate(([0.0], inner, [1.0])))
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    n_bins = len(edges) - 1
    which = np.searchsorted(edges[1:-1], s, side="right")
    count = np.bincount(which, minlength=n_bins)
    predicted = np.bincount(which, weights=s, minlength=n_bins)
    observed = np.bincount(which, weights=y.astype(np.float64), minlength=n_bins)
    empty = np.full(n_bins, np.nan)
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins),
            "mean_predicted": np.divide(predicted, count, out=empty.copy(), where=count > 0),
            "observed_rate": np.divide(observed, count, out=empty.copy(), where=count > 0),
            "count": count,
            "lower": edges[:-1],
            "upper": edges[1:],
        }
    )


def wilson_interval(hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion, e.g. precision on the RANDOM sample; (NaN, NaN) if n is 0."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n < 0 or not 0 <= hits <= n:
        raise ValueError(f"need 0 <= hits <= n, got hits={hits}, n={n}")
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate_ranking(
    scores: Values, labels: Values, ks: Sequence[int | str], tie_key: Values | None = None
) -> dict[str, float]:
    """All ranking metrics in one flat dict: `precision@k`, `recall@k`, `ndcg@k`, `labelled@k` per k.

    Plus `pr_auc`, `roc_auc`, `brier` (only when every score is a probability), `n_cases`,
    `n_labelled` and `n_positive`. Keys carry k as given (`precision@5%`, `precision@50`).
    """
    values, labelled, positive = _prepare(scores, labels)
    ranked = _Ranked.build(values, labelled, positive, tie_key)
    result: dict[str, float] = {}
    for spec in ks:
        k = resolve_k(spec, len(values))
        name = str(spec).strip()
        result[f"precision@{name}"] = ranked.precision(k)
        result[f"recall@{name}"] = ranked.recall(k)
        result[f"ndcg@{name}"] = ranked.ndcg(k)
        result[f"labelled@{name}"] = float(ranked.labelled[k])
    result["pr_auc"] = _pr_auc(values, labelled, positive)
    result["roc_auc"] = _roc_auc(values, labelled, positive)
    if _are_probabilities(values):
        result["brier"] = _brier(values, labelled, positive)
    result["n_cases"] = float(len(values))
    result["n_labelled"] = float(labelled.sum())
    result["n_positive"] = float(positive.sum())
    return result
