"""Labels per the contract: a violation found in (T, T+H]; no inspection means no label."""

from __future__ import annotations

import pandas as pd
import pytest
from tiny_world import AS_OF, tiny_tables

from features.labels import build_labels
from features.pipeline import build_features


@pytest.fixture(scope="module")
def labels() -> pd.DataFrame:
    return build_labels(tiny_tables(), [AS_OF], horizon_days=90).droplevel("as_of")


def test_labels_cover_exactly_the_cases(labels: pd.DataFrame) -> None:
    features = build_features(tiny_tables(), [AS_OF]).droplevel("as_of")
    assert list(labels.index) == list(features.index)


def test_uninspected_cases_have_no_label(labels: pd.DataFrame) -> None:
    # P3 and P4 are not inspected within 90 days of T: unlabelled, not negative.
    assert labels.loc["P3", "inspected"] == False  # noqa: E712
    assert pd.isna(labels.loc["P3", "label"])
    assert pd.isna(labels.loc["P4", "label"])


def test_found_and_not_found(labels: pd.DataFrame) -> None:
    # P2: RANDOM inspection on 07-10 found an overstay. P1: TIP on 08-01 found nothing.
    assert labels.loc["P2", "label"] == True  # noqa: E712
    assert labels.loc["P2", "random_label"] == True  # noqa: E712
    assert labels.loc["P2", "selection_propensity"] == pytest.approx(0.05)
    assert labels.loc["P1", "label"] == False  # noqa: E712
    assert labels.loc["P1", "triggers"] == "TIP"
    assert pd.isna(labels.loc["P1", "random_label"])  # not in the unbiased sample
    # P6: RANDOM on 09-01 (63 days after T) found nothing: an unbiased negative.
    assert labels.loc["P6", "random_label"] == False  # noqa: E712


def test_horizon_bounds_the_window() -> None:
    short = build_labels(tiny_tables(), [AS_OF], horizon_days=30).droplevel("as_of")
    assert short.loc["P2", "label"] == True  # noqa: E712  (10 days after T)
    assert pd.isna(short.loc["P1", "label"])  # 32 days after T: outside the window


def test_inspection_on_t_belongs_to_features_not_the_label() -> None:
    tables = tiny_tables()
    on_t = pd.DataFrame(
        {
            "inspection_id": ["I9"],
            "person_id": ["P4"],
            "sponsor_id": [None],
            "inspection_date": [pd.Timestamp(AS_OF)],
            "trigger": ["TARGETED"],
            "violation_found": [True],
            "violation_type": ["OVERSTAY"],
            "action": ["FINE"],
            "selection_propensity": [None],
        }
    )
    tables = tables.replace(inspections=pd.concat([tables.inspections, on_t]))
    labels = build_labels(tables, [AS_OF], horizon_days=90).droplevel("as_of")
    features = build_features(tables, [AS_OF]).droplevel("as_of")
    assert pd.isna(labels.loc["P4", "label"])
    assert features.loc["P4", "past_violations_found_total"] == 1.0


def test_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="horizon"):
        build_labels(tiny_tables(), [AS_OF], horizon_days=0)


def test_triggers_list_every_kind_in_the_window_once() -> None:
    labels = build_labels(tiny_tables(), ["2024-03-01"], horizon_days=200).droplevel("as_of")
    # P1: ROUTINE on 05-01 and TIP on 08-01; P2: RANDOM on 07-10 (TARGETED on 02-15 is before T).
    assert labels.loc["P1", "triggers"] == "ROUTINE|TIP"
    assert labels.loc["P2", "triggers"] == "RANDOM"


def test_labels_without_tips_leave_tip_triggered_inspections_out(labels: pd.DataFrame) -> None:
    # P1 was inspected only after a tip: labelled, but not in the view without tips. P2 (RANDOM) is in both.
    assert labels.loc["P1", "triggers"] == "TIP" and labels.loc["P1", "label"] == False  # noqa: E712
    assert not labels.loc["P1", "untipped_inspected"] and pd.isna(labels.loc["P1", "untipped_label"])
    assert labels.loc["P2", "untipped_label"] == True  # noqa: E712
    untipped = labels["untipped_inspected"].to_numpy(dtype=bool)
    assert labels.loc[untipped, "label"].notna().all()  # without tips is a subset of the labelled cases
