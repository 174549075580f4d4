"""The checks of an ingest: new or corrected rows of a table read, checked, matched to the table, planned.

`plan` makes every check `features.ingest.ingest` makes and builds the table to
write, without writing anything (the decisions are in `features.ingest`). The
caller holds the data set's lock, so the data set and its committed lists do
not change under the checks.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features import contract
from features.contract import TABLE_NAMES, TABLES_BY_NAME, Table
from features.lists import TEMPLATE_ONLY_COLUMNS, check_list_rows
from features.loading import FORMATS, final_dtypes, load_table_file, load_tables
from features.schemas import CONTROL_CHARACTERS
from features.settings import DEFAULT_DATASET
from features.tables import Tables
from features.validation import (
    Issue,
    ValidationReport,
    check_birth_years,
    check_old_dates,
    check_references,
    check_table,
    row_issue,
)

EVENT_TABLES: tuple[str, ...] = tuple(spec.name for spec in contract.EVENT_TABLES)
# Tables that take rows: every required table (the registers take new ids). The optional
# `districts` table is reference data, written as a whole file.
INGEST_TABLES: tuple[str, ...] = tuple(spec.name for spec in contract.TABLES)
# The date that places a register's row in time, checked against today like an event date.
REGISTER_DATES: dict[str, str] = {"sponsors": "registered_date"}
# The columns that tie an inspection to a committed list: a correction that changes
# any of them is checked against the list again.
_LIST_COLUMNS = ("trigger", "list_id", "person_id", "selection_propensity")
_CORRECT_HINT = "to replace rows that exist, ingest the file with --correct and a --reason"

_EXAMPLES = 3
_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n"})


@dataclass
class Plan:
    """What an ingest found and would write: its report, the counts, and the table with the new rows."""

    report: ValidationReport
    rows_in_file: int = 0
    path: Path = Path()  # the table's file in the data set
    added: int = 0
    unchanged: int = 0
    corrected: int = 0  # a correction: rows replaced by key
    combined: pd.DataFrame | None = None  # the new table (contract dtypes), None if nothing to add
    replaced: pd.DataFrame | None = None  # a correction: the replaced rows as they were (contract dtypes)
    not_visited: pd.DataFrame | None = None  # outcomes template: list_id, person_id, reason of unvisited rows


def reason_problem(reason: str | None) -> str | None:
    """Why `reason` cannot justify a correction (None when it can): it must be set, and printable."""
    if reason is None or not reason.strip():
        return "a correction needs a --reason: why the rows are replaced (kept in the ingest log)"
    if re.search(CONTROL_CHARACTERS, reason):
        return "the --reason must not contain control characters (a line break, a tab or another)"
    return None


def check_request(
    directory: Path, file: Path, table: str, correct: bool = False, reason: str | None = None
) -> list[Issue]:
    """Problems with the request itself: an unknown table, no such file or directory, a correction
    without a reason or of a table without a key."""
    issues = []
    if table not in TABLE_NAMES:
        message = f"no table {table!r} in the contract; rows can be added to {', '.join(INGEST_TABLES)}"
        issues.append(Issue("error", table, None, "unknown_table", message))
    elif table not in INGEST_TABLES:
        message = (
            f"{table} is optional reference data, written as a whole file; "
            f"rows can be added to {', '.join(INGEST_TABLES)}"
        )
        issues.append(Issue("error", table, None, "not_ingestible", message))
    elif correct and TABLES_BY_NAME[table].key is None:
        keyed = ", ".join(name for name in INGEST_TABLES if TABLES_BY_NAME[name].key is not None)
        message = (
            f"{table} has no key column, so a row cannot be matched to correct it; "
            f"corrections replace rows by key in {keyed}"
        )
        issues.append(Issue("error", table, None, "no_key_to_correct", message))
    if correct and (problem := reason_problem(reason)) is not None:
        issues.append(Issue("error", table, None, "correction_reason", problem))
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


def plan(
    directory: Path,
    file: Path,
    spec: Table,
    today: dt.date,
    correct: bool = False,
    old_date_year: int = DEFAULT_DATASET.old_date_year,
) -> Plan:
    """Every check, and the table to write; nothing is written here.

    With `correct`, the file's rows replace the rows of the same key (each must
    exist) instead of joining the table. The caller holds the data set's lock
    (the committed lists are read under it).
    """
    existing = load_tables(directory)
    if existing.tables is None:
        message = f"the data set in {directory} is invalid; fix it before adding rows"
        issue = Issue("error", None, None, "invalid_data_set", message)
        return Plan(ValidationReport([issue, *existing.report.issues], existing.report.rows_per_table))
    tables = existing.tables
    extra = [i.column for i in existing.report.warnings if i.table == spec.name and i.rule == "extra_column"]
    if extra:
        message = f"the table file has columns outside the contract ({', '.join(map(str, extra))}), "
        message += "which rewriting it would drop; remove them first"
        issue = Issue("error", spec.name, None, "extra_columns_in_table", message)
        return Plan(ValidationReport([issue], {}))
    path = next(p for p in (directory / f"{spec.name}.{fmt}" for fmt in FORMATS) if p.exists())

    loaded = load_table_file(file, spec)
    if loaded.frame is None:
        return Plan(ValidationReport(loaded.issues, {}))
    frame = loaded.frame
    result = Plan(ValidationReport([], {spec.name: len(frame)}), len(frame), path)
    issues, unread, kept = loaded.issues, loaded.unread, None
    if spec.name == "inspections":
        template = _read_template(file, frame)
        if correct and template.visited is not None:
            message = "an outcomes template adds outcomes; correct inspections with a plain inspections file"
            issue = Issue("error", spec.name, "visited", "template_in_correction", message)
            return replace(result, report=ValidationReport([issue], result.report.rows_per_table))
        issues = [*issues, *template.issues]
        if not correct:  # a correction checks the rows whose list columns change, once matched
            issues += check_list_rows(directory, frame, lock_held=True)
        if template.visited is not None:  # an outcomes template: only visited rows are inspections
            issues = [
                i for i in issues if not (i.rule == "extra_column" and i.column in TEMPLATE_ONLY_COLUMNS)
            ]
            kept = np.flatnonzero(template.visited)
            result.not_visited = template.not_visited
            frame = frame.iloc[kept].reset_index(drop=True)
            unread = {name: mask[kept] for name, mask in unread.items()}
    checked = [*check_table(spec, frame, unread)]
    registers = {"persons": tables.persons, "sponsors": tables.sponsors, spec.name: frame}
    checked += check_references(registers, set())
    checked += check_birth_years(registers, set())
    checked += check_old_dates({spec.name: frame}, old_date_year)
    checked += _future_dates(spec, frame, today)
    result.report.issues = [*issues, *_file_rows(checked, kept)]
    if not result.report.ok:
        return result

    new = final_dtypes(frame)
    old = tables[spec.name].reset_index(drop=True)
    if correct:
        return _plan_correction(directory, spec, new, old, tables, result)
    present, conflicts = _match(spec, new, old)
    result.report.issues += _file_rows(conflicts, kept)
    if conflicts:
        return result
    result.unchanged = int(present.sum())
    result.added = len(new) - result.unchanged
    if result.added:
        combined = pd.concat([old, new[~present]], ignore_index=True)
        result.report.issues += _check_combined(spec, combined, tables, len(old))
        result.combined = combined
    return result


# Outcomes templates


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
    wanted = [name for name in TEMPLATE_ONLY_COLUMNS if name in names]
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


# Checks of the new rows against the table


def _future_dates(spec: Table, frame: pd.DataFrame, today: dt.date) -> list[Issue]:
    """A `future_date` error for the rows dated after `today`: by their event date (a sponsor by its
    registration), a person by a birth year after today's year."""
    if spec.name == "persons":
        years = frame["birth_year"]
        rows = np.flatnonzero((years > today.year).to_numpy(dtype=bool, na_value=False))
        if not len(rows):
            return []
        message = f"born after today ({today.isoformat()})"
        values = years.iloc[rows[: _EXAMPLES * 4]].tolist()
        return [row_issue(spec.name, "birth_year", "future_date", message, rows, values)]
    column = spec.event_date or REGISTER_DATES.get(spec.name)
    if column is None:
        return []
    dates = frame[column]
    rows = np.flatnonzero((dates > pd.Timestamp(today)).to_numpy(dtype=bool, na_value=False))
    if not len(rows):
        return []
    values = [d.date().isoformat() for d in dates.iloc[rows[: _EXAMPLES * 4]]]
    message = f"dated after today ({today.isoformat()})"
    return [row_issue(spec.name, column, "future_date", message, rows, values)]


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
        message += f"; {_CORRECT_HINT}"
        issues.append(row_issue(spec.name, name, "conflict", message, rows[bad]))
    unchanged = present.copy()
    unchanged[rows[differs]] = False
    return unchanged, issues


def _plan_correction(
    directory: Path, spec: Table, new: pd.DataFrame, old: pd.DataFrame, tables: Tables, result: Plan
) -> Plan:
    """Complete `result` for a correction: the file's rows replace the table's rows of the same key.

    Every key must be in the table (a correction never adds). Rows equal to
    the table's are unchanged; the others are replaced in place (the table keeps
    its order), and the corrected table, with every other table, passes the
    contract's validation again. `old` has a RangeIndex.
    """
    assert spec.key is not None  # `check_request` refuses a correction of a table without a key
    key = spec.key
    where = pd.Index(old[key]).get_indexer(new[key])
    missing = np.flatnonzero(where < 0)
    if len(missing):
        message = f"not in {spec.name} (a correction replaces rows that exist and never adds; "
        message += "ingest new rows without --correct)"
        values = new[key].iloc[missing[: _EXAMPLES * 4]].tolist()
        result.report.issues.append(
            row_issue(spec.name, key, "correction_of_missing_row", message, missing, values)
        )
        return result
    theirs = old.iloc[where].reset_index(drop=True)
    differs = {name: ~_same(new[name], theirs[name]) for name in spec.column_names}
    changed = np.flatnonzero(np.logical_or.reduce(list(differs.values())))
    result.unchanged = len(new) - len(changed)
    result.corrected = len(changed)
    if spec.name == "inspections":
        moved = np.logical_or.reduce([differs[name] for name in _LIST_COLUMNS])
        listed = np.flatnonzero(moved)
        issues = check_list_rows(directory, new.iloc[listed].reset_index(drop=True), lock_held=True)
        result.report.issues += _file_rows(issues, listed)
        if not result.report.ok:
            return result
    if not len(changed):
        return result
    positions = where[changed]
    replacement = new.iloc[changed].set_axis(pd.Index(positions))
    combined = pd.concat([old.drop(index=positions), replacement[old.columns]])
    combined = combined.sort_index(kind="stable").reset_index(drop=True).astype(old.dtypes.to_dict())
    result.report.issues += _check_corrected(spec, combined, tables)
    result.combined = combined
    result.replaced = old.iloc[positions].reset_index(drop=True)
    return result


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
    """A value as a conflict message quotes it."""
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


def _check_corrected(spec: Table, combined: pd.DataFrame, tables: Tables) -> list[Issue]:
    """The contract's validation of the data set with the corrected table in place.

    Every table takes part: a corrected birth year or person can break rows of
    other tables (a permit issued before its holder's birth).
    """
    frames = {name: frame for name, frame in tables.items()}
    frames[spec.name] = combined
    issues = check_table(spec, _loaded_dtypes(combined), {})
    issues += check_references(frames, set()) + check_birth_years(frames, set())
    note = f" (in the data set with the corrected rows of {spec.name} in place)"
    return [Issue(i.severity, i.table, i.column, i.rule, i.message + note, i.rows, i.count) for i in issues]


def _loaded_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """The dtypes validation expects (nullable booleans): the inverse of `loading.final_dtypes`."""
    booleans = [name for name, dtype in frame.dtypes.items() if dtype == "bool"]
    return frame.astype(dict.fromkeys(booleans, "boolean")) if booleans else frame
