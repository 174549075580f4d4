"""Validation: each kind of bad data is reported with its rule, table, column and rows.

One hand-written valid data set (CSV text below); each case breaks it in one
place and names the single error that must come out, with its 1-based data rows.
The same cases run through the real `timpora validate` command.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from features.loading import load_tables
from features.validation import Issue, ValidationReport

VALID = {
    "persons": """person_id,nationality,sex,birth_year
P1,CHN,M,1980
P2,KOR,F,1990
P3,AUS,X,1975
""",
    "sponsors": """sponsor_id,sponsor_type,sector,district,registered_date,rptka_quota
S1,COMPANY,C,3672,2010-01-01,5
S2,INDIVIDUAL,,3671,2015-06-01,
""",
    "permits": """permit_id,person_id,sponsor_id,permit_type,visa_index,position,work_district,issue_date,expiry_date,cancelled_date
K1,P1,S1,ITAS_WORK,E23,ENG,3672,2022-01-01,2022-12-31,
K2,P2,,VOA,B1,,,2022-03-01,2022-03-30,
K3,P3,S2,ITAS_FAMILY,,,,2022-02-01,2023-01-31,2022-06-01
""",  # noqa: E501
    "border_crossings": """person_id,crossing_date,direction,port
P1,2022-01-05,IN,CGK
P2,2022-03-01,IN,DPS
P2,2022-03-20,OUT,DPS
""",
    "address_reports": """person_id,report_date,district,reporter
P1,2022-01-06,3672,SPONSOR
P3,2022-02-10,3671,LANDLORD
""",
    "agency_reports": """report_id,report_date,agency,person_id,sponsor_id,category
R1,2022-05-01,POLICE,P1,,ADDRESS
R2,2022-05-02,MANPOWER,,S1,ILLEGAL_WORK
""",
    "labour_violations": """sponsor_id,finding_date,violation
S1,2022-07-01,LEVY_UNPAID
""",
    "inspections": """inspection_id,person_id,sponsor_id,inspection_date,trigger,violation_found,violation_type,action,selection_propensity
I1,P1,S1,2022-08-01,RANDOM,true,UNAPPROVED_WORK,FINE,0.05
I2,P2,,2022-03-15,TIP,false,,NONE,1
""",  # noqa: E501
}

DataSet = dict[str, list[dict[str, str]]]  # table -> rows (column -> CSV text)
Edit = Callable[[DataSet], None]


def valid_rows() -> DataSet:
    return {name: list(csv.DictReader(io.StringIO(text))) for name, text in VALID.items()}


def write_csv(directory: Path, data: DataSet) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in data.items():
        header = list(rows[0]) if rows else next(csv.reader(io.StringIO(VALID[name])))
        with (directory / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return directory


def cells(table: str, changes: dict[tuple[int, str], str]) -> Edit:
    """Set cells, addressed by 1-based data row and column."""

    def edit(data: DataSet) -> None:
        for (row, column), value in changes.items():
            data[table][row - 1][column] = value

    return edit


def drop_table(*tables: str) -> Edit:
    def edit(data: DataSet) -> None:
        for name in tables:
            del data[name]

    return edit


def drop_column(table: str, column: str) -> Edit:
    def edit(data: DataSet) -> None:
        for row in data[table]:
            del row[column]

    return edit


@dataclass(frozen=True)
class Case:
    id: str
    edit: Edit
    rule: str
    table: str | None
    column: str | None
    rows: tuple[int, ...] = ()


CASES = [
    Case("missing file", drop_table("permits"), "missing_file", "permits", None),
    Case("empty directory", drop_table(*VALID), "empty_directory", None, None),
    Case("missing column", drop_column("permits", "expiry_date"), "missing_column", "permits", "expiry_date"),
    Case(
        "text in a date column",
        cells("border_crossings", {(2, "crossing_date"): "yesterday"}),
        "wrong_type",
        "border_crossings",
        "crossing_date",
        (2,),
    ),
    Case(
        "text in an int column",
        cells("persons", {(3, "birth_year"): "abc"}),
        "wrong_type",
        "persons",
        "birth_year",
        (3,),
    ),
    Case(
        "2.5 in an int column",
        cells("sponsors", {(1, "rptka_quota"): "2.5"}),
        "wrong_type",
        "sponsors",
        "rptka_quota",
        (1,),
    ),
    Case(
        "not a boolean",
        cells("inspections", {(2, "violation_found"): "no"}),
        "wrong_type",
        "inspections",
        "violation_found",
        (2,),
    ),
    Case(
        "unparseable dates",
        cells("permits", {(1, "issue_date"): "2022-02-30", (3, "issue_date"): "01/02/2022"}),
        "unparseable_date",
        "permits",
        "issue_date",
        (1, 3),
    ),
    Case(
        "unknown enum value (case matters)",
        cells("border_crossings", {(1, "direction"): "in"}),
        "unknown_value",
        "border_crossings",
        "direction",
        (1,),
    ),
    Case(
        "null in a required column",
        cells("persons", {(2, "nationality"): ""}),
        "null_value",
        "persons",
        "nationality",
        (2,),
    ),
    Case(
        "duplicate id",
        cells("permits", {(3, "permit_id"): "K1"}),
        "duplicate_id",
        "permits",
        "permit_id",
        (1, 3),
    ),
    Case(
        "permit for an unknown person",
        cells("permits", {(2, "person_id"): "P9"}),
        "dangling_reference",
        "permits",
        "person_id",
        (2,),
    ),
    Case(
        "expiry before issue",
        cells("permits", {(1, "expiry_date"): "2021-12-31"}),
        "date_order",
        "permits",
        "expiry_date",
        (1,),
    ),
    Case(
        "cancelled before issue",
        cells("permits", {(3, "cancelled_date"): "2022-01-31"}),
        "date_order",
        "permits",
        "cancelled_date",
        (3,),
    ),
    Case(
        "agency report about nobody",
        cells("agency_reports", {(2, "sponsor_id"): ""}),
        "missing_subject",
        "agency_reports",
        None,
        (2,),
    ),
    Case(
        "selection propensity 0 and 1.5",
        cells("inspections", {(1, "selection_propensity"): "0", (2, "selection_propensity"): "1.5"}),
        "out_of_range",
        "inspections",
        "selection_propensity",
        (1, 2),
    ),
    Case(
        "violation type without a violation",
        cells("inspections", {(2, "violation_type"): "OVERSTAY"}),
        "inconsistent_outcome",
        "inspections",
        "violation_type",
        (2,),
    ),
]


def broken_dataset(directory: Path, case: Case) -> Path:
    data = valid_rows()
    case.edit(data)
    return write_csv(directory, data)


def summary(issue: Issue) -> tuple[str, str | None, str | None, tuple[int, ...], int]:
    return issue.rule, issue.table, issue.column, issue.rows, issue.count


def test_the_valid_data_set_is_valid(tmp_path: Path) -> None:
    result = load_tables(write_csv(tmp_path, valid_rows()))
    assert result.report.issues == []
    assert result.report.ok and result.tables is not None
    assert result.report.rows_per_table["permits"] == 3
    assert result.report.render() == "valid: 8 tables, 18 rows"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_bad_case_is_the_one_error_reported(tmp_path: Path, case: Case) -> None:
    result = load_tables(broken_dataset(tmp_path / "data", case))
    assert result.tables is None
    assert not result.report.ok
    assert [summary(i) for i in result.report.errors] == [
        (case.rule, case.table, case.column, case.rows, len(case.rows))
    ]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_validate_reports_bad_case_without_traceback(tmp_path: Path, case: Case) -> None:
    data = broken_dataset(tmp_path / "data", case)
    timpora = Path(sys.executable).parent / "timpora"
    done = subprocess.run([str(timpora), "validate", str(data)], capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"[{case.rule}]" in output
    assert "Traceback" not in output
    assert "invalid: 1 error, 0 warnings" in output


def test_cli_validate_accepts_the_valid_data_set(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "data", valid_rows())
    timpora = Path(sys.executable).parent / "timpora"
    done = subprocess.run([str(timpora), "validate", str(data)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid: 8 tables, 18 rows" in done.stdout


def test_a_value_unread_is_not_reported_again_as_null(tmp_path: Path) -> None:
    # "yesterday" cannot be read as a date; the column is required, but one error is enough.
    data = valid_rows()
    cells("permits", {(2, "issue_date"): "yesterday", (2, "expiry_date"): ""})(data)
    result = load_tables(write_csv(tmp_path, data))
    assert [summary(i) for i in result.report.errors] == [
        ("wrong_type", "permits", "issue_date", (2,), 1),
        ("null_value", "permits", "expiry_date", (2,), 1),
    ]


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    data = valid_rows()
    cells("persons", {(1, "sex"): "male", (2, "sex"): "f", (3, "birth_year"): ""})(data)
    cells("labour_violations", {(1, "sponsor_id"): "S7"})(data)
    report = load_tables(write_csv(tmp_path, data)).report
    assert [summary(i) for i in report.errors] == [
        ("unknown_value", "persons", "sex", (1, 2), 2),
        ("null_value", "persons", "birth_year", (3,), 1),
        ("dangling_reference", "labour_violations", "sponsor_id", (1,), 1),
    ]
    assert report.render().splitlines()[-1] == "invalid: 3 errors, 0 warnings"


def test_rows_shown_are_capped_but_counted(tmp_path: Path) -> None:
    data = valid_rows()
    template = data["border_crossings"][0]
    data["border_crossings"] = [{**template, "direction": "SIDEWAYS"} for _ in range(8)]
    report = load_tables(write_csv(tmp_path, data)).report
    (issue,) = report.errors
    assert (issue.rows, issue.count) == ((1, 2, 3, 4, 5), 8)
    assert issue.render() == (
        "ERROR border_crossings.direction [unknown_value] not one of IN, OUT, found 'SIDEWAYS': "
        "8 rows (rows 1, 2, 3, 4, 5, ...)"
    )


def test_report_render_and_verdicts() -> None:
    error = Issue(
        "error", "permits", "expiry_date", "date_order", "expiry_date before issue_date", (4, 9, 12), 3
    )
    warning = Issue("warning", "persons", "note", "extra_column", "not in the contract; ignored")
    report = ValidationReport([error, warning], {"permits": 20})
    assert not report.ok
    assert report.errors == [error] and report.warnings == [warning]
    assert report.render().splitlines() == [
        "ERROR permits.expiry_date [date_order] expiry_date before issue_date: 3 rows (rows 4, 9, 12)",
        "WARNING persons.note [extra_column] not in the contract; ignored",
        "invalid: 1 error, 1 warning",
    ]
    assert ValidationReport([warning], {"persons": 1}).ok
