"""Ranking metrics on tiny hand-checked lists (code tests): ties, unlabelled slots, k as count or share."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.order import rank_order
from training.metrics import (
    METRIC_DIRECTIONS,
    Direction,
    brier,
    evaluate_ranking,
    labelled_in_top_k,
    metric_direction,
    ndcg_at_k,
    pr_auc,
    precision_at_k,
    recall_at_k,
    reliability_curve,
    resolve_k,
    roc_auc,
    wilson_interval,
)

# Eight cases. D and B tie at 0.8; the tie_key puts B (a labelled negative) before D (unlabelled).
# Ranked with the tie_key:    E+  B-  D?  C+  A?  F-  G+  H?   (5 labelled, 3 positive)
# Ranked by input position:   E+  D?  B-  C+  A?  F-  G+  H?
SCORES = np.array([0.9, 0.8, 0.8, 0.7, 0.5, 0.4, 0.3, 0.1])
IDS = np.array(["E", "D", "B", "C", "A", "F", "G", "H"])
LABELS = pd.array([True, None, False, True, None, False, True, None], dtype="boolean")


def test_rank_order_breaks_ties_by_key_then_position() -> None:
    assert rank_order(SCORES, IDS).tolist() == [0, 2, 1, 3, 4, 5, 6, 7]
    assert rank_order(SCORES).tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    # Equal score and equal key: input position decides.
    assert rank_order([0.5, 0.5, 0.5], ["b", "a", "a"]).tolist() == [1, 2, 0]


def test_rank_order_matches_a_full_lexsort_with_many_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 5000).astype(float)
    keys = rng.permutation(5000).astype(str)
    expected = np.lexsort((keys, -scores))
    assert (rank_order(scores, pd.Series(keys, dtype="str")) == expected).all()


@pytest.mark.parametrize(
    ("k", "tie_key", "precision", "recall", "labelled"),
    [
        (1, IDS, 1.0, 1 / 3, 1),
        (2, IDS, 1 / 2, 1 / 3, 2),  # E+ B-
        (2, None, 1.0, 1 / 3, 1),  # E+ D?: the unlabelled case takes the slot, counts for nothing
        (3, IDS, 1 / 2, 1 / 3, 2),  # E+ B- D?
        (4, IDS, 2 / 3, 2 / 3, 3),
        (100, IDS, 3 / 5, 1.0, 5),  # k beyond the list: everything
        ("25%", IDS, 1 / 2, 1 / 3, 2),  # ceil(8 * 0.25) = 2
        ("30%", IDS, 1 / 2, 1 / 3, 2),  # ceil(2.4) = 3
        ("50%", IDS, 2 / 3, 2 / 3, 3),  # 4
    ],
)
def test_precision_recall_and_support_at_k(
    k: int | str, tie_key: np.ndarray | None, precision: float, recall: float, labelled: int
) -> None:
    assert precision_at_k(SCORES, LABELS, k, tie_key) == pytest.approx(precision)
    assert recall_at_k(SCORES, LABELS, k, tie_key) == pytest.approx(recall)
    assert labelled_in_top_k(SCORES, LABELS, k, tie_key) == labelled


def test_float_labels_with_nan_mean_the_same_as_nullable_booleans() -> None:
    as_float = np.array([1.0, np.nan, 0.0, 1.0, np.nan, 0.0, 1.0, np.nan])
    assert precision_at_k(SCORES, as_float, 4, IDS) == pytest.approx(2 / 3)


def test_no_labelled_case_in_top_k_gives_nan_precision() -> None:
    labels = pd.array([None, None, True, False], dtype="boolean")
    scores = [0.9, 0.8, 0.7, 0.6]
    assert math.isnan(precision_at_k(scores, labels, 2))
    assert labelled_in_top_k(scores, labels, 2) == 0
    assert recall_at_k(scores, labels, 2) == 0.0


def test_no_labelled_positive_gives_nan_recall_and_ndcg() -> None:
    labels = pd.array([False, False, None], dtype="boolean")
    assert math.isnan(recall_at_k([0.3, 0.2, 0.1], labels, 2))
    assert math.isnan(ndcg_at_k([0.3, 0.2, 0.1], labels, 2))
    assert precision_at_k([0.3, 0.2, 0.1], labels, 2) == 0.0


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        # Positives at ranks 1 and 4 of the top 4; the ideal puts the 3 positives at ranks 1-3.
        (4, (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))),
        (2, 1 / (1 + 1 / math.log2(3))),
        (100, (1 + 1 / math.log2(5) + 1 / math.log2(8)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))),
    ],
)
def test_ndcg_by_hand(k: int, expected: float) -> None:
    assert ndcg_at_k(SCORES, LABELS, k, IDS) == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 2, 3, 8])
def test_ndcg_of_a_perfect_ranking_is_one(k: int) -> None:
    labels = pd.array([True, True, False, None, False, True], dtype="boolean")
    scores = [0.9, 0.8, 0.3, 0.2, 0.1, 0.7]  # positives first, then the rest
    assert ndcg_at_k(scores, labels, k) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("k", "n_cases", "expected"),
    [
        (50, 1000, 50),
        (50, 10, 10),
        ("50", 100, 50),
        ("5%", 1000, 50),
        ("5%", 30, 2),  # 1.5 rounds up
        ("7%", 100, 7),  # exact decimal arithmetic: not 8 from 7.000000000000001
        ("0.5%", 1000, 5),
        (" 100% ", 7, 7),
        (5, 0, 0),
        ("5%", 0, 0),
    ],
)
def test_resolve_k(k: int | str, n_cases: int, expected: int) -> None:
    assert resolve_k(k, n_cases) == expected


@pytest.mark.parametrize("k", [0, -3, "0%", "101%", "-5%", "nan%", "%", "abc", "5.5", "", True, 2.5, None])
def test_resolve_k_rejects_nonsense(k: Any) -> None:
    with pytest.raises(ValueError, match="k="):
        resolve_k(k, 100)


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, np.nan], [True, False], "NaN"),
        ([0.1, 0.2], [0.5, 1.0], "boolean or 0/1"),
        ([0.1, 0.2, 0.3], [True, False], "differ in length"),
    ],
)
def test_bad_inputs_are_rejected(scores: list[float], labels: list[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        precision_at_k(scores, labels, 1)


def test_rank_order_rejects_missing_tie_keys() -> None:
    with pytest.raises(ValueError, match="missing"):
        rank_order([0.5, 0.5], ["a", None])


def test_auc_on_labelled_cases_only() -> None:
    # The unlabelled case on top is ignored. Labelled ranking: + - + -.
    scores = [0.95, 0.9, 0.8, 0.7, 0.6]
    labels = pd.array([None, True, False, True, False], dtype="boolean")
    assert roc_auc(scores, labels) == pytest.approx(3 / 4)  # 3 of 4 (positive, negative) pairs in order
    assert pr_auc(scores, labels) == pytest.approx((1 + 2 / 3) / 2)  # precision at each positive


def test_auc_with_one_class_is_nan() -> None:
    labels = pd.array([True, True, None], dtype="boolean")
    assert math.isnan(roc_auc([0.3, 0.2, 0.1], labels))
    assert math.isnan(pr_auc([0.3, 0.2, 0.1], labels))


def test_brier() -> None:
    labels = pd.array([True, False, None], dtype="boolean")
    assert brier([0.9, 0.2, 0.5], labels) == pytest.approx((0.1**2 + 0.2**2) / 2)
    assert math.isnan(brier([0.9, 0.2], pd.array([None, None], dtype="boolean")))
    with pytest.raises(ValueError, match="probabilities"):
        brier([1.2, 0.2, 0.5], labels)


def test_reliability_curve_uniform_bins() -> None:
    scores = [0.05, 0.15, 0.12, 0.55, 0.95, 0.99, 1.0, 0.3]
    labels = pd.array([False, False, True, True, True, False, True, None], dtype="boolean")
    curve = reliability_curve(scores, labels, bins=4)
    assert list(curve.columns) == ["bin", "mean_predicted", "observed_rate", "count", "lower", "upper"]
    assert curve["count"].tolist() == [3, 0, 1, 3]  # 0.3 is unlabelled; 1.0 falls in the closed last bin
    assert curve["mean_predicted"].tolist() == pytest.approx([0.32 / 3, np.nan, 0.55, 2.94 / 3], nan_ok=True)
    assert curve["observed_rate"].tolist() == pytest.approx([1 / 3, np.nan, 1.0, 2 / 3], nan_ok=True)
    assert curve["lower"].tolist() == [0.0, 0.25, 0.5, 0.75]


def test_reliability_curve_quantile_bins_and_left_closed_edges() -> None:
    scores = [0.05, 0.15, 0.12, 0.55, 0.95, 0.99, 1.0]
    labels = [False, False, True, True, True, False, True]
    quantile = reliability_curve(scores, labels, bins=2, strategy="quantile")
    assert quantile["upper"].tolist() == [0.55, 1.0]  # the median of the labelled scores
    assert quantile["count"].tolist() == [3, 4]  # 0.55 opens the second bin
    assert reliability_curve([0.25], [True], bins=4)["count"].tolist() == [0, 1, 0, 0]
    with pytest.raises(ValueError, match="strategy"):
        reliability_curve(scores, labels, strategy="kmeans")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hits", "n", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),
        (0, 10, 0.0, 0.2775),  # upper = z^2 / (n + z^2)
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_interval(hits: int, n: int, low: float, high: float) -> None:
    assert wilson_interval(hits, n) == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_edges() -> None:
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    for hits, n, confidence in [(11, 10, 0.95), (-1, 10, 0.95), (5, 10, 1.0), (5, 10, 0.0)]:
        with pytest.raises(ValueError):
            wilson_interval(hits, n, confidence)


def test_evaluate_ranking_flat_dict() -> None:
    result = evaluate_ranking(SCORES, LABELS, [2, "50%", 100], tie_key=IDS)
    assert result["precision@2"] == pytest.approx(1 / 2)
    assert result["labelled@2"] == 2
    assert result["precision@50%"] == pytest.approx(2 / 3)
    assert result["recall@50%"] == pytest.approx(2 / 3)
    assert result["ndcg@50%"] == pytest.approx(ndcg_at_k(SCORES, LABELS, 4, IDS))
    assert result["recall@100"] == 1.0
    assert result["roc_auc"] == pytest.approx(roc_auc(SCORES, LABELS))
    assert result["brier"] == pytest.approx(brier(SCORES, LABELS))
    assert (result["n_cases"], result["n_labelled"], result["n_positive"]) == (8, 5, 3)
    assert "brier" not in evaluate_ranking(SCORES * 10, LABELS, [2])  # not probabilities


def test_every_metric_declares_its_direction() -> None:
    assert set(METRIC_DIRECTIONS) == {
        "precision_at_k",
        "recall_at_k",
        "ndcg_at_k",
        "pr_auc",
        "roc_auc",
        "brier",
    }
    assert metric_direction("precision@5%") is Direction.HIGHER_IS_BETTER
    assert metric_direction("ndcg_at_k") is Direction.HIGHER_IS_BETTER
    assert metric_direction("brier") is Direction.LOWER_IS_BETTER
    for key in evaluate_ranking(SCORES, LABELS, [2]):
        if not key.startswith(("labelled@", "n_")):
            metric_direction(key)
    for not_a_metric in ["labelled@50", "n_cases", "accuracy"]:
        with pytest.raises(KeyError):
            metric_direction(not_a_metric)
