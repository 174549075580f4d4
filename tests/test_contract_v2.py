"""Data contract v2: LIST inspections, recorded dates, the optional districts table.

Validation cases start from the hand-written v1 data set of tests/test_validation.py
(which must stay valid) and break one v2 rule each; the point-in-time cases
start from the tiny world (tests/tiny_world.py) and move rows' recorded dates
past T: as of T the features must equal those of the data set without them.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_validation import DataSet, cells, summary, valid_rows, write_csv
from tiny_world import AS_OF, tiny_tables

from features import contract
from features.contract import CONTRACT_VERSION, DISTRICTS, EVENT_TABLES, TRIGGER
from features.ingest import ingest
from features.labels import build_labels
from features.loading import load_tables, load_valid_tables
from features.pipeline import build_features, to_day
from features.tables import Tables, write_tables
from features.timeline import build_timeline

T = pd.Timestamp(AS_OF)
DISTRICT_COLUMNS = ["district_code", "name", "province", "office", "parent_code"]
# Every code used by the v1 data set: sponsors 3672, 3671; permits 3672; addresses 3672, 3671.
DISTRICT_ROWS = [
    {"district_code": "36", "name": "Banten", "province": "Banten", "office": "", "parent_code": ""},
    {"district_code": "3671", "name": "Kota Tangerang", "province": "Banten", "office": "Kanim Tangerang",
     "parent_code": ""},
    {"district_code": "3672", "name": "Kota Cilegon", "province": "Banten", "office": "Kanim Cilegon",
     "parent_code": "36"},
    {"district_code": "3672010", "name": "Ciwandan", "province": "Banten", "office": "Kanim Cilegon",
     "parent_code": ""},
]  # fmt: skip


def v2_rows() -> DataSet:
    """The v1 data set with every v2 column and a districts table, still valid."""
    data = valid_rows()
    for spec in EVENT_TABLES:
        for row in data[spec.name]:
            row["recorded_date"] = ""
    for row in data["permits"]:
        row["cancelled_recorded_date"] = ""
    for row in data["inspections"]:
        row["list_id"] = ""
    data["border_crossings"][2]["recorded_date"] = "2022-03-25"  # P2's exit known five days later
    data["permits"][2]["cancelled_recorded_date"] = "2022-06-03"
    data["inspections"].append(
        {
            "inspection_id": "I3",
            "person_id": "P3",
            "sponsor_id": "S2",
            "inspection_date": "2022-09-01",
            "trigger": "LIST",
            "violation_found": "false",
            "violation_type": "",
            "action": "NONE",
            "selection_propensity": "1",
            "list_id": "L2022-09",
            "recorded_date": "2022-09-02",
        }
    )
    data["districts"] = [dict(row) for row in DISTRICT_ROWS]
    return data


def one_error(directory: Path, data: DataSet) -> tuple[str, str | None, str | None, tuple[int, ...], int]:
    result = load_tables(write_csv(directory, data))
    assert result.tables is None
    (error,) = result.report.errors
    return summary(error)


# --- the contract in code ----------------------------------------------------


def test_the_contract_is_version_2_with_the_v2_columns() -> None:
    assert CONTRACT_VERSION == "2"
    assert "LIST" in TRIGGER
    assert {spec.name for spec in EVENT_TABLES} == {
        "permits", "border_crossings", "address_reports", "agency_reports", "labour_violations", "inspections"
    }  # fmt: skip
    for spec in EVENT_TABLES:
        recorded = spec.column("recorded_date")
        assert (recorded.kind, recorded.nullable, recorded.optional) == (contract.Kind.DATE, True, True)
    list_id = contract.INSPECTIONS.column("list_id")
    assert (list_id.nullable, list_id.optional) == (True, True)
    assert contract.PERMITS.column("cancelled_recorded_date").optional
    assert list(DISTRICTS.column_names) == DISTRICT_COLUMNS
    assert DISTRICTS.key == "district_code"
    assert contract.table("districts") is DISTRICTS


# --- v1 and v2 data sets are valid ----------------------------------------------


def test_a_v1_data_set_is_valid_and_gets_the_v2_columns_as_null(tmp_path: Path) -> None:
    result = load_tables(write_csv(tmp_path, valid_rows()))
    assert result.report.issues == []
    assert result.report.render() == "valid: 8 tables, 18 rows"
    tables = result.tables
    assert tables is not None
    for spec in EVENT_TABLES:
        assert tables[spec.name]["recorded_date"].isna().all()
        assert str(tables[spec.name]["recorded_date"].dtype) == "datetime64[s]"
    assert tables.permits["cancelled_recorded_date"].isna().all()
    assert tables.inspections["list_id"].isna().all()
    assert list(tables.districts.columns) == DISTRICT_COLUMNS and len(tables.districts) == 0


def test_a_v2_data_set_is_valid(tmp_path: Path) -> None:
    result = load_tables(write_csv(tmp_path, v2_rows()))
    assert result.report.issues == [], result.report.render()
    assert result.report.render() == "valid: 9 tables, 23 rows"
    tables = result.tables
    assert tables is not None
    listed = tables.inspections.set_index("inspection_id")
    assert listed.loc["I3", "trigger"] == "LIST" and listed.loc["I3", "list_id"] == "L2022-09"
    assert tables.border_crossings["recorded_date"].iloc[2] == pd.Timestamp("2022-03-25")
    assert tables.districts["name"].tolist() == ["Banten", "Kota Tangerang", "Kota Cilegon", "Ciwandan"]
    assert tables.districts["office"].isna().tolist() == [True, False, False, False]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_v2_data_set_round_trips_and_districts_are_written_only_when_present(
    tmp_path: Path, fmt: str
) -> None:
    tables = load_valid_tables(write_csv(tmp_path / "in", v2_rows()))
    write_tables(tables, tmp_path / "out", fmt)  # type: ignore[arg-type]
    assert (tmp_path / "out" / f"districts.{fmt}").exists()
    back = load_valid_tables(tmp_path / "out")
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(back[name], frame, obj=name)
    write_tables(tiny_tables(), tmp_path / "tiny", fmt)  # type: ignore[arg-type]
    assert not (tmp_path / "tiny" / f"districts.{fmt}").exists()
    assert load_tables(tmp_path / "tiny").report.issues == []


# --- LIST inspections ------------------------------------------------------------


def test_a_list_row_without_propensity_is_refused(tmp_path: Path) -> None:
    data = v2_rows()
    cells("inspections", {(3, "selection_propensity"): ""})(data)
    assert one_error(tmp_path, data) == ("required_when", "inspections", "selection_propensity", (3,), 1)


def test_a_list_row_in_a_file_without_the_propensity_column_is_refused(tmp_path: Path) -> None:
    data = v2_rows()
    for row in data["inspections"]:
        del row["selection_propensity"]
    assert one_error(tmp_path, data) == ("required_when", "inspections", "selection_propensity", (3,), 1)


def test_a_list_row_without_list_id_is_refused(tmp_path: Path) -> None:
    data = v2_rows()
    data["inspections"].append({**data["inspections"][2], "inspection_id": "I4", "list_id": ""})
    assert one_error(tmp_path, data) == ("required_when", "inspections", "list_id", (4,), 1)


def test_list_id_on_a_row_that_is_not_list_is_refused(tmp_path: Path) -> None:
    data = v2_rows()
    cells("inspections", {(1, "list_id"): "L2022-08", (2, "list_id"): "L2022-03"})(data)
    assert one_error(tmp_path, data) == ("set_only_when", "inspections", "list_id", (1, 2), 2)


def test_list_errors_are_rendered_with_table_column_rule_and_rows(tmp_path: Path) -> None:
    data = v2_rows()
    cells("inspections", {(3, "selection_propensity"): "", (3, "list_id"): "", (1, "list_id"): "L1"})(data)
    report = load_tables(write_csv(tmp_path / "data", data)).report
    assert [issue.render() for issue in report.errors] == [
        "ERROR inspections.selection_propensity [required_when] missing on rows where trigger is LIST: "
        "1 row (row 3)",
        "ERROR inspections.list_id [required_when] missing on rows where trigger is LIST: 1 row (row 3)",
        "ERROR inspections.list_id [set_only_when] set on rows where trigger is not LIST: 1 row (row 1)",
    ]
    timpora = Path(sys.executable).parent / "timpora"
    done = subprocess.run(
        [str(timpora), "validate", str(tmp_path / "data")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "[required_when]" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_ingest_refuses_a_list_row_without_propensity(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_tables(tiny_tables(), data, "parquet")
    new = pd.DataFrame(
        {
            "inspection_id": ["I20", "I21"],
            "person_id": ["P1", "P4"],
            "sponsor_id": [None, None],
            "inspection_date": ["2024-09-10", "2024-09-10"],
            "trigger": ["LIST", "LIST"],
            "violation_found": [False, False],
            "violation_type": [None, None],
            "action": ["NONE", "NONE"],
            "selection_propensity": [1.0, None],
            "list_id": ["L9", "L9"],
        }
    )
    new.to_csv(tmp_path / "new.csv", index=False)
    # A dry run makes the same checks and writes nothing.
    result = ingest(data, tmp_path / "new.csv", dry_run=True, today=dt.date(2024, 12, 31))
    assert not result.ok and not result.written
    # LIST-specific ingest checks (the list in force, ...) may add their own errors.
    assert ("required_when", "inspections", "selection_propensity", (2,), 1) in [
        summary(i) for i in result.report.errors
    ]


# --- recorded dates -------------------------------------------------------------


@pytest.mark.parametrize("spec", EVENT_TABLES, ids=lambda spec: spec.name)
def test_recorded_before_the_event_is_refused(tmp_path: Path, spec: contract.Table) -> None:
    data = v2_rows()
    assert spec.event_date is not None
    row = data[spec.name][0]
    event = dt.date.fromisoformat(row[spec.event_date])
    row["recorded_date"] = (event - dt.timedelta(days=1)).isoformat()
    assert one_error(tmp_path, data) == ("date_order", spec.name, "recorded_date", (1,), 1)


def test_recorded_on_the_event_day_is_fine(tmp_path: Path) -> None:
    data = v2_rows()
    for spec in EVENT_TABLES:
        assert spec.event_date is not None
        for row in data[spec.name]:
            row["recorded_date"] = row[spec.event_date]
    assert load_tables(write_csv(tmp_path, data)).report.issues == []


def test_a_cancellation_recorded_before_it_happened_is_refused(tmp_path: Path) -> None:
    data = v2_rows()
    cells("permits", {(3, "cancelled_recorded_date"): "2022-05-31"})(data)
    assert one_error(tmp_path, data) == ("date_order", "permits", "cancelled_recorded_date", (3,), 1)


def test_a_cancellation_recorded_without_a_cancellation_is_refused(tmp_path: Path) -> None:
    data = v2_rows()
    cells("permits", {(1, "cancelled_recorded_date"): "2022-06-03"})(data)
    assert one_error(tmp_path, data) == ("set_only_when", "permits", "cancelled_recorded_date", (1,), 1)


def test_an_unreadable_recorded_date_is_one_error(tmp_path: Path) -> None:
    data = v2_rows()
    cells("agency_reports", {(2, "recorded_date"): "soon"})(data)
    assert one_error(tmp_path, data) == ("wrong_type", "agency_reports", "recorded_date", (2,), 1)


# --- districts -------------------------------------------------------------------


def district_edit(data: DataSet, row: int, **values: str) -> DataSet:
    data["districts"][row - 1].update(values)
    return data


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: district_edit(d, 4, district_code="3672"),
         ("duplicate_id", "districts", "district_code", (3, 4), 2)),
        (lambda d: district_edit(d, 3, parent_code="99"),
         ("dangling_reference", "districts", "parent_code", (3,), 1)),
        (lambda d: district_edit(d, 2, name=""), ("null_value", "districts", "name", (2,), 1)),
        (lambda d: district_edit(d, 1, parent_code="3672"),  # 36 -> 3672 -> 36
         ("parent_cycle", "districts", "parent_code", (1, 3), 2)),
        (lambda d: district_edit(d, 4, parent_code="3672010"),  # its own parent
         ("parent_cycle", "districts", "parent_code", (4,), 1)),
    ],
    ids=["duplicate code", "unknown parent", "no name", "cycle", "own parent"],
)  # fmt: skip
def test_a_bad_districts_table_is_refused(
    tmp_path: Path, edit: object, expected: tuple[str, str, str, tuple[int, ...], int]
) -> None:
    data = edit(v2_rows())  # type: ignore[operator]
    assert one_error(tmp_path, data) == expected


def test_a_districts_file_needs_every_column(tmp_path: Path) -> None:
    data = v2_rows()
    for row in data["districts"]:
        del row["office"]
    assert one_error(tmp_path, data) == ("missing_column", "districts", "office", (), 0)


def test_a_code_missing_from_districts_is_a_warning(tmp_path: Path) -> None:
    data = v2_rows()
    cells("address_reports", {(2, "district"): "3603"})(data)
    data["districts"] = [row for row in data["districts"] if row["district_code"] != "3671"]
    result = load_tables(write_csv(tmp_path, data))
    assert result.report.ok and result.tables is not None
    assert [(i.severity, *summary(i)) for i in result.report.issues] == [
        ("warning", "unlisted_value", "sponsors", "district", (2,), 1),
        ("warning", "unlisted_value", "address_reports", "district", (2,), 1),
    ]
    assert "'3603'" in result.report.issues[1].message


def test_without_districts_no_code_is_checked(tmp_path: Path) -> None:
    data = v2_rows()
    del data["districts"]
    cells("address_reports", {(2, "district"): "3603"})(data)
    assert load_tables(write_csv(tmp_path, data)).report.issues == []


def test_districts_in_both_formats_is_ambiguous(tmp_path: Path) -> None:
    directory = write_csv(tmp_path, v2_rows())
    pd.read_csv(directory / "districts.csv", dtype=str).to_parquet(directory / "districts.parquet")
    assert one_error(tmp_path, v2_rows()) == ("ambiguous_file", "districts", None, (), 0)


# --- point in time: rows recorded after T ---------------------------------------------


BASE = tiny_tables()
BASE_FEATURES = build_features(BASE, [AS_OF])
EVENT_DATES = {spec.name: spec.event_date for spec in EVENT_TABLES}


def with_recorded(tables: Tables, recorded: dict[str, pd.Series]) -> Tables:
    """`tables` with recorded_date set per table (a Series aligned with the table's rows)."""
    return tables.replace(
        **{name: tables[name].assign(recorded_date=dates) for name, dates in recorded.items()}
    )


def without_late(tables: Tables, t: pd.Timestamp) -> Tables:
    """The oracle, written plainly: drop rows dated <= t but recorded after t; forget such cancellations."""
    frames = {}
    for name, event in EVENT_DATES.items():
        frame = tables[name]
        late = (frame[event] <= t) & (frame["recorded_date"] > t)
        frames[name] = frame[~late]
    permits = frames["permits"].copy()
    late_cancel = (permits["cancelled_date"] <= t) & (permits["cancelled_recorded_date"] > t)
    permits.loc[late_cancel, ["cancelled_date", "cancelled_recorded_date"]] = pd.NaT
    frames["permits"] = permits
    return tables.replace(**frames)


# Rows dated on or before T, one per table, whose recorded date is moved after T.
LATE: dict[str, str | int] = {
    "permits": "PM2",  # P1's ITAS_WORK: as of T P1 holds only the expired VISIT
    "border_crossings": 6,  # P4's entry on 05-02: P4's last known crossing is the exit, not a case
    "address_reports": 2,  # P1's 06-01 report
    "agency_reports": "AR1",  # the manpower tip about P1
    "labour_violations": 1,  # S1's NO_RPTKA finding
    "inspections": "I2",  # P3's inspection that found a violation
}


def late_recorded(days_after: int = 10) -> Tables:
    recorded = {}
    for name, row in LATE.items():
        frame = BASE[name]
        key = contract.table(name).key
        position = int(np.flatnonzero(frame[key] == row)[0]) if isinstance(row, str) else int(row)
        dates = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[s]")
        dates.iloc[position] = T + pd.Timedelta(days=days_after)
        recorded[name] = dates
    return with_recorded(BASE, recorded)


def test_rows_recorded_after_t_are_unknown_on_t() -> None:
    late = late_recorded()
    features = build_features(late, [AS_OF])
    pd.testing.assert_frame_equal(features, build_features(without_late(late, T), [AS_OF]))
    # The control: the late rows do matter to the features once they are known.
    assert not features.equals(BASE_FEATURES)
    p1 = features.loc[("P1", T)]
    assert p1["current_permit_type"] == "VISIT"
    assert p1["person_reports_total"] == 0.0 and p1["address_reports_365d"] == 2.0
    assert ("P4", T) not in features.index  # the entry is not known yet: last known crossing is the exit
    assert features.loc[("P3", T), "past_inspections_total"] == 0.0


def test_rows_count_from_the_day_they_are_recorded() -> None:
    late = late_recorded(days_after=10)
    recorded_on = T + pd.Timedelta(days=10)
    both = build_features(late, [T, recorded_on, recorded_on - pd.Timedelta(days=1)])
    on_the_day = both.xs(recorded_on, level="as_of")
    assert on_the_day.loc["P1", "current_permit_type"] == "ITAS_WORK"
    assert on_the_day.loc["P1", "person_reports_total"] == 2.0  # AR1 (06-15) known now, AR4 (07-05)
    # Days since an event count from the event date, not from when it was recorded.
    assert on_the_day.loc["P1", "days_since_permit_issue"] == float(
        (recorded_on - pd.Timestamp("2024-03-01")).days
    )
    day_before = both.xs(recorded_on - pd.Timedelta(days=1), level="as_of")
    assert day_before.loc["P1", "current_permit_type"] == "VISIT"
    pd.testing.assert_frame_equal(both.xs(T, level="as_of", drop_level=False), build_features(late, [T]))


def test_labels_cover_the_cases_known_on_t() -> None:
    late = late_recorded()
    labels = build_labels(late, [AS_OF], horizon_days=90)
    assert list(labels.index) == list(build_features(late, [AS_OF]).index)
    assert "P4" not in labels.index.get_level_values("person_id")


def test_a_late_recorded_cancellation_does_not_end_a_permit_on_t() -> None:
    permits = BASE.permits.copy()
    pm4 = permits["permit_id"] == "PM4"  # P3's permit, no crossings: a case through the permit only
    permits.loc[pm4, "cancelled_date"] = pd.Timestamp("2024-06-01")

    def recorded_on(day: pd.Timestamp) -> Tables:
        dates = pd.Series(day, index=permits.index).where(pm4).astype("datetime64[s]")
        return BASE.replace(permits=permits.assign(cancelled_recorded_date=dates))

    known_late = recorded_on(T + pd.Timedelta(days=5))
    late_features = build_features(known_late, [AS_OF])
    pd.testing.assert_frame_equal(late_features, build_features(without_late(known_late, T), [AS_OF]))
    assert late_features.loc[("P3", T), "days_to_expiry"] == 0.0
    assert late_features.loc[("P3", T), "permit_cancellations_total"] == 0.0
    # Known on T (null: known on 06-01; or recorded on T itself), it ends P3's cover: not a case.
    assert ("P3", T) not in build_features(BASE.replace(permits=permits), [AS_OF]).index
    assert ("P3", T) not in build_features(recorded_on(T), [AS_OF]).index
    # Once recorded it counts (P3 is a case again through the extension issued 07-01).
    after = build_features(known_late, [T + pd.Timedelta(days=4), T + pd.Timedelta(days=5)])
    assert after.xs("P3", level="person_id")["permit_cancellations_total"].tolist() == [0.0, 1.0]


def test_a_timeline_without_late_rows_is_used_as_it_is() -> None:
    timeline = build_timeline(BASE)
    assert timeline.known_on(to_day(AS_OF)) is timeline
    late = build_timeline(late_recorded())
    assert late.known_on(to_day(AS_OF)) is not late
    assert late.known_on(to_day(T + pd.Timedelta(days=10))) is late


# Hypothesis: any recorded dates (on or after the event), several as-of dates at once.
AS_OF_DATES = [T - pd.Timedelta(days=120), T - pd.Timedelta(days=30), T]


@st.composite
def recorded_dates(draw: st.DrawFn) -> dict[str, list[int | None]]:
    """Per table, per row: days between the event and its recording (None: not recorded)."""
    lags = st.none() | st.integers(0, 200)
    return {
        name: draw(st.lists(lags, min_size=len(BASE[name]), max_size=len(BASE[name]))) for name in EVENT_DATES
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recorded_dates(), st.lists(st.none() | st.integers(0, 200), min_size=10, max_size=10))
def test_features_equal_those_of_the_data_without_late_rows(
    lags: dict[str, list[int | None]], cancel_lags: list[int | None]
) -> None:
    recorded = {}
    for name, event in EVENT_DATES.items():
        delay = pd.to_timedelta(pd.Series(lags[name], index=BASE[name].index, dtype="float64"), unit="D")
        recorded[name] = (BASE[name][event] + delay).astype("datetime64[s]")
    tables = with_recorded(BASE, recorded)
    permits = tables.permits.copy()
    # Cancel some permits before T too, so late cancellations happen on the as-of dates.
    early = permits["issue_date"] + pd.Timedelta(days=20)
    permits["cancelled_date"] = permits["cancelled_date"].fillna(early.where(permits.index % 2 == 0))
    cancelled, expiry = permits["cancelled_date"], permits["expiry_date"]
    permits["cancelled_date"] = cancelled.where(cancelled.isna() | (cancelled <= expiry), expiry)
    delay = pd.to_timedelta(pd.Series(cancel_lags, dtype="float64"), unit="D")
    permits["cancelled_recorded_date"] = (permits["cancelled_date"] + delay).astype("datetime64[s]")
    tables = tables.replace(permits=permits)
    matrix = build_features(tables, AS_OF_DATES)
    for as_of in AS_OF_DATES:
        expected = build_features(without_late(tables, as_of), [as_of])
        pd.testing.assert_frame_equal(matrix.xs(as_of, level="as_of", drop_level=False), expected)
