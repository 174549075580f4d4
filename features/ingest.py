"""Adding new rows to one event table of a data set directory: validated, idempotent, atomic.

`ingest` never raises for bad data: like `load_tables` it returns a report of
named issues, and writes nothing unless the file passes every check. A file is
read and coerced exactly as loading reads a table file, checked with the
table's rules, its foreign keys against the data set, its event dates against
`today`, and its keys against the rows already there; then the table with the
new rows appended passes the contract's validation before it replaces the old
file (temporary file in the same directory, fsync, `os.replace`), under an
exclusive lock on `<dir>/.ingest.lock`. Every accepted ingest appends one JSON
line to `<dir>/_ingest/log.jsonl` (loaders never open it).

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
import fcntl
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features.contract import TABLE_NAMES, TABLES, TABLES_BY_NAME, Table
from features.loading import FORMATS, load_table_file, load_tables
from features.tables import FileFormat, Tables, _write_frame
from features.validation import Issue, ValidationReport, check_references, check_table, row_issue

EVENT_TABLES: tuple[str, ...] = tuple(spec.name for spec in TABLES if spec.event_date is not None)
LOCK_FILE = ".ingest.lock"
LOG_DIR = "_ingest"  # underscore-prefixed: loaders only open `<table>.<format>` files
LOG_FILE = "log.jsonl"
TEMP_PREFIX = ".ingest-tmp-"  # `<dir>/.ingest-tmp-<table>.<format>` while a table is being written

_EXAMPLES = 3


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
    issues = _check_request(directory, file, table)
    if issues:
        return _rejected(table, file, issues, 0)
    spec = TABLES_BY_NAME[table]
    with _lock(directory, exclusive=not dry_run):
        if not dry_run:
            _remove_stale_temporaries(directory)
        plan = _plan(directory, file, spec, today)
        if not plan.report.ok:
            return _rejected(table, file, plan.report.issues, plan.rows_in_file)
        before = _sha256(plan.path)
        after = before
        written = False
        if plan.combined is not None and not dry_run:
            after = _replace_table(plan.path, plan.combined)
            written = True
        recorded = 0
        if plan.not_visited is not None and not dry_run:
            from features.lists import _append_not_visited  # lists uses this module's lock: import late

            recorded = _append_not_visited(directory, plan.not_visited, _sha256(file))
        record = IngestRecord(
            time=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            user=_user(),
            host=socket.gethostname(),
            table=table,
            file=str(file.resolve()),
            file_sha256=_sha256(file),
            rows_in_file=plan.rows_in_file,
            rows_added=plan.added,
            rows_already_present=plan.unchanged,
            dry_run=dry_run,
            table_sha256_before=before,
            table_sha256_after=after,
            not_visited_recorded=recorded,
        )
        if not dry_run:
            _append_log(directory, record)
    not_visited = 0 if plan.not_visited is None else len(plan.not_visited)
    return IngestResult(
        table, file, plan.rows_in_file, plan.added, plan.unchanged, plan.report, written, record, not_visited
    )


def read_log(directory: Path) -> list[IngestRecord]:
    """The ingest log of a data set, oldest first (empty if nothing was ingested)."""
    path = Path(directory) / LOG_DIR / LOG_FILE
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [IngestRecord(**json.loads(line)) for line in lines if line.strip()]


# Checks


@dataclass
class _Plan:
    report: ValidationReport
    rows_in_file: int = 0
    path: Path = Path()  # the table's file in the data set
    added: int = 0
    unchanged: int = 0
    combined: pd.DataFrame | None = None  # the new table (contract dtypes), None if nothing to add
    not_visited: pd.DataFrame | None = None  # outcomes template: list_id, person_id, reason of unvisited rows


def _check_request(directory: Path, file: Path, table: str) -> list[Issue]:
    """Problems with the request itself: an unknown or non-event table, no such file or directory."""
    issues = []
    if table not in TABLE_NAMES:
        message = f"no table {table!r} in the contract; rows can be added to {', '.join(EVENT_TABLES)}"
        issues.append(Issue("error", table, None, "unknown_table", message))
    elif table not in EVENT_TABLES:
        message = (
            f"{table} is a register without an event date, not an event table; "
            f"rows can be added to {', '.join(EVENT_TABLES)}"
        )
        issues.append(Issue("error", table, None, "not_an_event_table", message))
    if not file.exists():
        issues.append(Issue("error", table, None, "missing_file", f"{file} does not exist"))
    elif not file.is_file():
        issues.append(Issue("error", table, None, "unreadable_file", f"{file} is not a regular file"))
    elif file.suffix not in (".csv", ".parquet"):
        message = f"{file.name}: expected a .csv or .parquet file"
        issues.append(Issue("error", table, None, "unsupported_format", message))
    if not directory.is_dir():
        issues.append(Issue("error", None, None, "missing_directory", f"{directory} is not a directory"))
    return issues


def _plan(directory: Path, file: Path, spec: Table, today: dt.date) -> _Plan:
    """Every check, and the table to write; nothing is written here."""
    existing = load_tables(directory)
    if existing.tables is None:
        message = f"the data set in {directory} is invalid; fix it before adding rows"
        issue = Issue("error", None, None, "invalid_data_set", message)
        return _Plan(ValidationReport([issue, *existing.report.issues], existing.report.rows_per_table))
    tables = existing.tables
    extra = [i.column for i in existing.report.warnings if i.table == spec.name and i.rule == "extra_column"]
    if extra:
        message = f"the table file has columns outside the contract ({', '.join(map(str, extra))}), "
        message += "which rewriting it would drop; remove them first"
        issue = Issue("error", spec.name, None, "extra_columns_in_table", message)
        return _Plan(ValidationReport([issue], {}))
    path = next(p for p in (directory / f"{spec.name}.{fmt}" for fmt in FORMATS) if p.exists())

    loaded = load_table_file(file, spec)
    if loaded.frame is None:
        return _Plan(ValidationReport(loaded.issues, {}))
    frame = loaded.frame
    plan = _Plan(ValidationReport([], {spec.name: len(frame)}), len(frame), path)
    issues, unread, kept = loaded.issues, loaded.unread, None
    if spec.name == "inspections":
        from features.lists import _check_list_rows  # lists uses this module's lock: import late

        template = _read_template(file, frame)
        issues = [*issues, *template.issues, *_check_list_rows(directory, frame)]
        if template.visited is not None:  # an outcomes template: only visited rows are inspections
            issues = [i for i in issues if not (i.rule == "extra_column" and i.column in _TEMPLATE_ONLY)]
            kept = np.flatnonzero(template.visited)
            plan.not_visited = template.not_visited
            frame = frame.iloc[kept].reset_index(drop=True)
            unread = {name: mask[kept] for name, mask in unread.items()}
    checked = [*check_table(spec, frame, unread)]
    registers = {"persons": tables.persons, "sponsors": tables.sponsors, spec.name: frame}
    checked += check_references(registers, set())
    checked += _future_dates(spec, frame, today)
    plan.report.issues = [*issues, *_file_rows(checked, kept)]
    if not plan.report.ok:
        return plan

    new = _final_dtypes(frame)
    old = tables[spec.name]
    present, conflicts = _match(spec, new, old)
    plan.report.issues += _file_rows(conflicts, kept)
    if conflicts:
        return plan
    plan.unchanged = int(present.sum())
    plan.added = len(new) - plan.unchanged
    if plan.added:
        combined = pd.concat([old, new[~present]], ignore_index=True)
        plan.report.issues += _check_combined(spec, combined, tables, len(old))
        plan.combined = combined
    return plan


_TEMPLATE_ONLY = ("visited", "not_visited_reason")  # `features.lists.TEMPLATE_ONLY_COLUMNS`
_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n"})


@dataclass
class _Template:
    """The template-only columns of an outcomes template (`timpora outcomes-template`)."""

    visited: np.ndarray | None = None  # None: the file is not a template
    not_visited: pd.DataFrame | None = None  # list_id, person_id, reason
    issues: list[Issue] = field(default_factory=list)


def _read_template(file: Path, frame: pd.DataFrame) -> _Template:
    """Split a filled outcomes template: visited rows are inspections, the others are recorded on the list.

    A file without a `visited` column is not a template. `visited` must be true
    or false on every row; a row not visited must come from a list (trigger
    LIST) and carry no outcome.
    """
    if file.suffix == ".csv":
        names = list(pd.read_csv(file, nrows=0, encoding="utf-8-sig").columns)
    else:
        names = pq.read_schema(file).names
    if "visited" not in names:
        return _Template()
    wanted = [name for name in _TEMPLATE_ONLY if name in names]
    if file.suffix == ".csv":
        raw = pd.read_csv(file, usecols=wanted, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    else:
        raw = pd.read_parquet(file, columns=wanted)
    text = raw["visited"].astype("string").fillna("").str.strip().str.lower()
    visited = text.isin(_TRUE).to_numpy(dtype=bool)
    unvisited = text.isin(_FALSE).to_numpy(dtype=bool)
    issues = []
    bad = np.flatnonzero(~visited & ~unvisited)
    if len(bad):
        message = "must be true or false on every row of an outcomes template"
        issues.append(
            row_issue("inspections", "visited", "template_visited", message, bad, text.iloc[bad[:9]].tolist())
        )
    rows = np.flatnonzero(unvisited)
    outcome = frame["inspection_date"].notna() | frame["violation_found"].notna()
    filled = np.flatnonzero(unvisited & outcome.to_numpy(dtype=bool))
    if len(filled):
        message = "not visited, yet an inspection_date or violation_found is filled in"
        issues.append(
            row_issue("inspections", "visited", "template_not_visited_with_outcome", message, filled)
        )
    trigger = frame["trigger"].astype("string").fillna("")
    not_list = np.flatnonzero(unvisited & (trigger != "LIST").to_numpy(dtype=bool))
    if len(not_list):
        message = "not visited, but not a LIST row: only listed cases are recorded as not visited"
        issues.append(
            row_issue("inspections", "trigger", "template_not_visited_not_listed", message, not_list)
        )
    reason = raw["not_visited_reason"] if "not_visited_reason" in raw else pd.Series("", index=raw.index)
    list_ids = frame["list_id"] if "list_id" in frame else pd.Series(None, index=frame.index, dtype=object)
    not_visited = pd.DataFrame(
        {
            "list_id": list_ids.iloc[rows].astype(object).to_numpy(),
            "person_id": frame["person_id"].iloc[rows].astype(str).to_numpy(),
            "reason": reason.iloc[rows].astype("string").fillna("").str.strip().astype(str).to_numpy(),
        }
    )
    return _Template(visited, not_visited, issues)


def _file_rows(issues: list[Issue], kept: np.ndarray | None) -> list[Issue]:
    """Issues about the visited rows of a template, with their rows numbered as in the file."""
    if kept is None:
        return issues
    return [replace(i, rows=tuple(int(kept[r - 1]) + 1 for r in i.rows)) for i in issues]


def _future_dates(spec: Table, frame: pd.DataFrame, today: dt.date) -> list[Issue]:
    assert spec.event_date is not None  # only event tables get here
    dates = frame[spec.event_date]
    rows = np.flatnonzero((dates > pd.Timestamp(today)).to_numpy(dtype=bool))
    if not len(rows):
        return []
    values = [d.date().isoformat() for d in dates.iloc[rows[: _EXAMPLES * 4]]]
    message = f"dated after today ({today.isoformat()})"
    return [row_issue(spec.name, spec.event_date, "future_date", message, rows, values)]


def _match(spec: Table, new: pd.DataFrame, old: pd.DataFrame) -> tuple[np.ndarray, list[Issue]]:
    """Which rows of `new` the table already holds, and `conflict` issues for keys with other content."""
    if spec.key is None:
        return _match_rows(spec, new, old), []
    key = spec.key
    where = pd.Index(old[key]).get_indexer(new[key])  # unique keys: position in `old`, or -1
    present = where >= 0
    rows = np.flatnonzero(present)
    mine = new.iloc[rows].reset_index(drop=True)
    theirs = old.iloc[where[rows]].reset_index(drop=True)
    differs = np.zeros(len(rows), bool)
    issues = []
    for name in spec.column_names:
        if name == key:
            continue
        same = _same(mine[name], theirs[name])
        if same.all():
            continue
        differs |= ~same
        bad = np.flatnonzero(~same)
        examples = ", ".join(
            f"{mine[key].iloc[i]}: {_show(theirs[name].iloc[i])} -> {_show(mine[name].iloc[i])}"
            for i in bad[:_EXAMPLES]
        )
        message = f"{key} already present with another {name} (existing -> file: {examples}"
        message += ", ...)" if len(bad) > _EXAMPLES else ")"
        issues.append(row_issue(spec.name, name, "conflict", message, rows[bad]))
    unchanged = present.copy()
    unchanged[rows[differs]] = False
    return unchanged, issues


def _match_rows(spec: Table, new: pd.DataFrame, old: pd.DataFrame) -> np.ndarray:
    """Rows of `new` matched, copy by copy, to identical rows of `old` (a multiset comparison)."""
    columns = list(spec.column_names)

    def numbered(frame: pd.DataFrame) -> pd.DataFrame:
        copy = frame.groupby(columns, dropna=False, sort=False).cumcount()
        return frame[columns].assign(_copy=copy.to_numpy())

    held = numbered(old).assign(_held=True)
    matched = numbered(new).merge(held, on=[*columns, "_copy"], how="left", validate="one_to_one")
    return matched["_held"].notna().to_numpy()


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality where two nulls are equal."""
    equal = (a == b).fillna(False).to_numpy(dtype=bool)
    return equal | (a.isna().to_numpy() & b.isna().to_numpy())


def _show(value: object) -> str:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return "null"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return repr(value) if isinstance(value, str) else str(value)


def _check_combined(spec: Table, combined: pd.DataFrame, tables: Tables, existing_rows: int) -> list[Issue]:
    """The contract's validation of the table with the new rows appended (only this table changed)."""
    frames = {"persons": tables.persons, "sponsors": tables.sponsors, spec.name: combined}
    issues = check_table(spec, _loaded_dtypes(combined), {}) + check_references(frames, set())
    note = f" (in {spec.name} with the new rows appended after its {existing_rows} rows)"
    return [Issue(i.severity, i.table, i.column, i.rule, i.message + note, i.rows, i.count) for i in issues]


def _final_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """A validated frame in the contract's dtypes (booleans, free of nulls now, become bool)."""
    booleans = [name for name, dtype in frame.dtypes.items() if dtype == "boolean"]
    return frame.astype(dict.fromkeys(booleans, "bool")) if booleans else frame


def _loaded_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """The dtypes validation expects (nullable booleans)."""
    booleans = [name for name, dtype in frame.dtypes.items() if dtype == "bool"]
    return frame.astype(dict.fromkeys(booleans, "boolean")) if booleans else frame


def _rejected(table: str, file: Path, issues: list[Issue], rows: int) -> IngestResult:
    report = ValidationReport(issues, {table: rows} if rows else {})
    return IngestResult(table, file, rows, 0, 0, report, False, None)


# Writing


@contextmanager
def _lock(directory: Path, exclusive: bool) -> Iterator[None]:
    """Hold `<dir>/.ingest.lock`: exclusive to write; shared (if the file exists) to read."""
    path = directory / LOCK_FILE
    if exclusive:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    elif path.exists():
        fd = os.open(path, os.O_RDONLY)
    else:
        yield  # nothing has ever been ingested here: no writer to wait for, and no file to create
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)  # waits for another ingest
        yield
    finally:
        os.close(fd)  # releases the lock


def _remove_stale_temporaries(directory: Path) -> None:
    """Temporary files of a killed ingest; safe to remove under the exclusive lock."""
    for path in directory.glob(f"{TEMP_PREFIX}*"):
        path.unlink(missing_ok=True)


def _replace_table(path: Path, frame: pd.DataFrame) -> str:
    """Atomically replace a table file with `frame` in the same format; the new file's sha256."""
    fmt: FileFormat = "csv" if path.suffix == ".csv" else "parquet"
    stem = path.parent / f"{TEMP_PREFIX}{path.stem}"
    temporary = stem.with_suffix(f".{fmt}")  # never `<table>.<format>`: no loader opens it
    try:
        _write_frame(frame, stem, fmt)
        with temporary.open("rb") as f:
            digest = _sha256_of(f)
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return digest


def _append_log(directory: Path, record: IngestRecord) -> None:
    log_dir = directory / LOG_DIR
    log_dir.mkdir(exist_ok=True)
    with (log_dir / LOG_FILE).open("a", encoding="utf-8") as f:
        f.write(record.to_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return _sha256_of(f)


def _sha256_of(f: object) -> str:
    return hashlib.file_digest(f, "sha256").hexdigest()  # type: ignore[arg-type]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "unknown"
