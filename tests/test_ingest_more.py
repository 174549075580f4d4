"""Ingest of new arrivals (persons, sponsors) and corrections by key (issue 13).

New ids join the registers after the same checks as any ingest, and their
permits can follow; an id already there with other values is refused, naming
the rows and pointing to `--correct`. A correction replaces rows by key, never
adds, needs a reason, keeps the replaced rows in the ingest log (ingesting them
back restores the table byte for byte), and is atomic: a refusal or a failure
part-way leaves every file as it was. The tiny world (tests/tiny_world.py)
keeps the module to a few seconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pandas as pd
import pytest
from test_ingest import filled_template
from tiny_world import tiny_tables
from typer.testing import CliRunner

import features.transaction
from features.contract import TABLES_BY_NAME
from features.ingest import LOG_DIR, LOG_FILE, TEMP_PREFIX, ingest, read_log
from features.lists import read_lists, read_outcomes
from features.loading import load_tables
from features.tables import Tables, typed_frame, write_tables
from timpora.cli import app

TODAY = dt.date(2024, 12, 31)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    out = tmp_path / "data"
    write_tables(tiny_tables(), out, "parquet")
    return out


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A table's rows as an export writes them: dates as YYYY-MM-DD."""
    out = frame.copy()
    for name in out.columns:
        if str(out[name].dtype).startswith("datetime64"):
            out[name] = out[name].dt.strftime("%Y-%m-%d")
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    as_text(frame).to_csv(path, index=False)
    return path


def hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file of the data set, the ingest log included (the lock file excluded)."""
    files = [p for p in sorted(directory.rglob("*")) if p.is_file() and p.name != ".ingest.lock"]
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def tables(directory: Path) -> Tables:
    loaded = load_tables(directory)
    assert loaded.tables is not None, loaded.report.render()
    return loaded.tables


NEW_PERSONS = pd.DataFrame(
    {
        "person_id": ["P7", "P8"],
        "nationality": ["IND", "PHL"],
        "sex": ["F", "M"],
        "birth_year": [1998, 1987],
    }
)


def permits_of(person: str, sponsor: str | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "permit_id": [f"PM-{person}"],
            "person_id": [person],
            "sponsor_id": [sponsor],
            "permit_type": ["ITAS_WORK"],
            "position": ["ENG"],
            "work_district": ["3171"],
            "issue_date": ["2024-11-01"],
            "expiry_date": ["2025-10-31"],
            "cancelled_date": [None],
        }
    )


# New arrivals.


def test_new_persons_and_sponsors_join_and_their_permits_follow(data: Path, tmp_path: Path) -> None:
    permits = write_csv(permits_of("P7", "S3"), tmp_path / "permits.csv")
    early = ingest(data, permits, table="permits", today=TODAY)  # before the person and the sponsor
    assert {(i.column, i.rule) for i in early.report.errors} == {
        ("person_id", "dangling_reference"),
        ("sponsor_id", "dangling_reference"),
    }

    known = tiny_tables().persons.head(1)  # P1 exactly as it is: a duplicate, skipped
    persons = write_csv(pd.concat([NEW_PERSONS, known], ignore_index=True), tmp_path / "persons.csv")
    added = ingest(data, persons, table="persons", today=TODAY)
    assert added.ok, added.report.render()
    assert (added.rows_in_file, added.added, added.unchanged, added.written) == (3, 2, 1, True)
    sponsor = pd.DataFrame(
        {
            "sponsor_id": ["S3"],
            "sponsor_type": ["COMPANY"],
            "sector": ["F"],
            "district": ["3171"],
            "registered_date": ["2024-10-01"],
            "rptka_quota": [5],
        }
    )
    assert (
        ingest(data, write_csv(sponsor, tmp_path / "sponsors.csv"), table="sponsors", today=TODAY).added == 1
    )
    later = ingest(data, permits, table="permits", today=TODAY)
    assert later.ok and later.added == 1, later.report.render()

    now = tables(data)
    expected = typed_frame(TABLES_BY_NAME["persons"], NEW_PERSONS)
    pd.testing.assert_frame_equal(now.persons.tail(2).reset_index(drop=True), expected)
    pd.testing.assert_frame_equal(now.persons.head(6), tiny_tables().persons)
    assert now.sponsors["sponsor_id"].tolist() == ["S1", "S2", "S3"]
    assert now.permits["person_id"].iloc[-1] == "P7"
    logged = [(r.table, r.rows_added, r.rows_already_present) for r in read_log(data)]
    assert logged == [("persons", 2, 1), ("sponsors", 1, 0), ("permits", 1, 0)]

    again = hashes(data)
    repeat = ingest(data, persons, table="persons", today=TODAY)  # re-ingest: nothing added or rewritten
    assert repeat.ok and (repeat.added, repeat.unchanged, repeat.written) == (0, 3, False)
    assert {k: v for k, v in hashes(data).items() if k != f"{LOG_DIR}/{LOG_FILE}"} == {
        k: v for k, v in again.items() if k != f"{LOG_DIR}/{LOG_FILE}"
    }


def _p2_renamed(frame: pd.DataFrame) -> None:
    frame.loc[1, "nationality"] = "USA"  # P2 is RUS


def _p6_reborn(frame: pd.DataFrame) -> None:
    frame.loc[2, "birth_year"] = 1951  # P6 was born in 1950


def test_an_existing_person_with_other_values_is_refused_naming_rows_and_columns(
    data: Path, tmp_path: Path
) -> None:
    frame = pd.concat([NEW_PERSONS.head(1), tiny_tables().persons.iloc[[1, 5]]], ignore_index=True)
    _p2_renamed(frame)
    _p6_reborn(frame)
    before = hashes(data)
    result = ingest(data, write_csv(frame, tmp_path / "persons.csv"), table="persons", today=TODAY)
    conflicts = sorted((i.column, i.rule, i.rows) for i in result.report.errors)
    assert conflicts == [("birth_year", "conflict", (3,)), ("nationality", "conflict", (2,))]
    messages = " ".join(i.message for i in result.report.errors)
    assert "P2: 'RUS' -> 'USA'" in messages and "P6: 1950 -> 1951" in messages
    assert "--correct" in messages
    assert hashes(data) == before  # the new P7 was not added either


@pytest.mark.parametrize(
    ("table", "change", "rule", "column"),
    [
        ("persons", {"sex": "Q"}, "unknown_value", "sex"),
        ("persons", {"person_id": "P9\nP10"}, "control_character", "person_id"),
        ("persons", {"birth_year": 2025}, "future_date", "birth_year"),
        ("sponsors", {"registered_date": "2025-01-02"}, "future_date", "registered_date"),
    ],
)
def test_new_register_rows_pass_the_same_checks(
    data: Path, tmp_path: Path, table: str, change: dict[str, object], rule: str, column: str
) -> None:
    rows = {
        "persons": NEW_PERSONS.head(1),
        "sponsors": as_text(tiny_tables().sponsors.head(1)).assign(sponsor_id="S9"),
    }[table].assign(**change)
    before = hashes(data)
    result = ingest(data, write_csv(rows, tmp_path / "rows.csv"), table=table, today=TODAY)
    assert (rule, column) in {(i.rule, i.column) for i in result.report.errors}, result.report.render()
    assert hashes(data) == before


# Corrections.


def corrected_i3() -> pd.DataFrame:
    """I1 as it is and I3 corrected: a violation was found after all (rows 1 and 2 of the file)."""
    rows = tiny_tables().inspections.iloc[[0, 2]].reset_index(drop=True)
    rows.loc[1, ["violation_found", "violation_type", "action"]] = [True, "OVERSTAY", "WARNING"]
    return rows


def test_a_correction_replaces_rows_by_key_and_the_log_keeps_the_old_ones(data: Path, tmp_path: Path) -> None:
    original = hashes(data)
    file = write_csv(corrected_i3(), tmp_path / "fix.csv")
    result = ingest(data, file, correct=True, reason="  I3: the finding was filed late  ", today=TODAY)
    assert result.ok, result.report.render()
    assert (result.corrected, result.unchanged, result.added, result.written) == (1, 1, 0, True)

    now = tables(data).inspections
    old = tiny_tables().inspections
    assert now["inspection_id"].tolist() == old["inspection_id"].tolist()  # replaced in place
    pd.testing.assert_frame_equal(now.drop(index=2), old.drop(index=2))
    assert now.loc[2, ["violation_found", "violation_type", "action"]].tolist() == [
        True,
        "OVERSTAY",
        "WARNING",
    ]
    for name in ("persons", "permits"):
        assert hashes(data)[f"{name}.parquet"] == original[f"{name}.parquet"]

    [record] = read_log(data)
    assert record.correction and record.reason == "I3: the finding was filed late"
    assert (record.rows_corrected, record.rows_added, record.rows_already_present) == (1, 0, 1)
    assert record.old_rows == [
        {
            "inspection_id": "I3",
            "person_id": "P1",
            "sponsor_id": "S1",
            "inspection_date": "2024-05-01",
            "trigger": "ROUTINE",
            "violation_found": False,
            "violation_type": None,
            "action": "NONE",
            "selection_propensity": None,
            "list_id": None,
            "recorded_date": None,
        }
    ]
    table = data / "inspections.parquet"
    assert record.table_sha256_before == original["inspections.parquet"]
    assert record.table_sha256_after == hashlib.sha256(table.read_bytes()).hexdigest()

    undo = write_csv(pd.DataFrame(record.old_rows), tmp_path / "undo.csv")  # the log undoes it by hand
    assert ingest(data, undo, correct=True, reason="undo", today=TODAY).corrected == 1
    assert hashlib.sha256(table.read_bytes()).hexdigest() == original["inspections.parquet"]
    again = ingest(data, undo, correct=True, reason="undo", today=TODAY)  # nothing left to change
    assert again.ok and (again.corrected, again.unchanged, again.written) == (0, 1, False)
    assert read_log(data)[-1].old_rows == []


def test_a_correction_of_a_person_is_checked_with_every_table(data: Path, tmp_path: Path) -> None:
    person = tiny_tables().persons.iloc[[5]].reset_index(drop=True)  # P6 holds an ITAP issued in 2020
    before = hashes(data)
    wrong = write_csv(person.assign(birth_year=2023), tmp_path / "p6.csv")
    refused = ingest(data, wrong, table="persons", correct=True, reason="typo", today=TODAY)
    assert [(i.table, i.column, i.rule) for i in refused.report.errors] == [
        ("permits", "issue_date", "before_birth")
    ]
    assert hashes(data) == before
    fixed = write_csv(person.assign(birth_year=1955), tmp_path / "p6.csv")
    result = ingest(data, fixed, table="persons", correct=True, reason="passport read again", today=TODAY)
    assert result.ok and result.corrected == 1
    assert tables(data).persons["birth_year"].tolist() == [1985, 1990, 1979, 1995, 1970, 1955]
    assert read_log(data)[-1].old_rows == [
        {"person_id": "P6", "nationality": "NLD", "sex": "X", "birth_year": 1950}
    ]


def test_a_correction_never_adds(data: Path, tmp_path: Path) -> None:
    frame = corrected_i3()
    frame.loc[0, "inspection_id"] = "X9"
    before = hashes(data)
    result = ingest(data, write_csv(frame, tmp_path / "fix.csv"), correct=True, reason="typo", today=TODAY)
    [error] = result.report.errors
    assert (error.table, error.column, error.rule, error.rows) == (
        "inspections",
        "inspection_id",
        "correction_of_missing_row",
        (1,),
    )
    assert "'X9'" in error.message and "without --correct" in error.message
    assert hashes(data) == before


@pytest.mark.parametrize(
    ("table", "reason", "rule"),
    [
        ("inspections", None, "correction_reason"),
        ("inspections", " ", "correction_reason"),
        ("inspections", "typo\nrm -rf", "correction_reason"),
        ("border_crossings", "typo", "no_key_to_correct"),
    ],
)
def test_a_correction_without_a_reason_or_a_key_is_refused(
    data: Path, tmp_path: Path, table: str, reason: str | None, rule: str
) -> None:
    before = hashes(data)
    file = write_csv(corrected_i3(), tmp_path / "fix.csv")
    result = ingest(data, file, table=table, correct=True, reason=reason, today=TODAY)
    assert [i.rule for i in result.report.errors] == [rule]
    assert hashes(data) == before


def test_a_refused_row_refuses_the_whole_correction(data: Path, tmp_path: Path) -> None:
    frame = corrected_i3()
    frame.loc[0, "action"] = "EXILE"  # I1 with an unknown action; I3's change alone is fine
    before = hashes(data)
    result = ingest(data, write_csv(frame, tmp_path / "fix.csv"), correct=True, reason="typo", today=TODAY)
    assert [(i.column, i.rule, i.rows) for i in result.report.errors] == [("action", "unknown_value", (1,))]
    assert hashes(data) == before


def test_a_correction_that_fails_while_writing_changes_nothing(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = write_csv(corrected_i3(), tmp_path / "fix.csv")

    def half_written(frame: pd.DataFrame, stem: Path, fmt: str) -> Path:
        stem.with_suffix(f".{fmt}").write_bytes(b"PAR1 half")
        raise OSError("disk full")

    def no_rename(source: Path, target: Path) -> None:
        raise OSError("rename refused")

    failures = [("write_frame", features.transaction, half_written, "disk full")]
    failures.append(("replace", features.transaction.os, no_rename, "rename refused"))  # after the log line
    for logged in (0, 1):  # with no ingest log yet, then with one line in it
        before = hashes(data)
        for name, where, broken, message in failures:
            with monkeypatch.context() as patch:
                patch.setattr(where, name, broken)
                with pytest.raises(OSError, match=message):
                    ingest(data, file, correct=True, reason="typo", today=TODAY)
            assert hashes(data) == before and not list(data.glob(f"{TEMP_PREFIX}*"))
            assert len(read_log(data)) == logged
        ingest(data, write_csv(NEW_PERSONS, tmp_path / "persons.csv"), table="persons", today=TODAY)


def test_a_corrected_outcome_shows_on_its_committed_list(data: Path, tmp_path: Path) -> None:
    template, _ = filled_template(data)
    assert ingest(data, write_csv(template, tmp_path / "outcomes.csv"), today=TODAY).added == 2
    lists = read_lists(data)
    assert read_outcomes(data, lists)[["visited", "found"]].values.tolist() == [[2, 1]]
    visit = tables(data).inspections.query("violation_found and trigger == 'LIST'").reset_index(drop=True)
    fix = visit.assign(violation_found=False, violation_type=None, action="NONE")
    result = ingest(
        data, write_csv(fix, tmp_path / "fix.csv"), correct=True, reason="no overstay", today=TODAY
    )
    assert result.ok and result.corrected == 1, result.report.render()
    assert read_outcomes(data, lists)[["visited", "found"]].values.tolist() == [[2, 0]]
    with_template = ingest(data, tmp_path / "outcomes.csv", correct=True, reason="again", today=TODAY)
    assert [i.rule for i in with_template.report.errors] == ["template_in_correction"]


# The command line.


def test_the_command_corrects_only_with_a_reason(data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    file = str(write_csv(corrected_i3(), tmp_path / "fix.csv"))
    base = ["ingest", str(data), file, "--today", TODAY.isoformat()]
    before = hashes(data)
    for extra in (["--correct"], ["--correct", "--reason", ""], ["--correct", "--reason", "a\x1b[31m"]):
        refused = runner.invoke(app, [*base, *extra])
        assert refused.exit_code == 2, (extra, refused.output)
        assert "reason" in refused.output
    assert runner.invoke(app, [*base, "--reason", "why"]).exit_code == 2  # a reason without --correct
    conflict = runner.invoke(app, base)  # without --correct: I3 is a conflict
    assert conflict.exit_code == 1 and "--correct" in conflict.output
    assert hashes(data) == before

    done = runner.invoke(app, [*base, "--correct", "--reason", "finding filed late"])
    assert done.exit_code == 0, done.output
    assert "corrected 1" in done.output and "1 rows already present, unchanged" in done.output
    assert read_log(data)[-1].reason == "finding filed late"
    persons = str(write_csv(NEW_PERSONS, tmp_path / "persons.csv"))
    added = runner.invoke(
        app, ["ingest", str(data), persons, "--table", "persons", "--today", TODAY.isoformat()]
    )
    assert added.exit_code == 0 and "persons: 2 rows" in added.output and "added 2" in added.output
