"""Feature values worked out by hand on the tiny world (see tests/tiny_world.py), per family."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from tiny_world import AS_OF, tiny_tables

from features.catalog import FEATURE_NAMES
from features.pipeline import build_features

T = dt.date.fromisoformat(AS_OF)


def days(a: str, b: str = AS_OF) -> float:
    return float((dt.date.fromisoformat(b) - dt.date.fromisoformat(a)).days)


@pytest.fixture(scope="module")
def matrix() -> pd.DataFrame:
    return build_features(tiny_tables(), [AS_OF]).droplevel("as_of")


def test_cases_follow_the_contract_definition(matrix: pd.DataFrame) -> None:
    # P5 left on 2024-05-01 (last crossing OUT) although the permit is valid: not a case.
    # P3 and P6 have no crossings but a permit valid on T: cases. P2 overstays: a case.
    assert list(matrix.index) == ["P1", "P2", "P3", "P4", "P6"]
    assert list(matrix.columns) == list(FEATURE_NAMES)


def test_same_day_exit_and_entry_counts_the_entry_last() -> None:
    tables = tiny_tables()
    extra = pd.DataFrame(
        {
            "person_id": ["P5"],
            "crossing_date": [pd.Timestamp("2024-05-01")],
            "direction": ["IN"],
            "port": ["CGK"],
        }
    )
    # Appended after the OUT of the same day: the order of rows must not matter.
    crossings = pd.concat([extra, tables.border_crossings])
    matrix = build_features(tables.replace(border_crossings=crossings), [AS_OF])
    assert "P5" in matrix.index.get_level_values("person_id")


# (person, feature, expected value) worked out by hand from tiny_world.
EXPECTED = [
    # Overstay: P2's VOA ended 2024-02-08 and P2 never left.
    ("P2", "overstay_now", 1.0),
    ("P2", "overstay_days_now", days("2024-02-08")),
    ("P1", "overstay_now", 0.0),
    ("P3", "overstay_now", 0.0),  # expiry on T itself: still valid on T
    # P4 left on 2024-04-30, five days after the permit ended on 2024-04-25.
    ("P4", "past_overstay_exits", 1.0),
    ("P4", "past_overstay_days_total", 5.0),
    ("P4", "days_since_last_overstay_exit", days("2024-04-30")),
    # Permits
    ("P1", "current_permit_type", "ITAS_WORK"),
    ("P1", "days_to_expiry", days(AS_OF, "2025-02-28")),
    ("P1", "permits_total", 2.0),
    ("P1", "permit_conversions_total", 1.0),  # VISIT -> ITAS_WORK the next day
    ("P3", "days_to_expiry", 0.0),
    ("P3", "permits_total", 1.0),  # the extension issued 2024-07-01 is after T
    ("P3", "permit_cancellations_total", 0.0),  # cancelled 2024-08-01, after T
    ("P2", "days_to_expiry", -days("2024-02-08")),
    ("P4", "visa_runs_365d", 2.0),  # out 03-01 in 03-03, out 04-30 in 05-02
    ("P4", "entries_365d", 3.0),
    ("P4", "days_since_last_entry", days("2024-05-02")),
    ("P6", "days_since_last_entry", np.nan),
    # Employer (S1): findings 2023-03-01 and 2024-02-01 (the 2024-08-01 one is after T)
    ("P1", "sponsor_labour_findings_365d", 1.0),
    ("P1", "sponsor_labour_findings_total", 2.0),
    ("P1", "sponsor_permit_findings_365d", 1.0),  # NO_RPTKA
    ("P3", "sponsor_inspections_total", 2.0),
    # S1: 1 hit in 2 visits; global rate up to T: 1 of 3; prior weight 20.
    ("P3", "sponsor_hit_rate_smoothed", (1 + 20 / 3) / (2 + 20)),
    ("P2", "sponsor_labour_findings_365d", np.nan),  # no sponsor
    # Sponsorship (S1 on T): P1 and P3 on ITAS_WORK, P4 on VISIT; quota 2.
    ("P1", "sponsor_type", "COMPANY"),
    ("P1", "sponsor_sector", "C"),
    ("P1", "sponsor_active_persons", 3.0),
    ("P1", "sponsor_active_workers", 2.0),
    ("P1", "sponsor_quota_use", 1.0),
    ("P1", "sponsor_workers_over_quota", 0.0),
    ("P1", "sponsor_visit_share", 1 / 3),
    ("P1", "sponsor_growth_90d", 1 / 3),  # PM8 issued 2024-05-02
    ("P1", "sponsor_age_days", days("2020-01-01")),
    ("P4", "sponsor_switches_total", 1.0),  # S2 -> S1
    # Agency: AR1 (P1, manpower, illegal work, 06-15), AR2 (P2, police, 01-20), AR3 (S1, 05-01)
    ("P1", "person_reports_90d", 1.0),
    ("P1", "person_illegal_work_reports_365d", 1.0),
    ("P1", "person_manpower_reports_365d", 1.0),
    ("P1", "person_reports_total", 1.0),  # AR4 on 07-05 is after T
    ("P1", "days_since_last_person_report", days("2024-06-15")),
    ("P2", "person_reports_90d", 0.0),
    ("P2", "person_enforcement_reports_365d", 1.0),
    ("P1", "sponsor_reports_90d", 1.0),
    # Address: P1 reported 3171 -> 3672 -> 3673 (the 07-15 report is after T); works in 3672
    ("P1", "days_since_last_address_report", days("2024-06-01")),
    ("P1", "address_reports_365d", 3.0),
    ("P1", "address_changes_365d", 2.0),
    ("P1", "work_residence_mismatch", 1.0),
    ("P1", "no_report_since_entry", 0.0),
    ("P4", "no_report_since_entry", 1.0),  # last report 01-06, last entry 05-02
    ("P2", "no_report_since_entry", 1.0),
    # Past inspections: P3 found in violation on 04-01; P2 checked 02-15 (nothing found)
    ("P3", "past_inspections_total", 1.0),
    ("P3", "past_violations_found_total", 1.0),
    ("P3", "days_since_last_violation_found", days("2024-04-01")),
    ("P2", "past_inspections_total", 1.0),  # the RANDOM one on 07-10 is after T
    ("P2", "past_violations_found_total", 0.0),
    ("P2", "days_since_last_inspection", days("2024-02-15")),
]


@pytest.mark.parametrize(("person", "feature", "expected"), EXPECTED)
def test_hand_computed_value(matrix: pd.DataFrame, person: str, feature: str, expected: object) -> None:
    value = matrix.loc[person, feature]
    if isinstance(expected, str):
        assert value == expected
    elif np.isnan(expected):  # type: ignore[arg-type]
        assert pd.isna(value)
    else:
        assert value == pytest.approx(expected)


def test_every_family_is_checked_by_hand() -> None:
    from features.catalog import FEATURES_BY_NAME

    families = {FEATURES_BY_NAME[feature].family for _, feature, _ in EXPECTED}
    assert families == {f.family for f in FEATURES_BY_NAME.values()}


def test_several_dates_stack_and_change_with_time() -> None:
    matrix = build_features(tiny_tables(), ["2024-03-15", AS_OF])
    assert matrix.index.names == ["person_id", "as_of"]
    p2 = matrix.xs("P2", level="person_id")["overstay_days_now"]
    assert list(p2) == [days("2024-02-08", "2024-03-15"), days("2024-02-08")]
    # On 2024-03-15 P4 is between runs (in since 03-03) and P1 has just converted.
    assert ("P4", pd.Timestamp("2024-03-15")) in matrix.index
