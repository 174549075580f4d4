"""Ingest: new rows join an event table only when every check passes, once, and atomically.

The tiny hand-built world (tests/tiny_world.py) is written to a temporary
directory; each bad file breaks one rule and must leave every table file
byte-identical with no log line. Good files must read back exactly, re-ingests
must add nothing, and a real `timpora ingest` killed while writing must leave
the table readable, either as it was or complete.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_world import tiny_tables
from typer.testing import CliRunner

from features.contract import TABLES_BY_NAME
from features.ingest import LOCK_FILE, LOG_DIR, LOG_FILE, TEMP_PREFIX, ingest, read_log
from features.loading import load_tables
from features.tables import make_tables, typed_frame, write_tables
from timpora.cli import app

TODAY = dt.date(2024, 12, 31)
INSPECTION_COLUMNS = list(TABLES_BY_NAME["inspections"].column_names)


def new_inspections() -> pd.DataFrame:
    """Three valid new inspections of the tiny world, dated after its last date and before TODAY."""
    return pd.DataFrame(
        {
            "inspection_id": ["N1", "N2", "N3"],
            "person_id": ["P1", "P2", "P6"],
            "sponsor_id": ["S1", None, None],
            "inspection_date": ["2024-10-01", "2024-10-15", "2024-12-31"],
            "trigger": ["ROUTINE", "RANDOM", "TIP"],
            "violation_found": [False, True, False],
            "violation_type": [None, "OVERSTAY", None],
            "action": ["NONE", "DEPORTATION", "WARNING"],
            "selection_propensity": [None, 0.125, None],
        }
    )


def write_file(frame: pd.DataFrame, path: Path) -> Path:
    """A CSV as text (empty cell = null) or parquet with date32 dates, like an export would be."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        out = frame.copy()
        for name in out.columns:
            if name.endswith("_date"):
                out[name] = pd.to_datetime(out[name]).dt.date
        out.to_parquet(path, index=False)
    return path


def table_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every table file (the lock file, an empty marker, is not data)."""
    files = [p for p in sorted(directory.iterdir()) if p.is_file() and not p.name.startswith(".")]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def log_path(directory: Path) -> Path:
    return directory / LOG_DIR / LOG_FILE


@pytest.fixture
def data(tmp_path: Path) -> Path:
    out = tmp_path / "data"
    write_tables(tiny_tables(), out, "parquet")
    return out


# Rejections: each bad file names its rule and writes nothing.


def _edit(change: Callable[[pd.DataFrame], None]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        frame = new_inspections()
        change(frame)
        return write_file(frame, folder / "new.csv")

    return make


def _set(column: str, row: int, value: object) -> Callable[[Path], Path]:
    def change(frame: pd.DataFrame) -> None:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value

    return _edit(change)


def _bytes(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content)
        return path

    return make


def _drop_trigger(frame: pd.DataFrame) -> None:
    del frame["trigger"]


def _duplicate_key(frame: pd.DataFrame) -> None:
    frame.loc[2, "inspection_id"] = "N1"


def _conflict(frame: pd.DataFrame) -> None:
    # I3 exists (P1, S1, 2024-05-01, ROUTINE, no violation, action NONE): same id, other outcome.
    frame.loc[0, ["inspection_id", "inspection_date", "action"]] = ["I3", "2024-05-01", "WARNING"]


BAD_FILES: dict[str, tuple[Callable[[Path], Path], str, str | None]] = {
    # case: (make the file, rule, column)
    "missing column": (_edit(_drop_trigger), "missing_column", "trigger"),
    "wrong type": (_set("violation_found", 1, "perhaps"), "wrong_type", "violation_found"),
    "unparseable date": (_set("inspection_date", 0, "2024-13-45"), "unparseable_date", "inspection_date"),
    "unknown enum value": (_set("trigger", 2, "HUNCH"), "unknown_value", "trigger"),
    "null in a required column": (_set("person_id", 1, None), "null_value", "person_id"),
    "dangling person_id": (_set("person_id", 0, "P99"), "dangling_reference", "person_id"),
    "dangling sponsor_id": (_set("sponsor_id", 1, "S9"), "dangling_reference", "sponsor_id"),
    "future date": (_set("inspection_date", 2, "2025-01-01"), "future_date", "inspection_date"),
    "duplicate key in the file": (_edit(_duplicate_key), "duplicate_id", "inspection_id"),
    "conflict with an existing row": (_edit(_conflict), "conflict", "action"),
    "out of range": (_set("selection_propensity", 0, 0.0), "out_of_range", "selection_propensity"),
    "empty file": (_bytes("new.csv", b""), "unreadable_file", None),
    "not csv or parquet": (_bytes("new.xlsx", b"PK\x03\x04"), "unsupported_format", None),
    "broken parquet": (_bytes("new.parquet", b"PAR1 not really"), "unreadable_file", None),
    "missing file": (lambda folder: folder / "absent.csv", "missing_file", None),
}


def assert_nothing_written(data: Path, before: dict[str, str]) -> None:
    assert table_hashes(data) == before
    assert not log_path(data).exists()
    assert not list(data.glob(f"{TEMP_PREFIX}*"))


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_rejected_and_nothing_is_written(data: Path, tmp_path: Path, case: str) -> None:
    make, rule, column = BAD_FILES[case]
    file = make(tmp_path)
    before = table_hashes(data)
    result = ingest(data, file, today=TODAY)
    assert not result.ok
    assert (result.written, result.added, result.record) == (False, 0, None)
    errors = {(i.rule, i.column) for i in result.report.errors}
    assert (rule, column) in errors, result.report.render()
    assert_nothing_written(data, before)


def test_errors_name_the_rows_of_the_file(data: Path, tmp_path: Path) -> None:
    frame = new_inspections()
    frame.loc[[0, 2], "person_id"] = ["P98", "P99"]
    result = ingest(data, write_file(frame, tmp_path / "new.csv"), today=TODAY)
    [issue] = result.report.errors
    assert (issue.table, issue.column, issue.rule, issue.rows, issue.count) == (
        "inspections",
        "person_id",
        "dangling_reference",
        (1, 3),
        2,
    )
    assert "'P98'" in issue.message and "'P99'" in issue.message


def test_a_conflict_names_the_ids_and_the_columns_that_differ(data: Path, tmp_path: Path) -> None:
    frame = new_inspections()
    _conflict(frame)
    frame.loc[1, ["inspection_id", "inspection_date", "trigger"]] = ["I1", "2024-02-15", "TARGETED"]
    frame.loc[1, ["person_id", "violation_found", "violation_type", "action"]] = ["P2", False, None, "NONE"]
    frame.loc[1, "selection_propensity"] = None  # I1 exactly as it is: not a conflict
    result = ingest(data, write_file(frame, tmp_path / "new.csv"), today=TODAY)
    conflicts = [i for i in result.report.errors if i.rule == "conflict"]
    assert [(i.column, i.rows) for i in conflicts] == [("action", (1,))]
    assert "I3: 'NONE' -> 'WARNING'" in conflicts[0].message


@pytest.mark.parametrize(("table", "rule"), [("nonsense", "unknown_table"), ("districts", "not_ingestible")])
def test_only_the_required_tables_take_rows(data: Path, tmp_path: Path, table: str, rule: str) -> None:
    # persons and sponsors take new ids: tests/test_ingest_more.py
    file = write_file(tiny_tables()[table if table != "nonsense" else "persons"].head(1), tmp_path / "x.csv")
    before = table_hashes(data)
    result = ingest(data, file, table=table, today=TODAY)
    assert [i.rule for i in result.report.errors] == [rule]
    assert_nothing_written(data, before)


def test_an_invalid_data_set_takes_no_rows(data: Path, tmp_path: Path) -> None:
    (data / "persons.parquet").unlink()
    before = table_hashes(data)
    result = ingest(data, write_file(new_inspections(), tmp_path / "new.csv"), today=TODAY)
    rules = [i.rule for i in result.report.errors]
    assert rules[:2] == ["invalid_data_set", "missing_file"]
    assert_nothing_written(data, before)


def test_a_table_file_with_extra_columns_is_not_rewritten(data: Path, tmp_path: Path) -> None:
    inspections = tiny_tables().inspections.assign(note="kept by the office")
    inspections.to_parquet(data / "inspections.parquet", index=False)
    before = table_hashes(data)
    result = ingest(data, write_file(new_inspections(), tmp_path / "new.csv"), today=TODAY)
    assert [i.rule for i in result.report.errors] == ["extra_columns_in_table"]
    assert "note" in result.report.errors[0].message
    assert_nothing_written(data, before)


# Good files.


@pytest.mark.parametrize("table_format", ["parquet", "csv"])
@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_a_good_file_adds_its_rows_exactly(tmp_path: Path, table_format: str, file_format: str) -> None:
    data = tmp_path / "data"
    write_tables(tiny_tables(), data, table_format)  # type: ignore[arg-type]
    old = load_tables(data).tables
    assert old is not None
    file = write_file(new_inspections(), tmp_path / f"new.{file_format}")
    table_file = data / f"inspections.{table_format}"
    before = hashlib.sha256(table_file.read_bytes()).hexdigest()

    result = ingest(data, file, today=TODAY)

    assert result.ok, result.report.render()
    assert (result.rows_in_file, result.added, result.unchanged, result.written) == (3, 3, 0, True)
    assert sorted(p.name for p in data.iterdir() if p.is_file()) == sorted(
        [f"{name}.{table_format}" for name, _ in old.items()] + [LOCK_FILE]
    )
    loaded = load_tables(data)
    assert loaded.tables is not None and loaded.report.ok and not loaded.report.warnings
    inspections = loaded.tables.inspections
    expected = typed_frame(TABLES_BY_NAME["inspections"], new_inspections())
    pd.testing.assert_frame_equal(inspections.iloc[len(old.inspections) :].reset_index(drop=True), expected)
    pd.testing.assert_frame_equal(inspections.iloc[: len(old.inspections)], old.inspections)
    for name, frame in old.items():
        if name != "inspections":
            pd.testing.assert_frame_equal(loaded.tables[name], frame)

    [record] = read_log(data)
    after = hashlib.sha256(table_file.read_bytes()).hexdigest()
    assert record == result.record
    assert (record.table, record.rows_in_file, record.rows_added, record.rows_already_present) == (
        "inspections",
        3,
        3,
        0,
    )
    assert (record.table_sha256_before, record.table_sha256_after) == (before, after)
    assert record.file_sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    assert record.file == str(file.resolve()) and not record.dry_run and record.user and record.host
    assert dt.datetime.fromisoformat(record.time).utcoffset() == dt.timedelta(0)


def test_reingesting_adds_nothing_and_leaves_tables_byte_identical(data: Path, tmp_path: Path) -> None:
    file = write_file(new_inspections(), tmp_path / "new.csv")
    assert ingest(data, file, today=TODAY).added == 3
    after_first = table_hashes(data)
    again = ingest(data, file, today=TODAY)
    assert again.ok and (again.added, again.unchanged, again.written) == (0, 3, False)
    assert table_hashes(data) == after_first
    records = read_log(data)
    assert len(records) == 2
    assert records[1].rows_added == 0 and records[1].rows_already_present == 3
    assert records[1].table_sha256_before == records[1].table_sha256_after


def test_a_file_mixing_present_and_new_rows_adds_only_the_new(data: Path, tmp_path: Path) -> None:
    ingest(data, write_file(new_inspections().head(2), tmp_path / "first.csv"), today=TODAY)
    # The two rows just added and I1 of the original table, exactly as they are, plus N3.
    original = tiny_tables().inspections.head(1)
    original = original.assign(inspection_date=original["inspection_date"].dt.strftime("%Y-%m-%d"))
    mixed = pd.concat([original, new_inspections()], ignore_index=True)
    result = ingest(data, write_file(mixed, tmp_path / "mixed.parquet"), today=TODAY)
    assert result.ok, result.report.render()
    assert (result.rows_in_file, result.added, result.unchanged) == (4, 1, 3)
    tables = load_tables(data).tables
    assert tables is not None
    ids = [*(f"I{i}" for i in range(1, 7)), "N1", "N2", "N3"]
    assert tables.inspections["inspection_id"].tolist() == ids


def test_rows_of_a_table_without_a_key_count_as_a_multiset(data: Path, tmp_path: Path) -> None:
    # The tiny world holds this address report once; the file holds it twice, plus a new one.
    rows = pd.DataFrame(
        {
            "person_id": ["P1", "P1", "P6"],
            "report_date": ["2024-01-05", "2024-01-05", "2024-11-01"],
            "district": ["3171", "3171", "3578"],
            "reporter": ["HOTEL", "HOTEL", "SELF"],
        }
    )
    file = write_file(rows, tmp_path / "addresses.csv")
    first = ingest(data, file, table="address_reports", today=TODAY)
    assert first.ok and (first.added, first.unchanged) == (2, 1)
    again = ingest(data, file, table="address_reports", today=TODAY)
    assert again.ok and (again.added, again.unchanged, again.written) == (0, 3, False)
    tables = load_tables(data).tables
    assert tables is not None
    reports = tables.address_reports
    assert len(reports) == 7
    assert ((reports["person_id"] == "P1") & (reports["district"] == "3171")).sum() == 2


GOOD_ROWS: dict[str, dict[str, list[object]]] = {
    "permits": {
        "permit_id": ["PM11"],
        "person_id": ["P2"],
        "sponsor_id": [None],
        "permit_type": ["VISIT"],
        "position": [None],
        "work_district": [None],
        "issue_date": ["2024-12-01"],
        "expiry_date": ["2025-02-28"],  # after today: an expiry date may be
        "cancelled_date": [None],
    },
    "border_crossings": {
        "person_id": ["P2"],
        "crossing_date": ["2024-11-30"],
        "direction": ["OUT"],
        "port": ["DPS"],
    },
    "agency_reports": {
        "report_id": ["AR5"],
        "report_date": ["2024-11-02"],
        "agency": ["PUBLIC"],
        "person_id": [None],
        "sponsor_id": ["S2"],
        "category": ["ILLEGAL_WORK"],
    },
    "labour_violations": {"sponsor_id": ["S2"], "finding_date": ["2024-12-10"], "violation": ["OTHER"]},
}


@pytest.mark.parametrize("table", list(GOOD_ROWS))
def test_every_event_table_takes_rows(data: Path, tmp_path: Path, table: str) -> None:
    rows = pd.DataFrame(GOOD_ROWS[table])
    result = ingest(data, write_file(rows, tmp_path / "rows.csv"), table=table, today=TODAY)
    assert result.ok and result.added == 1, result.report.render()
    tables = load_tables(data).tables
    assert tables is not None
    expected = typed_frame(TABLES_BY_NAME[table], rows)
    pd.testing.assert_frame_equal(tables[table].tail(1).reset_index(drop=True), expected)
    # Dated after today: rejected for every table alike.
    late = rows.assign(**{TABLES_BY_NAME[table].event_date or "": ["2025-01-01"]})
    rejected = ingest(data, write_file(late, tmp_path / "late.csv"), table=table, today=TODAY)
    assert [i.rule for i in rejected.report.errors] == ["future_date"]


def test_a_header_only_file_adds_nothing(data: Path, tmp_path: Path) -> None:
    before = table_hashes(data)
    result = ingest(data, write_file(new_inspections().head(0), tmp_path / "none.csv"), today=TODAY)
    assert result.ok and (result.rows_in_file, result.added, result.written) == (0, 0, False)
    assert table_hashes(data) == before


def test_today_defaults_to_the_system_date(data: Path, tmp_path: Path) -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    frame = new_inspections().assign(inspection_date=tomorrow.isoformat())
    result = ingest(data, write_file(frame, tmp_path / "new.csv"))
    assert [i.rule for i in result.report.errors] == ["future_date"]


def test_a_dry_run_writes_nothing(data: Path, tmp_path: Path) -> None:
    before = table_hashes(data)
    result = ingest(data, write_file(new_inspections(), tmp_path / "new.csv"), dry_run=True, today=TODAY)
    assert result.ok and (result.added, result.written) == (3, False)
    assert result.record is not None and result.record.dry_run
    assert result.record.table_sha256_before == result.record.table_sha256_after
    assert_nothing_written(data, before)
    assert not (data / LOCK_FILE).exists()


# Concurrency and crashes.


def test_a_second_ingest_waits_for_the_lock(data: Path, tmp_path: Path) -> None:
    file = write_file(new_inspections(), tmp_path / "new.csv")
    before = table_hashes(data)
    with (data / LOCK_FILE).open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another ingest is running
        results = []
        worker = threading.Thread(target=lambda: results.append(ingest(data, file, today=TODAY)))
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive() and table_hashes(data) == before
    worker.join(timeout=30)
    assert results[0].ok and results[0].added == 3


def test_a_leftover_temporary_file_is_never_read_and_is_removed(data: Path, tmp_path: Path) -> None:
    leftover = data / f"{TEMP_PREFIX}inspections.parquet"
    leftover.write_bytes(b"PAR1 half written")
    assert load_tables(data).report.ok
    assert ingest(data, write_file(new_inspections(), tmp_path / "new.csv"), today=TODAY).ok
    assert not leftover.exists()


def _big_world(directory: Path, rows: int) -> pd.DataFrame:
    """The tiny world with `rows` inspections, written as CSV (slow to write: a wide window to kill in)."""
    tiny = tiny_tables()
    rng = np.random.default_rng(5)
    found = rng.random(rows) < 0.1
    inspections = pd.DataFrame(
        {
            "inspection_id": pd.Series(np.arange(rows)).map("B{:07d}".format),
            "person_id": rng.choice(tiny.persons["person_id"].to_numpy(), rows),
            "sponsor_id": None,
            "inspection_date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), "D"),
            "trigger": rng.choice(["RANDOM", "TARGETED", "TIP", "ROUTINE"], rows),
            "violation_found": found,
            "violation_type": np.where(found, "OVERSTAY", None),
            "action": np.where(found, "FINE", "NONE"),
            "selection_propensity": rng.uniform(0.01, 1.0, rows).round(6),
        }
    )
    tables = make_tables({**dict(tiny.items()), "inspections": inspections})
    write_tables(tables, directory, "csv")
    return tables.inspections


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def test_a_killed_ingest_leaves_the_table_as_it_was_or_complete(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = _big_world(data, 120_000)
    file = write_file(new_inspections(), tmp_path / "new.csv")
    temporary = data / f"{TEMP_PREFIX}inspections.csv"
    timpora = Path(sys.executable).parent / "timpora"
    command = [str(timpora), "ingest", str(data), str(file), "--today", TODAY.isoformat()]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _size(temporary) <= 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)  # until the new table is partly written
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL, "the ingest ended before it could be killed"
    killed_mid_write = temporary.exists()

    loaded = load_tables(data)
    assert loaded.tables is not None, loaded.report.render()
    inspections = loaded.tables.inspections
    new = typed_frame(TABLES_BY_NAME["inspections"], new_inspections())
    complete = pd.concat([old, new], ignore_index=True)
    if killed_mid_write:  # the usual case: the new file never got the table's name
        pd.testing.assert_frame_equal(inspections, old)
    else:
        assert len(inspections) in (len(old), len(complete))
        pd.testing.assert_frame_equal(inspections, old if len(inspections) == len(old) else complete)

    again = ingest(data, file, today=TODAY)
    assert again.ok and again.added == 3 and not temporary.exists()
    tables = load_tables(data).tables
    assert tables is not None
    pd.testing.assert_frame_equal(tables.inspections, complete)


# The command line.


def test_the_command_reports_rejections_and_additions(data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = new_inspections()
    bad.loc[0, "person_id"] = "P99"
    args = ["ingest", str(data), str(write_file(bad, tmp_path / "bad.csv")), "--today", TODAY.isoformat()]
    rejected = runner.invoke(app, args)
    assert rejected.exit_code == 1
    assert "ERROR inspections.person_id [dangling_reference]" in rejected.output
    assert "nothing was written" in " ".join(rejected.output.split())  # rich wraps the error line

    good = str(write_file(new_inspections(), tmp_path / "good.csv"))
    dry = runner.invoke(app, ["ingest", str(data), good, "--dry-run", "--today", TODAY.isoformat()])
    assert dry.exit_code == 0 and "would add 3" in dry.output and "dry run: nothing written" in dry.output
    added = runner.invoke(app, ["ingest", str(data), good, "--today", TODAY.isoformat()])
    assert added.exit_code == 0 and "added 3" in added.output
    again = runner.invoke(app, ["ingest", str(data), good, "--today", TODAY.isoformat()])
    assert again.exit_code == 0
    assert "added 0" in again.output and "3 rows already present, unchanged" in again.output

    bad_date = runner.invoke(app, ["ingest", str(data), good, "--today", "31/12/2024"])
    assert bad_date.exit_code == 2


# Outcomes of a committed list: the template round-trips; LIST rows must match their list.


def committed_list(data: Path):  # type: ignore[no-untyped-def]
    """A list of 3 of the tiny world's 5 cases as of its T: 2 model picks and 1 exploration draw."""
    from features.lists import commit_list
    from models.listing import ExplorationDesign, draw_inspection_list

    persons = ["P1", "P2", "P3", "P4", "P6"]
    ranked = pd.DataFrame(
        {"score": [0.5, 0.4, 0.3, 0.2, 0.1], "rank": [1, 2, 3, 4, 5]},
        index=pd.Index(persons, name="person_id"),
    )
    design = ExplorationDesign(share=1 / 3)
    draw = draw_inspection_list(ranked, 3, design, seed=4)
    scope: dict[str, object] = {"district": None, "permit_types": []}
    return commit_list(
        data, draw, as_of=dt.date(2024, 6, 30), scope=scope, k=3, model_version="1", design=design, seed=4
    )


def filled_template(data: Path) -> tuple[pd.DataFrame, object]:
    """The list's template, the first two cases visited (one violation), the third not visited."""
    from features.lists import outcomes_template

    committed = committed_list(data)
    template = outcomes_template(committed, tiny_tables().permits).astype(object)
    template.loc[0:1, "visited"] = "true"
    template.loc[0:1, "inspection_date"] = ["2024-07-03", "2024-07-04"]
    template.loc[0:1, "violation_found"] = [True, False]
    template.loc[0, "violation_type"] = "OVERSTAY"
    template.loc[0:1, "action"] = ["DEPORTATION", "NONE"]
    template.loc[2, ["visited", "not_visited_reason"]] = ["false", "moved away"]
    return template, committed


def test_a_filled_outcomes_template_round_trips(data: Path, tmp_path: Path) -> None:
    from features.lists import read_list

    template, committed = filled_template(data)
    file = write_file(template, tmp_path / "outcomes.csv")
    result = ingest(data, file, today=TODAY)
    assert result.ok, result.report.render()
    assert (result.added, result.not_visited) == (2, 1)
    assert not [i for i in result.report.warnings if i.column in ("visited", "not_visited_reason")]
    inspections = load_tables(data).tables.inspections  # type: ignore[union-attr]
    new = inspections[inspections["trigger"] == "LIST"].reset_index(drop=True)
    assert new["inspection_id"].tolist() == template["inspection_id"].iloc[:2].tolist()
    assert (new["list_id"] == committed.list_id).all()  # type: ignore[attr-defined]
    assert new["selection_propensity"].tolist() == template["selection_propensity"].iloc[:2].tolist()
    assert new["violation_found"].tolist() == [True, False] and "visited" not in inspections
    listed = read_list(data, committed.list_id)  # type: ignore[attr-defined]
    assert listed.not_visited[["person_id", "reason"]].values.tolist() == [
        [template["person_id"][2], "moved away"]
    ]
    assert read_log(data)[-1].not_visited_recorded == 1

    before = table_hashes(data)
    again = ingest(data, file, today=TODAY)  # idempotent: nothing added, nothing recorded twice
    assert again.ok and (again.added, again.unchanged, again.not_visited) == (0, 2, 1)
    assert table_hashes(data) == before and read_log(data)[-1].not_visited_recorded == 0
    assert len(read_list(data, committed.list_id).not_visited) == 1  # type: ignore[attr-defined]


def test_a_template_row_without_visited_or_with_an_outcome_while_not_visited_is_refused(
    data: Path, tmp_path: Path
) -> None:
    template, _ = filled_template(data)
    template.loc[1, "visited"] = None
    template.loc[2, "inspection_date"] = "2024-07-05"
    before = table_hashes(data)
    result = ingest(data, write_file(template, tmp_path / "outcomes.csv"), today=TODAY)
    rules = {(i.rule, i.rows) for i in result.report.errors}
    assert ("template_visited", (2,)) in rules and ("template_not_visited_with_outcome", (3,)) in rules
    assert_nothing_written(data, before)


def _wrong_propensity(template: pd.DataFrame, committed: object) -> None:
    template.loc[1, "selection_propensity"] = 0.25


def _not_on_list(template: pd.DataFrame, committed: object) -> None:
    listed = set(template["person_id"])
    template.loc[1, "person_id"] = next(p for p in ["P1", "P2", "P3", "P4", "P6"] if p not in listed)


def _unknown_list(template: pd.DataFrame, committed: object) -> None:
    template.loc[1, "list_id"] = "L-2024-06-30-00000000"


@pytest.mark.parametrize(
    ("change", "rule", "column"),
    [
        (_wrong_propensity, "list_propensity_mismatch", "selection_propensity"),
        (_not_on_list, "not_on_list", "person_id"),
        (_unknown_list, "unknown_list", "list_id"),
    ],
)
def test_a_list_row_that_does_not_match_its_list_is_refused(
    data: Path, tmp_path: Path, change: Callable[[pd.DataFrame, object], None], rule: str, column: str
) -> None:
    template, committed = filled_template(data)
    template = template.iloc[:2].drop(columns=["visited", "not_visited_reason"])  # a plain inspections file
    change(template, committed)
    before = table_hashes(data)
    result = ingest(data, write_file(template, tmp_path / "outcomes.csv"), today=TODAY)
    assert not result.ok
    [error] = result.report.errors
    assert (error.table, error.column, error.rule, error.rows) == ("inspections", column, rule, (2,))
    assert_nothing_written(data, before)


def test_the_commands_write_the_template_and_show_the_lists(data: Path, tmp_path: Path) -> None:
    committed = committed_list(data)
    runner = CliRunner()
    out = tmp_path / "template.csv"
    written = runner.invoke(app, ["outcomes-template", str(data), committed.list_id, "--out", str(out)])
    assert written.exit_code == 0, written.output
    template = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert template.columns.tolist()[-2:] == ["visited", "not_visited_reason"] and len(template) == 3
    sponsors = {"P1": "S1", "P2": "", "P3": "S1", "P4": "S1", "P6": ""}  # latest permit issued by T
    assert template["sponsor_id"].tolist() == [sponsors[p] for p in template["person_id"]]
    template["visited"] = ["true", "true", "false"]
    template.loc[0:1, "inspection_date"] = "2024-07-03"
    template.loc[0:1, ["violation_found", "action"]] = ["false", "NONE"]
    template.loc[2, "not_visited_reason"] = "left the country"
    template.to_csv(out, index=False)
    added = runner.invoke(app, ["ingest", str(data), str(out), "--today", TODAY.isoformat()])
    assert added.exit_code == 0 and "added 2" in added.output, added.output
    shown = runner.invoke(app, ["lists", str(data)])
    assert shown.exit_code == 0, shown.output
    line = next(row for row in shown.output.splitlines() if row.startswith(committed.list_id))
    assert line.split()[-4:-1] == ["2", "0", "1"]  # visited, found, not visited
    unknown = runner.invoke(app, ["outcomes-template", str(data), "L-2024-01-01-00000000", "--out", str(out)])
    assert unknown.exit_code == 1 and "no committed list" in unknown.output
