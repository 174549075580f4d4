"""Validation of loaded tables against the data contract, and the report it produces.

`check_table` runs a table's pandera schema (from `features.schemas`) lazily and
turns its failure cases into `Issue`s; `check_references` checks the foreign
keys across tables, `check_listed` the codes that should appear in an optional
table (warnings), `check_parents` that a table's parent links end,
`check_birth_years` that no date of a person's rows lies in a year before the
person's birth year, and `check_old_dates` warns of event dates before the
configured year (`DatasetSettings.old_date_year`, default 1990).
Reading files and coercing types is `features.loading`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from features.contract import ALL_TABLES, PERSONS, TABLE_NAMES, Kind, Table
from features.schemas import EARLIEST_DATE, split_check_name, table_schema
from features.settings import DEFAULT_DATASET

Severity = Literal["error", "warning"]

MAX_ROWS_SHOWN = 5
MAX_VALUES_SHOWN = 3

# Rules whose issues quote a few of the offending values.
_QUOTED_RULES = ("unknown_value", "duplicate_id", "out_of_range", "control_character", "implausible_date")

# Pandera's own checks, by the rule they enforce.
_BUILTIN_RULES = {
    "not_nullable": ("null_value", "missing value in a required column"),
    "field_uniqueness": ("duplicate_id", "not unique"),
}


@dataclass(frozen=True)
class Issue:
    """One broken rule: where, what, and which rows (1-based data rows, header excluded)."""

    severity: Severity
    table: str | None
    column: str | None
    rule: str
    message: str
    rows: tuple[int, ...] = ()  # up to MAX_ROWS_SHOWN example rows
    count: int = 0  # offending rows in all; 0 for issues about a file or column

    def render(self) -> str:
        """One line, e.g. `ERROR permits.expiry_date [date_order] ...: 3 rows (rows 4, 9, 12)`."""
        where = ".".join(part for part in (self.table, self.column) if part)
        line = f"{self.severity.upper()} {where + ' ' if where else ''}[{self.rule}] {self.message}"
        if self.count:
            shown = ", ".join(str(r) for r in self.rows) + (", ..." if self.count > len(self.rows) else "")
            line += f": {_plural(self.count, 'row')} ({'row' if len(self.rows) == 1 else 'rows'} {shown})"
        return line


@dataclass
class ValidationReport:
    """All issues found in a data set, and the number of data rows read per table."""

    issues: list[Issue]
    rows_per_table: dict[str, int]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings are fine)."""
        return not self.errors

    def render(self) -> str:
        """Plain text: one line per issue, then a one-line verdict."""
        if self.ok:
            verdict = (
                f"valid: {_plural(len(self.rows_per_table), 'table')}, "
                f"{_plural(sum(self.rows_per_table.values()), 'row')}"
            )
            if self.warnings:
                verdict += f", {_plural(len(self.warnings), 'warning')}"
        else:
            verdict = (
                f"invalid: {_plural(len(self.errors), 'error')}, {_plural(len(self.warnings), 'warning')}"
            )
        return "\n".join([*(issue.render() for issue in self.issues), verdict])


def row_issue(
    table: str,
    column: str | None,
    rule: str,
    message: str,
    rows: np.ndarray,
    values: Sequence[object] = (),
    severity: Severity = "error",
) -> Issue:
    """An issue about the 0-based row positions `rows` (sorted, unique), quoting a few `values`."""
    if len(values):
        message = f"{message}, found {_format_values(values)}"
    shown = tuple(int(r) + 1 for r in rows[:MAX_ROWS_SHOWN])
    return Issue(severity, table, column, rule, message, shown, len(rows))


def _format_values(values: Sequence[object]) -> str:
    """A few distinct example values, quoted when text, for a message."""
    distinct: list[str] = []
    for value in values:
        if isinstance(value, pd.Timestamp | np.datetime64):
            value = pd.Timestamp(value)
            text = value.date().isoformat() if value == value.normalize() else str(value)
        else:
            text = repr(value) if isinstance(value, str) else str(value)
        text = text if len(text) <= 40 else text[:37] + "..."
        if text not in distinct:
            distinct.append(text)
        if len(distinct) == MAX_VALUES_SHOWN:
            break
    return ", ".join(distinct)


def check_table(spec: Table, frame: pd.DataFrame, reported: Mapping[str, np.ndarray]) -> list[Issue]:
    """Check one loaded table with its pandera schema.

    `reported` holds, per column, a mask of the rows whose value could not be
    read (loading reported them and left them null). They are not reported
    again: not by that column's checks, nor by checks across the row.
    """
    schema = table_schema(spec)
    try:
        schema.validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        return _failure_issues(spec, schema, exc.failure_cases, reported)
    return []


def _failure_issues(
    spec: Table, schema: pa.DataFrameSchema, failures: pd.DataFrame, reported: Mapping[str, np.ndarray]
) -> list[Issue]:
    """Pandera failure cases (one row per failing cell) grouped into issues, one per check."""
    messages = {(name, c.name): c.description for name, col in schema.columns.items() for c in col.checks}
    messages.update({(None, c.name): c.description for c in schema.checks})
    any_reported = np.logical_or.reduce(list(reported.values())) if reported else None
    # A failure without a row is a check that could not run (or a dtype mismatch): a bug, never hidden.
    issues = [
        Issue("error", spec.name, _text(f["column"]), "check_failed", f"{f['check']}: {f['failure_case']}")
        for f in failures[failures["index"].isna()].to_dict("records")
    ]
    failures = failures[failures["index"].notna()]
    on_column = failures["schema_context"] == "Column"
    for (column, check), group in failures[on_column].groupby(["column", "check"], sort=False):
        column, check = str(column), str(check)
        if check in _BUILTIN_RULES:
            rule, message = _BUILTIN_RULES[check]
        else:
            rule, message = split_check_name(check)[0], messages[(column, check)]
        quote = rule in _QUOTED_RULES
        issues += _issues_for(spec.name, column, rule, message, group, reported.get(column), quote)
    for check, group in failures[~on_column].groupby("check", sort=False):
        rule, column = split_check_name(str(check))
        message = messages[(None, str(check))]
        group = group.drop_duplicates("index")  # a row check fails once per column of the row
        issues += _issues_for(spec.name, column, rule, message, group, any_reported, quote=False)
    order = {name: i for i, name in enumerate(spec.column_names)}
    return sorted(issues, key=lambda i: (order.get(i.column or "", len(order)), i.rule))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _issues_for(
    table: str,
    column: str | None,
    rule: str,
    message: str,
    group: pd.DataFrame,
    skip: np.ndarray | None,
    quote: bool,
) -> list[Issue]:
    """The issue for one check's failure cases, leaving out rows in `skip`; none if all are skipped."""
    group = group.sort_values("index", kind="stable")
    rows = group["index"].to_numpy(dtype=np.int64)
    if skip is not None:
        kept = ~skip[rows]
        rows, group = rows[kept], group[kept]
    if not len(rows):
        return []
    values = group["failure_case"].head(MAX_ROWS_SHOWN * 4).to_list() if quote else []
    return [row_issue(table, column, rule, message, rows, values)]


def check_references(frames: Mapping[str, pd.DataFrame], unusable: set[str]) -> list[Issue]:
    """`dangling_reference` for every foreign key value that its target column does not hold.

    Tables missing from `frames`, and targets in `unusable` ("table.column" whose
    values could not all be read), are skipped rather than reported twice.
    """
    by_target: dict[str, list[tuple[str, str]]] = {}
    for spec in ALL_TABLES:
        for col in spec.columns:
            target = col.references
            if target and spec.name in frames and target.split(".")[0] in frames and target not in unusable:
                by_target.setdefault(target, []).append((spec.name, col.name))
    issues = []
    for target, keys in by_target.items():
        # One lookup per target over all its foreign keys: building the hash set of
        # a million ids costs as much as probing a million rows.
        target_table, target_column = target.split(".")
        known = _arrow(frames[target_table][target_column])
        parts = [_arrow(frames[t][c]) for t, c in keys]
        chunks = [chunk.cast(pyarrow.large_string()) for part in parts for chunk in part.chunks]
        found = pc.is_in(pyarrow.chunked_array(chunks, type=pyarrow.large_string()), value_set=known)
        start = 0
        for (table, column), child in zip(keys, parts, strict=True):
            dangling = pc.and_(pc.is_valid(child), pc.invert(found.slice(start, len(child))))
            start += len(child)
            rows = np.flatnonzero(dangling.to_numpy(zero_copy_only=False))
            if len(rows):
                values = child.take(rows[: MAX_VALUES_SHOWN * 4]).to_pylist()
                issues.append(
                    row_issue(table, column, "dangling_reference", f"not in {target}", rows, values)
                )
    return sorted(issues, key=lambda i: TABLE_NAMES.index(i.table or ""))


def check_listed(frames: Mapping[str, pd.DataFrame], unusable: set[str]) -> list[Issue]:
    """`unlisted_value` warnings: codes missing from the table that lists them, when that table is present.

    E.g. a district code used in address_reports but absent from a `districts`
    table that is there (the contract makes this a warning, not an error). An
    absent listing table, and "table.column" in `unusable`, are skipped.
    """
    issues = []
    for spec in ALL_TABLES:
        for col in spec.columns:
            target = col.listed_in
            if not target or spec.name not in frames or f"{spec.name}.{col.name}" in unusable:
                continue
            target_table, target_column = target.split(".")
            if target_table not in frames or target in unusable:
                continue
            values = frames[spec.name][col.name]
            known = pd.Index(frames[target_table][target_column].dropna().unique())
            missing = (values.notna() & ~values.isin(known)).to_numpy(dtype=bool)
            rows = np.flatnonzero(missing)
            if len(rows):
                message = f"not in {target} (the {target_table} table is present)"
                shown = values.iloc[rows[: MAX_VALUES_SHOWN * 4]].to_list()
                issues.append(
                    row_issue(spec.name, col.name, "unlisted_value", message, rows, shown, severity="warning")
                )
    return issues


def check_birth_years(frames: Mapping[str, pd.DataFrame], unusable: set[str]) -> list[Issue]:
    """`before_birth` for dates of a person's rows that fall in a year before the person's `birth_year`.

    Every date column of a table with a `person_id` into persons is checked (a
    permit cannot expire before its holder was born either). The rule is exact
    at the year: a date in the birth year itself passes (the contract has no
    birth day), a date in any earlier year is refused.
    Skipped when the persons table is absent, its ids are not unique, or its
    ids or birth years could not all be read (those are reported already).
    """
    persons = frames.get(PERSONS.name)
    if persons is None or {"persons.person_id", "persons.birth_year"} & unusable:
        return []
    if not len(persons) or not persons["person_id"].is_unique:
        return []
    births = pd.Index(persons["person_id"])
    birth_year = persons["birth_year"].to_numpy(dtype=np.float64, na_value=np.nan)
    issues = []
    for spec in ALL_TABLES:
        if spec.name not in frames or "person_id" not in spec.column_names:
            continue
        if spec.column("person_id").references != "persons.person_id":
            continue
        frame = frames[spec.name]
        where = births.get_indexer(pd.Index(frame["person_id"]))
        born = np.where(where >= 0, birth_year[np.maximum(where, 0)], np.nan)
        for col in spec.columns:
            if col.kind != Kind.DATE or col.name not in frame:
                continue
            dates = frame[col.name]
            year = dates.dt.year.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            year[(dates < EARLIEST_DATE).to_numpy(dtype=bool, na_value=False)] = np.nan  # an error already
            with np.errstate(invalid="ignore"):  # NaN (no date, unknown person) compares False
                rows = np.flatnonzero(year < born)
            if len(rows):
                shown = [
                    f"{dates.iloc[r].date().isoformat()} (born {int(born[r])})"
                    for r in rows[: MAX_VALUES_SHOWN * 4]
                ]
                message = "in a year before the person's birth_year"
                issues.append(row_issue(spec.name, col.name, "before_birth", message, rows, shown))
    return issues


def check_old_dates(
    frames: Mapping[str, pd.DataFrame], before_year: int = DEFAULT_DATASET.old_date_year
) -> list[Issue]:
    """`old_date` warnings: event dates before `before_year` (and not before 1900, an error already).

    Old permits and crossings are real, so these pass; but a date decades back is
    as often a typo, and the report says so.
    """
    start = pd.Timestamp(year=before_year, month=1, day=1)
    issues = []
    for spec in ALL_TABLES:
        if spec.event_date is None or spec.name not in frames:
            continue
        dates = frames[spec.name][spec.event_date]
        old = ((dates < start) & (dates >= EARLIEST_DATE)).to_numpy(dtype=bool, na_value=False)
        rows = np.flatnonzero(old)
        if len(rows):
            message = f"dated before {before_year} (possible, but check it is not a typo)"
            shown = dates.iloc[rows[: MAX_VALUES_SHOWN * 4]].to_list()
            issues.append(
                row_issue(spec.name, spec.event_date, "old_date", message, rows, shown, severity="warning")
            )
    return issues


def check_parents(spec: Table, frame: pd.DataFrame, parent: str) -> list[Issue]:
    """`parent_cycle` for rows whose chain of `parent` links never ends (a region inside itself).

    `parent` references the table's own key. Run after `check_table` and
    `check_references`: with duplicate keys the chains are undefined and
    nothing is reported here; dangling and null parents end a chain.
    """
    key = spec.key
    if key is None or not len(frame) or not frame[key].is_unique:
        return []
    up = pd.Index(frame[key]).get_indexer(pd.Index(frame[parent])).astype(np.int64)  # -1: no parent
    # Pointer doubling: after k rounds `up` is the 2**k-th ancestor (-1 once a chain has ended);
    # an acyclic chain is shorter than the table, so whatever is still linked after that loops.
    steps = 1
    while steps < len(frame):
        up = np.where(up >= 0, up[np.maximum(up, 0)], -1)
        steps *= 2
    rows = np.flatnonzero(up >= 0)
    if not len(rows):
        return []
    message = f"{parent} chain loops and never reaches a region without a parent"
    values = frame[key].iloc[rows[: MAX_VALUES_SHOWN * 4]].to_list()
    return [row_issue(spec.name, parent, "parent_cycle", message, rows, values)]


def _arrow(values: pd.Series) -> pyarrow.ChunkedArray:
    """The arrow data behind a str column (no copy)."""
    data = pyarrow.array(values.array)
    return data if isinstance(data, pyarrow.ChunkedArray) else pyarrow.chunked_array([data])


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
