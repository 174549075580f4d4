"""Adding new rows to one table of a data set directory, or correcting rows: validated, idempotent, atomic.

`ingest` never raises for bad data: like `load_tables` it returns a report of
named issues, and writes nothing unless the file passes every check. A file is
read and coerced exactly as loading reads a table file, checked with the
table's rules, its foreign keys against the data set, its event dates against
`today`, and its keys against the rows already there; then the table with the
new rows appended passes the contract's validation before it replaces the old
file (temporary file in the same directory, fsync, `os.replace`), under an
exclusive lock on `<dir>/.ingest.lock`. Every accepted ingest appends one JSON
line to `<dir>/_ingest/log.jsonl` (loaders never open it). This module runs the
steps; the checks are in `features.ingest_checks`, the lock and the file writes
in `features.transaction`.

Decisions beyond the issue's text:
- Every required table takes additions: the event tables, and the registers
  `persons` and `sponsors` (new arrivals and new sponsors, by new ids). The
  optional `districts` table is reference data, written as a whole file
  (`not_ingestible`). Ingest is per table: new persons first, then their permits.
- "Dated after today" is about the table's event date (the date that places a
  row in time), a sponsor's registered_date, a person's birth_year (after
  today's year). Other dates may lie ahead by nature (a permit's expiry_date).
- A row's identity is the table's unique key where it has one. Tables without
  a key (border_crossings, address_reports, labour_violations) legitimately
  hold identical rows (two hotel reports of one person on one day), so they
  are compared as multisets: k identical rows in the file and m in the table
  add max(0, k - m). Re-ingesting stays idempotent; a genuinely new row that
  equals an existing one in every column cannot be told apart and is skipped.
- Values are compared after coercion to the contract (CSV "0.5" equals parquet
  0.5). An optional column absent from the file is null, so it conflicts with
  a value already set. A conflict's message says to use a correction.
- A correction (`correct=True`, with a `reason`) replaces rows by the table's
  key (`Table.key`: person_id, sponsor_id, permit_id, report_id,
  inspection_id); tables without a key (border_crossings, address_reports,
  labour_violations) cannot be corrected (`no_key_to_correct`): an identical
  row may legitimately occur twice, so no row can be named. Every key of the
  file must be in the table (`correction_of_missing_row`: a correction never
  adds); rows equal to the table's are unchanged; the others take the old rows'
  places (the table keeps its order). The file passes the same checks as an
  addition, and then the whole data set with the corrected table passes the
  contract's validation (a corrected birth year can break another table's
  rows). The reason must be set and printable (`correction_reason`). An outcomes
  template is refused (`template_in_correction`); a corrected LIST inspection
  is checked against its list only when its list columns change (a list
  superseded since the visit does not block correcting its outcome).
- The log line of a correction holds the reason and the replaced rows as they
  were (`old_rows`, JSON records in the contract's columns: dates as
  YYYY-MM-DD, nulls as null), so a correction can be undone by ingesting them
  back with `--correct`. It is written (fsynced) before the corrected table is
  renamed into place, so the old values are on disk before they leave the
  table; if the rename fails the line is taken back. A process killed between
  the two leaves a line whose `table_sha256_after` is not the table's hash:
  that correction did not land.
- Committed lists need nothing: a list's outcomes are read from the
  inspections table when asked (`features.lists.list_outcomes`), so a
  corrected outcome shows there at once; a list's own files never change.
- A file with a header but no data rows is valid and adds nothing; a file
  without even a header is unreadable.
- The table's existing file must hold no columns outside the contract:
  rewriting it would drop them (`extra_columns_in_table`).
- The table is rewritten as `write_tables` writes it (parquet dates as date32,
  identifiers as text), so stored types may change, never values.
- A dry run makes the same checks and writes nothing at all: no table, no lock
  file, no log line (its record is returned, with the table's hash after equal
  to before). It waits on the lock only if the lock file exists.
- Inspections with trigger `LIST` must match their committed list
  (`features.lists.check_list_rows`: list in force, person listed, same
  propensity); a mismatch is refused like any other error. A file with a
  `visited` column is an outcomes template (`timpora outcomes-template`): its
  visited rows are the inspections (template-only columns dropped), its
  unvisited rows are recorded on their list, after the table, under the same
  lock, counted in the log line (`not_visited_recorded`), never in the table.
- The log holds accepted ingests, including re-ingests that add nothing (the
  table file is then left untouched). Rejections change nothing and are not
  logged. The line is appended after the table is in place, so it never claims
  rows that are not there; a process killed between the two leaves the rows
  without a log line (a correction: see above).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.clock import utc_timestamp
from features.contract import TABLES_BY_NAME, Kind, Table
from features.ingest_checks import EVENT_TABLES, INGEST_TABLES, check_request, plan, reason_problem
from features.lists import append_not_visited
from features.settings import DEFAULT_DATASET
from features.transaction import (
    LOCK_FILE,
    LOG_DIR,
    LOG_FILE,
    TEMP_PREFIX,
    append_log,
    current_user,
    lock,
    log_path,
    remove_stale_temporaries,
    replace_table,
    sha256_file,
    truncate_log,
)
from features.validation import Issue, ValidationReport

__all__ = [
    "EVENT_TABLES",
    "INGEST_TABLES",
    "LOCK_FILE",
    "LOG_DIR",
    "LOG_FILE",
    "TEMP_PREFIX",
    "IngestRecord",
    "IngestResult",
    "ingest",
    "read_log",
    "reason_problem",
]


@dataclass(frozen=True)
class IngestRecord:
    """One line of the ingest log: who added what to which table, and the table before and after."""

    time: str  # UTC, ISO 8601
    user: str
    host: str
    table: str
    file: str
    file_sha256: str
    rows_in_file: int
    rows_added: int
    rows_already_present: int
    dry_run: bool
    table_sha256_before: str
    table_sha256_after: str
    not_visited_recorded: int = 0  # listed cases of an outcomes template recorded as not inspected
    correction: bool = False  # rows replaced by key rather than added
    reason: str | None = None  # why, for a correction
    rows_corrected: int = 0
    old_rows: list[dict[str, Any]] = field(
        default_factory=list
    )  # a correction: the replaced rows as they were

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=False)


@dataclass(frozen=True)
class IngestResult:
    """What an ingest did (or, for a dry run or a rejection, would have done)."""

    table: str
    file: Path
    rows_in_file: int
    added: int
    unchanged: int  # rows of the file already present with identical content
    report: ValidationReport
    written: bool  # the table file was replaced
    record: IngestRecord | None  # None when rejected
    not_visited: int = 0  # outcomes-template rows marked not visited (recorded on their list, not added)
    corrected: int = 0  # a correction: rows replaced by key

    @property
    def ok(self) -> bool:
        return self.report.ok


def ingest(
    directory: Path,
    file: Path,
    table: str = "inspections",
    dry_run: bool = False,
    today: dt.date | None = None,
    correct: bool = False,
    reason: str | None = None,
    old_date_year: int = DEFAULT_DATASET.old_date_year,
) -> IngestResult:
    """Validate `file` as new rows of `table` and append those not already in the data set.

    With `correct` (and a `reason`), the file's rows replace the rows of the
    same key instead, and the log line keeps the replaced rows. Returns a result
    whose report names every problem; nothing is written unless it is free of
    errors. Raises only for I/O failures (e.g. a read-only directory).
    """
    directory, file = Path(directory), Path(file)
    today = today or dt.date.today()
    issues = check_request(directory, file, table, correct, reason)
    if issues:
        return _rejected(table, file, issues, 0)
    spec = TABLES_BY_NAME[table]
    with lock(directory, exclusive=not dry_run):
        if not dry_run:
            remove_stale_temporaries(directory)
        planned = plan(directory, file, spec, today, correct, old_date_year)
        if not planned.report.ok:
            return _rejected(table, file, planned.report.issues, planned.rows_in_file)
        before = sha256_file(planned.path)
        file_sha256 = sha256_file(file)

        def record_for(after: str, recorded: int = 0) -> IngestRecord:
            return IngestRecord(
                time=utc_timestamp(),
                user=current_user(),
                host=socket.gethostname(),
                table=table,
                file=str(file.resolve()),
                file_sha256=file_sha256,
                rows_in_file=planned.rows_in_file,
                rows_added=planned.added,
                rows_already_present=planned.unchanged,
                dry_run=dry_run,
                table_sha256_before=before,
                table_sha256_after=after,
                not_visited_recorded=recorded,
                correction=correct,
                reason=reason.strip() if correct and reason else None,
                rows_corrected=planned.corrected,
                old_rows=[] if planned.replaced is None else json_records(spec, planned.replaced),
            )

        if dry_run:
            record = record_for(before)
        elif correct:
            record = _replace_logged(directory, planned.path, planned.combined, record_for, before)
        else:
            after = before if planned.combined is None else replace_table(planned.path, planned.combined)
            recorded = 0
            if planned.not_visited is not None:
                recorded = append_not_visited(directory, planned.not_visited, file_sha256)
            record = record_for(after, recorded)
            append_log(directory, record.to_json())
    not_visited = 0 if planned.not_visited is None else len(planned.not_visited)
    return IngestResult(
        table,
        file,
        planned.rows_in_file,
        planned.added,
        planned.unchanged,
        planned.report,
        not dry_run and planned.combined is not None,
        record,
        not_visited,
        planned.corrected,
    )


def _replace_logged(
    directory: Path,
    path: Path,
    combined: pd.DataFrame | None,
    record_for: Callable[[str], IngestRecord],
    before: str,
) -> IngestRecord:
    """A correction's write: the log line (with the replaced rows) on disk first, then the table.

    The line is appended once the new table file is written and fsynced (its
    hash known), before the rename; if the rename fails, the line is cut off
    again. A correction that changes nothing leaves the table alone and logs.
    """
    if combined is None:
        record = record_for(before)
        append_log(directory, record.to_json())
        return record
    logged: list[tuple[IngestRecord, int]] = []

    def log(after: str) -> None:
        record = record_for(after)
        logged.append((record, append_log(directory, record.to_json())))

    try:
        replace_table(path, combined, before_replace=log)
    except BaseException:
        if logged:
            truncate_log(directory, logged[0][1])
        raise
    return logged[0][0]


def json_records(spec: Table, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of `spec` as JSON-ready records: dates as YYYY-MM-DD, nulls as None, numbers exact.

    What a correction's log line keeps of the rows it replaced; written back as a
    CSV or parquet file, the records read as the same rows.
    """
    columns: dict[str, list[Any]] = {}
    for col in spec.columns:
        values = frame[col.name]
        if col.kind == Kind.DATE:
            values = values.dt.strftime("%Y-%m-%d")
        present = values.notna().to_numpy(dtype=bool)
        items = values.astype(object).tolist()
        columns[col.name] = [_plain(v) if ok else None for v, ok in zip(items, present, strict=True)]
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON writes (a float's repr is exact)."""
    return value.item() if hasattr(value, "item") else value


def read_log(directory: Path) -> list[IngestRecord]:
    """The ingest log of a data set, oldest first (empty if nothing was ingested)."""
    path = log_path(Path(directory))
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [IngestRecord(**json.loads(line)) for line in lines if line.strip()]


def _rejected(table: str, file: Path, issues: list[Issue], rows: int) -> IngestResult:
    report = ValidationReport(issues, {table: rows} if rows else {})
    return IngestResult(table, file, rows, 0, 0, report, False, None)
