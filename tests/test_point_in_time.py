"""The point-in-time law: rows dated after T never move a feature as of T.

Property tests (hypothesis) append random future rows to every table of the
tiny world, and move known cancellations past T, then recompute the features.
Since contract v2 the same holds for rows dated on or before T but recorded
after T, and for cancellations recorded after T.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_world import AS_OF, tiny_tables

from features import contract
from features.pipeline import build_features
from features.tables import Tables

T = pd.Timestamp(AS_OF)
BASE = tiny_tables()
BASE_FEATURES = build_features(BASE, [AS_OF])
PERSONS = [*BASE.persons["person_id"], "P7"]  # P7: a new person who only appears after T
SPONSORS = [*BASE.sponsors["sponsor_id"], "S3"]

future_day = st.integers(min_value=1, max_value=800).map(lambda d: T + pd.Timedelta(days=d))
person = st.sampled_from(PERSONS)
sponsor = st.none() | st.sampled_from(SPONSORS)


def _rows(strategy: st.SearchStrategy[dict[str, object]]) -> st.SearchStrategy[list[dict[str, object]]]:
    return st.lists(strategy, max_size=6)


@st.composite
def permit_row(draw: st.DrawFn) -> dict[str, object]:
    issue = draw(future_day)
    return {
        "person_id": draw(person),
        "sponsor_id": draw(sponsor),
        "permit_type": draw(st.sampled_from(contract.PERMIT_TYPE)),
        "position": None,
        "work_district": draw(st.sampled_from([None, "3672", "9999"])),
        "issue_date": issue,
        "expiry_date": issue + pd.Timedelta(days=draw(st.integers(0, 400))),
        "cancelled_date": None,
    }


FUTURE_ROWS = {
    "permits": _rows(permit_row()),
    "border_crossings": _rows(
        st.fixed_dictionaries(
            {
                "person_id": person,
                "crossing_date": future_day,
                "direction": st.sampled_from(contract.DIRECTION),
                "port": st.just("CGK"),
            }
        )
    ),
    "address_reports": _rows(
        st.fixed_dictionaries(
            {
                "person_id": person,
                "report_date": future_day,
                "district": st.sampled_from(["3672", "3171", "5103"]),
                "reporter": st.sampled_from(contract.REPORTER),
            }
        )
    ),
    "agency_reports": _rows(
        st.fixed_dictionaries(
            {
                "report_date": future_day,
                "agency": st.sampled_from(contract.AGENCY),
                "person_id": st.none() | person,
                "sponsor_id": st.sampled_from(SPONSORS),
                "category": st.sampled_from(contract.REPORT_CATEGORY),
            }
        )
    ),
    "labour_violations": _rows(
        st.fixed_dictionaries(
            {
                "sponsor_id": st.sampled_from(SPONSORS),
                "finding_date": future_day,
                "violation": st.sampled_from(contract.LABOUR_VIOLATION),
            }
        )
    ),
    "inspections": _rows(
        st.fixed_dictionaries(
            {
                "person_id": person,
                "sponsor_id": sponsor,
                "inspection_date": future_day,
                "trigger": st.sampled_from(contract.TRIGGER),
                "violation_found": st.booleans(),
                "violation_type": st.none(),
                "action": st.just("NONE"),
                "selection_propensity": st.none() | st.floats(0.01, 1.0),
            }
        )
    ),
}


def _append(base: Tables, future: dict[str, list[dict[str, object]]]) -> Tables:
    frames = {}
    for name, rows in future.items():
        if not rows:
            continue
        extra = pd.DataFrame(rows)
        key = contract.table(name).key
        if key is not None:  # fresh unique ids for the new rows
            extra[key] = [f"F{name[:3]}{i}" for i in range(len(extra))]
        frames[name] = pd.concat([base[name], extra], ignore_index=True)
    frames["persons"] = pd.concat(
        [
            base.persons,
            pd.DataFrame([{"person_id": "P7", "nationality": "IND", "sex": "F", "birth_year": 1999}]),
        ]
    )
    frames["sponsors"] = pd.concat(
        [
            base.sponsors,
            pd.DataFrame(
                [
                    {
                        "sponsor_id": "S3",
                        "sponsor_type": "COMPANY",
                        "sector": "F",
                        "district": "3672",
                        "registered_date": T + pd.Timedelta(days=30),
                        "rptka_quota": 5,
                    }
                ]
            ),
        ]
    )
    return base.replace(**frames)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries(FUTURE_ROWS))
def test_appending_future_rows_never_moves_a_feature(future: dict[str, list[dict[str, object]]]) -> None:
    changed = build_features(_append(BASE, future), [AS_OF])
    pd.testing.assert_frame_equal(changed, BASE_FEATURES)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=500), min_size=10, max_size=10))
def test_cancellations_dated_after_t_are_unknown_on_t(offsets: list[int]) -> None:
    permits = BASE.permits.copy()
    issued = permits["issue_date"] <= T
    cancel = pd.Series([T + pd.Timedelta(days=d) for d in offsets[: len(permits)]], index=permits.index)
    permits.loc[issued, "cancelled_date"] = cancel[issued].astype("datetime64[s]")
    changed = build_features(BASE.replace(permits=permits), [AS_OF])
    pd.testing.assert_frame_equal(changed, BASE_FEATURES)


def test_a_past_row_does_move_features() -> None:
    """The control: the law holds because of the date, not because nothing is read."""
    day_before = T - pd.Timedelta(days=1)
    extra = {"agency_reports": [{"report_date": day_before, "agency": "POLICE", "person_id": "P3",
                                 "sponsor_id": None, "category": "OTHER"}]}  # fmt: skip
    changed = build_features(_append(BASE, extra), [AS_OF])
    assert changed.loc[("P3", T), "person_reports_90d"] == 1.0
    assert BASE_FEATURES.loc[("P3", T), "person_reports_90d"] == 0.0


def test_a_row_dated_on_t_counts_and_one_dated_after_t_does_not() -> None:
    for offset, expected in ((0, 1.0), (1, 0.0)):
        report = {"report_date": T + pd.Timedelta(days=offset), "agency": "POLICE", "person_id": "P3"}
        extra = {"agency_reports": [{**report, "sponsor_id": None, "category": "OTHER"}]}
        changed = build_features(_append(BASE, extra), [dt.date.fromisoformat(AS_OF)])
        assert changed.loc[("P3", T), "person_reports_total"] == expected


# v2: rows dated on or before T but recorded after T are unknown on T as well.

EVENT_DATES = {spec.name: str(spec.event_date) for spec in contract.EVENT_TABLES}
SHIFT = pd.Timedelta(days=801)  # moves a future day (T+1..T+800) into the past (T-800..T-1)


def _recorded_late(future: dict[str, list[dict[str, object]]]) -> dict[str, list[dict[str, object]]]:
    """The future rows moved into the past, each recorded on its original (future) date."""
    late: dict[str, list[dict[str, object]]] = {}
    for name, rows in future.items():
        moved = []
        for row in rows:
            event = EVENT_DATES[name]
            shifted: dict[str, object] = {**row, "recorded_date": row[event]}
            shifted[event] = pd.Timestamp(row[event]) - SHIFT  # type: ignore[arg-type]
            if name == "permits":
                shifted["expiry_date"] = pd.Timestamp(row["expiry_date"]) - SHIFT  # type: ignore[arg-type]
            moved.append(shifted)
        late[name] = moved
    return late


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries(FUTURE_ROWS))
def test_appending_rows_recorded_after_t_never_moves_a_feature(
    future: dict[str, list[dict[str, object]]],
) -> None:
    changed = build_features(_append(BASE, _recorded_late(future)), [AS_OF])
    pd.testing.assert_frame_equal(changed, BASE_FEATURES)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=500), min_size=10, max_size=10))
def test_cancellations_recorded_after_t_are_unknown_on_t(offsets: list[int]) -> None:
    """Every permit cancelled on its issue day (so before T for those issued by T), recorded after T."""
    permits = BASE.permits.copy()
    recorded = pd.Series([T + pd.Timedelta(days=d) for d in offsets[: len(permits)]], index=permits.index)
    permits["cancelled_date"] = permits["issue_date"]
    permits["cancelled_recorded_date"] = recorded.where(permits["issue_date"] <= T).astype("datetime64[s]")
    permits.loc[permits["issue_date"] > T, "cancelled_date"] = pd.NaT
    changed = build_features(BASE.replace(permits=permits), [AS_OF])
    pd.testing.assert_frame_equal(changed, BASE_FEATURES)


def test_a_row_recorded_on_t_counts_and_one_recorded_after_t_does_not() -> None:
    for offset, expected in ((0, 1.0), (1, 0.0)):
        report = {"report_date": T - pd.Timedelta(days=10), "recorded_date": T + pd.Timedelta(days=offset)}
        extra: dict[str, list[dict[str, object]]] = {
            "agency_reports": [{**report, "agency": "POLICE", "person_id": "P3", "sponsor_id": None,
                                "category": "OTHER"}]
        }  # fmt: skip
        changed = build_features(_append(BASE, extra), [AS_OF])
        assert changed.loc[("P3", T), "person_reports_total"] == expected
        since = float(changed.loc[("P3", T), "days_since_last_person_report"])
        assert since == 10.0 if expected else np.isnan(since)  # counted from the report date
