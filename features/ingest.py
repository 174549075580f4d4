"""Adding new rows to one event table of a data set directory: validated, idempotent, atomic.

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
- Only event tables (those with an event date) take additions. `persons` and
  `sponsors` are refused (`not_an_event_table`): they have no event date, so
  "nothing dated after today" cannot be checked, and a changed row there is a
  correction of the register, not an addition; a new register comes as a new
  data set export.
- "Dated after today" is about the table's event date (the date that places a
  row in time). Other dates may lie ahead by nature (a permit's expiry_date).
- A row's identity is the table's unique key where it has one. Tables without
  a key (border_crossings, address_reports, labour_violations) legitimately
  hold identical rows (two hotel reports of one person on one day), so they
  are compared as multisets: k identical rows in the file and m in the table
  add max(0, k - m). Re-ingesting stays idempotent; a genuinely new row that
  equals an existing one in every column cannot be told apart and is skipped.
- Values are compared after coercion to the contract (CSV "0.5" equals parquet
  0.5). An optional column absent from the file is null, so it conflicts with
  a value already set.
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
  without a log line.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from features.clock import utc_timestamp
from features.contract import TABLES_BY_NAME
from features.ingest_checks import EVENT_TABLES, check_request, plan
from features.lists import append_not_visited
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
)
from features.validation import Issue, ValidationReport

__all__ = [
    "EVENT_TABLES",
    "LOCK_FILE",
    "LOG_DIR",
    "LOG_FILE",
    "TEMP_PREFIX",
    "IngestRecord",
    "IngestResult",
    "ingest",
    "read_log",
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

    @property
    def ok(self) -> bool:
        return self.report.ok


def ingest(
    directory: Path,
    file: Path,
    table: str = "inspections",
    dry_run: bool = False,
    today: dt.date | None = None,
) -> IngestResult:
    """Validate `file` as new rows of `table` and append those not already in the data set.

    Returns a result whose report names every problem; nothing is written unless
    it is free of errors. Raises only for I/O failures (e.g. a read-only directory).
    """
    directory, file = Path(directory), Path(file)
    today = today or dt.date.today()
    issues = check_request(directory, file, table)
    if issues:
        return _rejected(table, file, issues, 0)
    spec = TABLES_BY_NAME[table]
    with lock(directory, exclusive=not dry_run):
        if not dry_run:
            remove_stale_temporaries(directory)
        planned = plan(directory, file, spec, today)
        if not planned.report.ok:
            return _rejected(table, file, planned.report.issues, planned.rows_in_file)
        before = sha256_file(planned.path)
        after = before
        written = False
        if planned.combined is not None and not dry_run:
            after = replace_table(planned.path, planned.combined)
            written = True
        file_sha256 = sha256_file(file)
        recorded = 0
        if planned.not_visited is not None and not dry_run:
            recorded = append_not_visited(directory, planned.not_visited, file_sha256)
        record = IngestRecord(
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
        )
        if not dry_run:
            append_log(directory, record.to_json())
    not_visited = 0 if planned.not_visited is None else len(planned.not_visited)
    return IngestResult(
        table,
        file,
        planned.rows_in_file,
        planned.added,
        planned.unchanged,
        planned.report,
        written,
        record,
        not_visited,
    )


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
