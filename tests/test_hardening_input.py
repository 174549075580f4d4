"""Input hardening (issue 13): what `timpora validate` (loading) and `ingest` refuse, and what they accept.

- dates before 1900 (an error), in a year before the person's birth year (an error), and
  event dates before `old_date_year` (default 1990; a warning only: old permits are real);
- a violation found without its violation_type;
- integer columns written by pandas as `10.0` (accepted), `10.5` (refused);
- control characters in any identifier column.

Small frames and the hand-written data sets of tests/test_validation.py and
tests/tiny_world.py: the module runs in about a second.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_validation import DataSet, Edit, cells, valid_rows, write_csv
from tiny_world import tiny_tables

from features.contract import ALL_TABLES, TABLES_BY_NAME, Kind
from features.ingest import ingest
from features.loading import load_table_file, load_tables
from features.tables import write_tables
from features.validation import Issue, check_birth_years, check_old_dates, check_table

TODAY = dt.date(2024, 12, 31)
INSPECTIONS = TABLES_BY_NAME["inspections"]


def loaded(tmp_path: Path, *edits: Edit) -> list[Issue]:
    data: DataSet = valid_rows()
    for edit in edits:
        edit(data)
    return load_tables(write_csv(tmp_path / "data", data)).report.issues


def found(issues: list[Issue]) -> set[tuple[str, str | None, str | None, str, tuple[int, ...]]]:
    return {(i.severity, i.table, i.column, i.rule, i.rows) for i in issues}


def new_inspection(**changes: object) -> pd.DataFrame:
    """One valid new inspection of the tiny world (P2 was born in 1990)."""
    row: dict[str, object] = {
        "inspection_id": "N1",
        "person_id": "P2",
        "sponsor_id": None,
        "inspection_date": "2024-10-15",
        "trigger": "RANDOM",
        "violation_found": True,
        "violation_type": "OVERSTAY",
        "action": "DEPORTATION",
        "selection_propensity": 0.125,
    }
    return pd.DataFrame([{**row, **changes}])


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    out = tmp_path / "tiny"
    write_tables(tiny_tables(), out, "parquet")
    return out


def ingested(tiny: Path, tmp_path: Path, frame: pd.DataFrame) -> list[Issue]:
    path = tmp_path / "new.csv"
    frame.to_csv(path, index=False)
    return ingest(tiny, path, dry_run=True, today=TODAY).report.issues


# -- 2. dates out of any sane range ------------------------------------------------------------------


def test_a_date_before_1900_is_refused_in_every_date_column(tmp_path: Path) -> None:
    issues = loaded(
        tmp_path,
        cells("inspections", {(2, "inspection_date"): "0001-01-01"}),
        cells("sponsors", {(1, "registered_date"): "1899-12-31"}),
        cells("permits", {(3, "cancelled_date"): "1066-10-14"}),
    )
    assert found(issues) >= {
        ("error", "inspections", "inspection_date", "implausible_date", (2,)),
        ("error", "sponsors", "registered_date", "implausible_date", (1,)),
        ("error", "permits", "cancelled_date", "implausible_date", (3,)),
    }
    [issue] = [i for i in issues if i.table == "inspections"]
    assert issue.render() == (
        "ERROR inspections.inspection_date [implausible_date] before 1900-01-01, found 0001-01-01: "
        "1 row (row 2)"
    )


def test_1900_itself_is_no_error(tmp_path: Path) -> None:
    issues = loaded(tmp_path, cells("sponsors", {(1, "registered_date"): "1900-01-01"}))
    assert [i for i in issues if i.severity == "error"] == []


def test_a_date_in_a_year_before_the_persons_birth_is_refused(tmp_path: Path) -> None:
    # P2 was born in 1990: crossings in 1988 and 1989 cannot be theirs; the birth year itself passes.
    issues = loaded(
        tmp_path,
        cells("border_crossings", {(2, "crossing_date"): "1988-03-01", (3, "crossing_date"): "1989-03-20"}),
        cells("persons", {(3, "birth_year"): "2022"}),  # P3's rows are from 2022: the birth year passes
    )
    errors = [i for i in issues if i.severity == "error"]
    assert found(errors) == {("error", "border_crossings", "crossing_date", "before_birth", (2, 3))}
    assert "1988-03-01 (born 1990)" in errors[0].message and "birth_year" in errors[0].message


def test_old_event_dates_are_a_warning_and_the_data_set_loads(tmp_path: Path) -> None:
    data = valid_rows()
    cells("permits", {(1, "issue_date"): "1985-01-01"})(data)
    cells("persons", {(1, "birth_year"): "1960"})(data)
    cells("sponsors", {(1, "registered_date"): "1970-01-01"})(data)  # not an event date: no warning
    result = load_tables(write_csv(tmp_path / "data", data))
    assert result.tables is not None and result.report.ok
    assert found(result.report.issues) == {("warning", "permits", "issue_date", "old_date", (1,))}
    rendered = result.report.render()
    assert "WARNING permits.issue_date [old_date] dated before 1990" in rendered
    assert rendered.endswith("1 warning")
    # The year is a setting of the check.
    strict = load_tables(tmp_path / "data", old_date_year=1980).report
    assert strict.issues == []


def test_check_old_dates_and_birth_years_on_small_frames() -> None:
    persons = pd.DataFrame({"person_id": ["A", "B"], "birth_year": pd.array([2000, None], dtype="Int64")})
    dates = pd.Series(["1995-05-05", "1880-01-01", "1950-01-01", None], dtype="datetime64[s]")
    crossings = pd.DataFrame({"person_id": ["A", "A", "B", "A"], "crossing_date": dates})
    frames = {"persons": persons, "border_crossings": crossings}
    [before] = check_birth_years(frames, set())
    # 1880 is an implausible_date error already; B's birth year is unknown
    assert (before.rule, before.rows, before.count) == ("before_birth", (1,), 1)
    assert check_birth_years(frames, {"persons.birth_year"}) == []  # unreadable: reported elsewhere
    [old] = check_old_dates(frames, before_year=1990)
    assert (old.severity, old.rule, old.rows) == ("warning", "old_date", (3,))  # 1880 is an error already
    assert check_old_dates(frames, before_year=1900) == []
    assert check_birth_years({**frames, "persons": persons.iloc[:0]}, set()) == []  # no persons at all


def test_ingest_refuses_an_inspection_dated_0001_01_01_and_one_before_the_birth(
    tiny: Path, tmp_path: Path
) -> None:
    issues = ingested(tiny, tmp_path, new_inspection(inspection_date="0001-01-01"))
    assert ("error", "inspections", "inspection_date", "implausible_date", (1,)) in found(issues)
    issues = ingested(tiny, tmp_path, new_inspection(inspection_date="1950-06-01"))
    assert found(issues) == {
        ("error", "inspections", "inspection_date", "before_birth", (1,)),
        ("warning", "inspections", "inspection_date", "old_date", (1,)),
    }
    assert ingested(tiny, tmp_path, new_inspection()) == []


# -- 3. a violation found must say which ---------------------------------------------------------------


def test_violation_found_without_violation_type_is_refused(tmp_path: Path, tiny: Path) -> None:
    issues = loaded(tmp_path, cells("inspections", {(1, "violation_type"): ""}))
    assert found(issues) == {("error", "inspections", "violation_type", "required_when", (1,))}
    assert "missing on rows where violation_found is true" in issues[0].message
    issues = ingested(tiny, tmp_path, new_inspection(violation_type=None))
    assert found(issues) == {("error", "inspections", "violation_type", "required_when", (1,))}


# -- 4. integers as pandas writes them -----------------------------------------------------------------


def test_a_csv_written_by_pandas_with_a_nullable_integer_column_loads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_tables(tiny_tables(), data, "csv")
    sponsors = pd.read_csv(data / "sponsors.csv", dtype=str, keep_default_na=False)
    sponsors["rptka_quota"] = pd.array([10, None], dtype="Int64").astype("Float64")  # as an export gives it
    sponsors.to_csv(data / "sponsors.csv", index=False)
    assert "10.0" in (data / "sponsors.csv").read_text()
    result = load_tables(data)
    assert result.report.issues == [] and result.tables is not None
    assert result.tables.sponsors["rptka_quota"].tolist() == [10, pd.NA]


def test_pandas_to_csv_of_an_Int64_column_with_a_null_reads_back_as_integers(tmp_path: Path) -> None:
    """What pandas writes for a nullable integer column with a null, and the other whole-number forms."""
    spec = TABLES_BY_NAME["persons"]
    frame = pd.DataFrame({"person_id": ["A", "B", "C", "D"], "nationality": "X", "sex": "F"})
    frame["birth_year"] = pd.array([1980.0, np.nan, 1990.0, 2000.0])  # a float column after a merge
    path = tmp_path / "persons.csv"
    frame.to_csv(path, index=False)
    text = path.read_text()
    assert "1980.0" in text
    path.write_text(text.replace("2000.0", "2000.").replace("1990.0", "1990"))
    table = load_table_file(path, spec)
    assert table.issues == [] and table.frame is not None
    assert table.frame["birth_year"].tolist() == [1980, pd.NA, 1990, 2000]


@pytest.mark.parametrize("bad", ["10.5", "1e3", "10.0.0", ".0", "ten"])
def test_a_fraction_or_other_text_in_an_integer_column_is_still_wrong_type(tmp_path: Path, bad: str) -> None:
    issues = loaded(tmp_path, cells("sponsors", {(1, "rptka_quota"): bad}))
    [issue] = issues
    assert found(issues) == {("error", "sponsors", "rptka_quota", "wrong_type", (1,))}
    assert issue.message == f"expected an integer, found {bad!r}"


# -- 5. control characters in identifiers ----------------------------------------------------------------


ID_COLUMNS = [(t.name, c.name) for t in ALL_TABLES for c in t.columns if c.kind == Kind.ID]


@pytest.mark.parametrize(("table", "column"), ID_COLUMNS)
def test_every_id_column_refuses_control_characters(table: str, column: str) -> None:
    spec = TABLES_BY_NAME[table]
    frame = pd.DataFrame(
        {c.name: pd.Series([None] * 5, dtype="str") for c in spec.columns if c.kind != Kind.DATE}
    )
    frame[column] = pd.Series(["ok-1", "I\n2", "tab\there", "nul\x00", "c1\x85"], dtype="str")
    issues = [i for i in check_table(spec, frame, {}) if i.rule == "control_character"]
    assert [(i.column, i.rows) for i in issues] == [(column, (2, 3, 4, 5))]
    assert r"'I\n2'" in issues[0].message


def test_an_inspection_id_with_a_line_break_is_refused_by_ingest_and_loading(
    tiny: Path, tmp_path: Path
) -> None:
    issues = ingested(tiny, tmp_path, new_inspection(inspection_id="N\n1"))
    assert found(issues) == {("error", "inspections", "inspection_id", "control_character", (1,))}
    issues = loaded(tmp_path, cells("persons", {(1, "person_id"): "P1\x07"}))
    assert ("error", "persons", "person_id", "control_character", (1,)) in found(issues)
    # Letters beyond ASCII are no control characters.
    assert loaded(tmp_path, cells("inspections", {(1, "inspection_id"): "Ö-ü-ß-東"})) == []
