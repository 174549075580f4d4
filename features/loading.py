"""Reading a data set directory into `Tables`: the one loading path of every command.

`load_tables` never raises for bad data: it reads each contract table from
`<table>.parquet` or `<table>.csv`, coerces every column to its contract dtype
without loss (a value that cannot be converted is an error, never a guess),
runs the checks of `features.validation`, and returns the report with the
tables (None when there is any error). `load_valid_tables` is the same for
commands that need valid data: it raises `DataContractError` instead.

Decisions beyond the contract's text:
- Both `<table>.parquet` and `<table>.csv` present: error `ambiguous_file`
  (neither is assumed to be the newer one).
- CSV is read entirely as text; an empty cell is null and nothing else is
  (`NA`, `null` are values). In parquet too, an empty string is null, so that
  a CSV and a parquet file of the same data load the same.
- Whole numbers are accepted in identifier and text columns and become their
  decimal text (person_id 17 -> "17", 17.0 -> "17"); fractions are `wrong_type`.
- In CSV, integer columns accept whole numbers written with a zero fraction
  (`10.0`, as pandas writes a nullable integer column holding a null); `10.5`
  is `wrong_type`.
- A table with a missing required column, or a column named twice, is not
  checked further (its other issues would be noise); optional columns may be
  absent and are then all null.
- Only the table files are read: other files, and `_truth/`, are never opened.
- An optional table (`districts`) whose file is absent is an empty table and
  is left out of the row counts; present, it is checked like any other.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from features.contract import DISTRICTS, OPTIONAL_TABLES, TABLES, Column, Kind, Table
from features.schemas import LOADED_DTYPES
from features.settings import DEFAULT_DATASET
from features.tables import Tables
from features.validation import (
    Issue,
    ValidationReport,
    check_birth_years,
    check_listed,
    check_old_dates,
    check_parents,
    check_references,
    check_table,
    row_issue,
)

FORMATS = ("parquet", "csv")

# What the parsers raise for a file they cannot read (UnicodeDecodeError is a ValueError).
_READ_ERRORS = (OSError, ValueError, csv.Error, pa.ArrowException)

_ARROW_TYPES = {
    Kind.ID: pa.large_string(),
    Kind.TEXT: pa.large_string(),
    Kind.ENUM: pa.large_string(),
    Kind.DATE: pa.timestamp("s"),
    Kind.INT: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.BOOL: pa.bool_(),
}
_EXPECTED = {
    Kind.ID: "an identifier (text)",
    Kind.TEXT: "text",
    Kind.ENUM: "text (an enumeration value)",
    Kind.DATE: "a date (YYYY-MM-DD)",
    Kind.INT: "an integer",
    Kind.FLOAT: "a number",
    Kind.BOOL: "a boolean (true/false)",
}
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_INTEGER = r"^-?\d{1,18}(\.0*)?$"  # 18 digits always fit in int64; `10.0` is how pandas writes Int64 with NA
_WHOLE_FRACTION = r"\.0*$"
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_TRUE = ("true", "True", "TRUE", "1")
_FALSE = ("false", "False", "FALSE", "0")


@dataclass(frozen=True)
class LoadResult:
    """The tables of a data set (None if it has errors) and the validation report."""

    tables: Tables | None
    report: ValidationReport


class DataContractError(Exception):
    """A data set that breaks the data contract; `str()` is the rendered report."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.render())
        self.report = report


def load_valid_tables(directory: Path) -> Tables:
    """Load and validate a data set; raise `DataContractError` if it has errors (warnings pass)."""
    result = load_tables(directory)
    if result.tables is None:
        raise DataContractError(result.report)
    return result.tables


def load_tables(directory: Path, old_date_year: int = DEFAULT_DATASET.old_date_year) -> LoadResult:
    """Load and validate a data set directory; never raises for bad data.

    Event dates before `old_date_year` are warnings (`old_date`), not errors.
    """
    directory = Path(directory)
    issues = _check_directory(directory)
    if issues:
        return LoadResult(None, ValidationReport(issues, {}))
    frames: dict[str, pd.DataFrame] = {}
    rows: dict[str, int] = {}
    unusable: set[str] = set()  # "table.column" with values that could not be read
    optional = [spec for spec in OPTIONAL_TABLES if any(_paths(directory, spec))]
    for spec in (*TABLES, *optional):
        loaded = _load_table(directory, spec)
        issues += loaded.issues
        if loaded.frame is None:
            continue
        frames[spec.name] = loaded.frame
        rows[spec.name] = len(loaded.frame)
        unusable |= {f"{spec.name}.{name}" for name in loaded.unread}
        issues += check_table(spec, loaded.frame, loaded.unread)
    issues += check_references(frames, unusable)
    issues += check_birth_years(frames, unusable)
    issues += check_old_dates(frames, old_date_year)
    if DISTRICTS.name in frames and not any(
        i.table == DISTRICTS.name and i.severity == "error" for i in issues
    ):
        issues += check_parents(DISTRICTS, frames[DISTRICTS.name], "parent_code")
    issues += check_listed(frames, unusable)
    report = ValidationReport(issues, rows)
    if not report.ok:
        return LoadResult(None, report)
    return LoadResult(Tables(**{name: final_dtypes(frame) for name, frame in frames.items()}), report)


def _check_directory(directory: Path) -> list[Issue]:
    try:
        if not directory.exists():
            return [_directory_issue("missing_directory", f"{directory} does not exist")]
        if not directory.is_dir():
            return [_directory_issue("not_a_directory", f"{directory} is not a directory")]
        if not any((directory / f"{spec.name}.{fmt}").exists() for spec in TABLES for fmt in FORMATS):
            names = ", ".join(spec.name for spec in TABLES)
            message = f"{directory} holds no table files (expected <table>.parquet or .csv for {names})"
            return [_directory_issue("empty_directory", message)]
    except OSError as exc:  # e.g. no permission to look inside
        return [_directory_issue("unreadable_directory", f"cannot read {directory}: {exc}")]
    return []


def _directory_issue(rule: str, message: str) -> Issue:
    return Issue("error", None, None, rule, message)


@dataclass
class LoadedTable:
    """One table file read and coerced to the loaded dtypes, not yet validated.

    `frame` is None when the file cannot be checked further (unreadable, or a
    required column missing); `unread` maps a column to the mask of rows whose
    value could not be converted (reported in `issues`, left null in `frame`).
    """

    frame: pd.DataFrame | None = None
    issues: list[Issue] = field(default_factory=list)
    unread: dict[str, np.ndarray] = field(default_factory=dict)  # column -> rows not converted


def _paths(directory: Path, spec: Table) -> list[Path]:
    return [p for p in (directory / f"{spec.name}.{fmt}" for fmt in FORMATS) if p.exists()]


def _load_table(directory: Path, spec: Table) -> LoadedTable:
    """Find one table's file in a data set and read it; the frame is None if it cannot be checked."""
    paths = _paths(directory, spec)
    if not paths:
        return LoadedTable(issues=[_file_issue(spec, "missing_file", f"no {spec.name}.parquet or .csv")])
    if len(paths) > 1:
        message = f"both {spec.name}.parquet and {spec.name}.csv exist; keep one"
        return LoadedTable(issues=[_file_issue(spec, "ambiguous_file", message)])
    return load_table_file(paths[0], spec)


def load_table_file(path: Path, spec: Table) -> LoadedTable:
    """Read a `.csv` (else parquet) file as table `spec` and coerce its columns, as `load_tables` does.

    Only reading and coercion: run `check_table` on the frame for the table's rules.
    """
    try:
        if not path.is_file():
            raise OSError(f"{path.name} is not a regular file")
        names = _csv_header(path) if path.suffix == ".csv" else pq.read_schema(path).names
        loaded = LoadedTable(issues=_check_header(spec, names))
        if any(i.severity == "error" for i in loaded.issues):
            return loaded
        wanted = [name for name in spec.column_names if name in names]
        data = (
            _read_csv(path, names, wanted) if path.suffix == ".csv" else pq.read_table(path, columns=wanted)
        )
    except _READ_ERRORS as exc:
        message = f"cannot read {path.name}: {_first_line(str(exc))}"
        return LoadedTable(issues=[_file_issue(spec, "unreadable_file", message)])
    columns = {}
    for col in spec.columns:
        raw = data.column(col.name) if col.name in wanted else pa.chunked_array([pa.nulls(data.num_rows)])
        try:
            values, issues, unread = _coerce(raw, col, spec.name)
        except (pa.ArrowException, ValueError, OverflowError) as exc:  # an exotic type the rules missed
            message = f"cannot convert {raw.type} to {_EXPECTED[col.kind]}: {_first_line(str(exc))}"
            values = _to_pandas(pa.nulls(data.num_rows, _ARROW_TYPES[col.kind]), col.kind)
            issues = [Issue("error", spec.name, col.name, "wrong_type", message)]
            unread = np.ones(data.num_rows, bool)
        columns[col.name] = values
        loaded.issues += issues
        if unread is not None:
            loaded.unread[col.name] = unread
    loaded.frame = pd.DataFrame(columns)
    return loaded


def _file_issue(spec: Table, rule: str, message: str) -> Issue:
    return Issue("error", spec.name, None, rule, message)


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _check_header(spec: Table, names: list[str]) -> list[Issue]:
    """Missing, repeated and extra columns of a file."""
    issues = []
    counts = Counter(names)
    for col in spec.columns:
        if counts[col.name] > 1:
            message = f"column {col.name} appears {counts[col.name]} times"
            issues.append(Issue("error", spec.name, col.name, "duplicate_column", message))
        elif not counts[col.name] and not col.optional:
            issues.append(Issue("error", spec.name, col.name, "missing_column", "required column missing"))
    for name in dict.fromkeys(n for n in names if n not in spec.column_names):
        message = f"column {name!r} is not in the contract; ignored"
        issues.append(Issue("warning", spec.name, name, "extra_column", message))
    return issues


def _csv_header(path: Path) -> list[str]:
    # utf-8-sig: a byte-order mark is a CSV convention, and pyarrow skips it too.
    with path.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f), None)
    if header is None:
        raise ValueError("empty file: no header row")
    return header


def _read_csv(path: Path, names: list[str], wanted: list[str]) -> pa.Table:
    """The wanted columns of a CSV file, all as text; an empty cell is null."""
    # Columns not wanted get placeholder names: they may be blank or repeated.
    unique_names = [name if name in wanted else f"\0extra{i}" for i, name in enumerate(names)]
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=unique_names, skip_rows=1),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            include_columns=wanted,
            column_types=dict.fromkeys(wanted, pa.large_string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


# Coercion: arrow column (any type) -> pandas Series of the loaded dtype, with per-row failures.


@dataclass
class _Converted:
    values: pa.ChunkedArray | pa.Array  # of the kind's arrow type, null where conversion failed
    failures: list[tuple[str, np.ndarray, str]] = field(default_factory=list)  # (rule, row mask, message)


def _coerce(
    raw: pa.ChunkedArray, col: Column, table: str
) -> tuple[pd.Series, list[Issue], np.ndarray | None]:
    """A column converted to its loaded dtype, its issues, and the mask of rows not converted."""
    arr = raw
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if _is_text(arr.type):
        arr = arr.cast(pa.large_string())
        empty = pc.equal(arr, "")
        if pc.any(empty).as_py():  # never in CSV, where the reader made them null already
            arr = pc.if_else(empty, pa.scalar(None, arr.type), arr)
    converted = _convert(arr, col.kind)
    issues = []
    unread = None
    for rule, mask, message in converted.failures:
        rows = np.flatnonzero(mask)
        if len(rows):
            values = arr.take(rows[:12]).to_pylist()
            issues.append(row_issue(table, col.name, rule, message, rows, values))
            unread = mask if unread is None else unread | mask
    return _to_pandas(converted.values, col.kind), issues, unread


def _to_pandas(values: pa.Array, kind: Kind) -> pd.Series:
    """Zero-copy where pandas allows it: str, Int64 and boolean wrap the arrow data."""
    from_arrow = getattr(pd.api.types.pandas_dtype(LOADED_DTYPES[kind]), "__from_arrow__", None)
    if from_arrow is not None:
        return pd.Series(from_arrow(values))
    return values.to_pandas()  # numpy-backed: datetime64[s], float64


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _is_number(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _convert(arr: pa.Array, kind: Kind) -> _Converted:
    target = _ARROW_TYPES[kind]
    t = arr.type
    if pa.types.is_null(t):
        return _Converted(pa.nulls(len(arr), target))
    if _is_text(t):
        return _Converted(arr) if target == pa.large_string() else _parse_text(arr, kind)
    if kind in (Kind.ID, Kind.TEXT) and _is_number(t):
        ints = _integers(arr, kind)
        return _Converted(ints.values.cast(target), ints.failures)
    if kind == Kind.DATE and (pa.types.is_date(t) or pa.types.is_timestamp(t)):
        return _dates(arr)
    if kind == Kind.INT and _is_number(t):
        return _integers(arr, kind)
    if kind == Kind.FLOAT and _is_number(t):
        return _Converted(arr.cast(pa.float64(), safe=False))
    if kind == Kind.BOOL and pa.types.is_boolean(t):
        return _Converted(arr)
    if kind == Kind.BOOL and _is_number(t):
        ints = _integers(arr, kind)
        not_flag = pc.invert(pc.is_in(ints.values, value_set=pa.array([0, 1])))
        bad = _failed(ints) | _mask(pc.and_(ints.values.is_valid(), not_flag))
        return _Converted(_null_where(ints.values, bad).cast(pa.bool_()), _wrong(bad, kind))
    return _Converted(pa.nulls(len(arr), target), _wrong(_mask(arr.is_valid()), kind, f"stored as {t}"))


def _integers(arr: pa.Array, kind: Kind) -> _Converted:
    """Numbers to int64: integers as they are, other numbers only when whole (failures named for `kind`)."""
    if pa.types.is_integer(arr.type):
        too_big = pa.types.is_uint64(arr.type) and pc.any(pc.greater(arr, 2**63 - 1)).as_py()
        bad = _mask(pc.greater(arr, 2**63 - 1)) if too_big else np.zeros(len(arr), bool)
        return _Converted(_null_where(arr, bad).cast(pa.int64()), _wrong(bad, kind, "too large"))
    x = arr.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(x) & (np.floor(x) == x) & (np.abs(x) < 2.0**63)
    bad = ~np.isnan(x) & ~whole  # NaN is null, as pandas writes it
    values = pa.array(np.where(whole, x, 0).astype(np.int64), mask=~whole)
    return _Converted(values, _wrong(bad, kind, "not a whole number"))


def _dates(arr: pa.Array) -> _Converted:
    """Dates and timestamps to timestamp[s]; a time of day other than midnight is an error."""
    if pa.types.is_date32(arr.type):
        return _Converted(arr.cast(pa.timestamp("s")))
    if pa.types.is_date64(arr.type):  # milliseconds, normally at midnight
        arr = arr.cast(pa.timestamp("ms"))
    elif arr.type.tz is not None:
        arr = pc.local_timestamp(arr)  # the date where it was recorded
    bad = _mask(pc.not_equal(pc.floor_temporal(arr, unit="day"), arr))
    values = _null_where(arr, bad).cast(pa.timestamp("s"))
    return _Converted(values, _wrong(bad, Kind.DATE, "a timestamp with a time of day"))


def _parse_text(arr: pa.Array, kind: Kind) -> _Converted:
    """Parse text as `kind`, once per distinct value (dates and codes repeat a lot)."""
    encoded = pc.dictionary_encode(arr.combine_chunks())
    distinct = _parse_distinct(encoded.dictionary, kind)
    indices = encoded.indices
    failures = [
        (rule, _mask(pc.take(pa.array(mask), indices)), message) for rule, mask, message in distinct.failures
    ]
    return _Converted(distinct.values.take(indices), failures)


def _parse_distinct(text: pa.Array, kind: Kind) -> _Converted:
    """Parse distinct non-null strings as `kind`."""
    if kind == Kind.DATE:
        iso = pc.if_else(pc.match_substring_regex(text, _ISO_DATE), text, pa.scalar(None, text.type))
        parsed = pd.to_datetime(iso.to_pandas(), format="%Y-%m-%d", errors="coerce")
        values = pa.array(parsed.astype("datetime64[s]"), type=pa.timestamp("s"))
        no_digit = _mask(pc.invert(pc.match_substring_regex(text, r"\d")))
        unparseable = _mask(values.is_null()) & ~no_digit
        failures = [
            *_wrong(no_digit, kind),
            ("unparseable_date", unparseable, "not a valid date as YYYY-MM-DD"),
        ]
        return _Converted(values, failures)
    if kind == Kind.BOOL:
        true, false = pc.is_in(text, value_set=pa.array(_TRUE)), pc.is_in(text, value_set=pa.array(_FALSE))
        bad = ~(_mask(true) | _mask(false))
        return _Converted(_null_where(true, bad), _wrong(bad, kind))
    pattern, target = (_INTEGER, pa.int64()) if kind == Kind.INT else (_NUMBER, pa.float64())
    bad = ~_mask(pc.match_substring_regex(text, pattern))
    if kind == Kind.INT:  # a whole number written with a zero fraction (`10.0`) is that integer
        text = pc.replace_substring_regex(text, _WHOLE_FRACTION, "")
    return _Converted(_null_where(text, bad).cast(target), _wrong(bad, kind))


def _wrong(bad: np.ndarray, kind: Kind, what: str = "") -> list[tuple[str, np.ndarray, str]]:
    message = f"{what + ', ' if what else ''}expected {_EXPECTED[kind]}"
    return [("wrong_type", bad, message)]


def _failed(converted: _Converted) -> np.ndarray:
    masks = [mask for _, mask, _ in converted.failures]
    return np.logical_or.reduce(masks) if masks else np.zeros(len(converted.values), bool)


def _mask(flags: pa.Array) -> np.ndarray:
    """A boolean arrow array as a numpy mask, null counted as False."""
    return np.asarray(flags.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _null_where(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    if not mask.any():
        return arr
    return pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)


def final_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """A validated frame in the contract's dtypes (booleans, now free of nulls, become bool)."""
    booleans = [name for name, dtype in frame.dtypes.items() if dtype == "boolean"]
    return frame.astype(dict.fromkeys(booleans, "bool")) if booleans else frame
