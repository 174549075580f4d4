"""A data set in memory: the contract tables with their contract dtypes.

`Tables` is what every stage takes as input. Reading a directory (with
validation) lives in `features.loading`; this module only holds the container,
builds typed frames from trusted in-memory data, and writes data sets out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import pandas as pd

from features.contract import (
    ALL_TABLES,
    DISTRICTS,
    EVENT_TABLES,
    OPTIONAL_TABLES,
    TRUTH,
    TRUTH_DIR,
    Table,
    table,
)

FileFormat = Literal["parquet", "csv"]


def _no_districts() -> pd.DataFrame:
    return empty_frame(DISTRICTS)


def as_of_refusal(as_of: dt.date, first: dt.date, last: dt.date) -> str | None:
    """The one rule for an as-of date (CLI and API): within the data's dates, else the sentence why not."""
    if not first <= as_of <= last:
        return f"as_of must be between {first} and {last} (the data's dates): {as_of}"
    return None


@dataclass(frozen=True)
class Tables:
    """The tables of one data set, each with exactly the contract's columns.

    Optional columns a file did not have are all null. The optional `districts`
    table is an empty frame (with its columns) when the data set has none.
    """

    persons: pd.DataFrame
    sponsors: pd.DataFrame
    permits: pd.DataFrame
    border_crossings: pd.DataFrame
    address_reports: pd.DataFrame
    agency_reports: pd.DataFrame
    labour_violations: pd.DataFrame
    inspections: pd.DataFrame
    districts: pd.DataFrame = field(default_factory=_no_districts)

    def __getitem__(self, name: str) -> pd.DataFrame:
        table(name)  # clear error for an unknown name
        frame: pd.DataFrame = getattr(self, name)
        return frame

    def items(self) -> Iterator[tuple[str, pd.DataFrame]]:
        """The tables the data set holds: every required one, and each optional one that has rows."""
        optional = {spec.name for spec in OPTIONAL_TABLES}
        for f in fields(self):
            frame = getattr(self, f.name)
            if f.name not in optional or len(frame):
                yield f.name, frame

    def replace(self, **frames: pd.DataFrame) -> Tables:
        """A copy with some tables replaced (coerced to the contract)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update({name: typed_frame(table(name), frame) for name, frame in frames.items()})
        return Tables(**current)

    def last_date(self) -> pd.Timestamp | None:
        """The latest event date in any table, or None for a data set without events."""
        dates = self._event_date_bounds()
        return max(high for _, high in dates) if dates else None

    def first_date(self) -> pd.Timestamp | None:
        """The earliest event date in any table, or None for a data set without events."""
        dates = self._event_date_bounds()
        return min(low for low, _ in dates) if dates else None

    def last_dates(self) -> dict[str, pd.Timestamp | None]:
        """Each dated table's last event date (None for a table without dated rows), in contract order."""
        last: dict[str, pd.Timestamp | None] = {}
        for spec in EVENT_TABLES:
            col = self[spec.name][str(spec.event_date)]
            last[spec.name] = pd.Timestamp(col.max()) if col.notna().any() else None
        return last

    def known_through(self, continuous_tables: Sequence[str]) -> pd.Timestamp | None:
        """The latest date every continuously fed table covers: the default as-of date of every command.

        The earliest of those tables' last dates, so that one table's new month (a month of
        inspections ingested alone) does not move the default date to where the others are stale.
        A continuous table without dated rows is skipped (it tells nothing about how far the data
        reaches); with none that has rows, the data set's last date. None without any dated rows.
        """
        last = self.last_dates()
        if unknown := [name for name in continuous_tables if name not in last]:
            raise ValueError(f"not a dated table of the contract: {', '.join(unknown)}")
        covered = [date for name, date in last.items() if name in continuous_tables and date is not None]
        return min(covered) if covered else self.last_date()

    def as_of_refusal(self, as_of: dt.date) -> str | None:
        """The one rule for an as-of date, shared by the CLI and the API: within the data's dates
        (first to last event date). None when it is; else the sentence that says why not."""
        first, last = self.first_date(), self.last_date()
        if first is None or last is None:
            return "the data set has no dated rows: nothing to score"
        return as_of_refusal(as_of, first.date(), last.date())

    def _event_date_bounds(self) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        bounds: list[tuple[pd.Timestamp, pd.Timestamp]] = []
        for spec in EVENT_TABLES:
            col = self[spec.name][str(spec.event_date)]
            if len(col) and col.notna().any():
                bounds.append((pd.Timestamp(col.min()), pd.Timestamp(col.max())))
        return bounds


def run_ahead_warning(
    last_dates: Mapping[str, pd.Timestamp | None], known_through: pd.Timestamp
) -> str | None:
    """The sentence that names each table whose last date lies after the known-through date, or None.

    Rows after that date are loaded and count from their own dates on, but commands default to
    the known-through date: the continuously fed tables are stale beyond it.
    """
    ahead = [
        f"{name} (to {date.date()})"
        for name, date in last_dates.items()
        if date is not None and date > known_through
    ]
    if not ahead:
        return None
    through = known_through.date()
    return (
        f"{', '.join(ahead)} {'runs' if len(ahead) == 1 else 'run'} ahead of the date the data set is "
        f"known through, {through} (the last date every continuously fed table covers): "
        f"as-of dates default to {through}"
    )


def empty_frame(spec: Table) -> pd.DataFrame:
    """A zero-row frame with the table's columns and dtypes."""
    return pd.DataFrame({c.name: pd.Series([], dtype=c.dtype) for c in spec.columns})


def typed_frame(spec: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Trusted data to the contract's columns and dtypes (optional columns added as null).

    For frames built by code (the simulator, tests). Files from outside go
    through `features.loading`, which checks every value instead of trusting it.
    """
    out = {}
    for col in spec.columns:
        if col.name in frame.columns:
            values = frame[col.name]
            if col.dtype.startswith("datetime64"):
                values = pd.to_datetime(values).astype(col.dtype)
            else:
                values = values.astype(col.dtype)
            out[col.name] = values.reset_index(drop=True)
        elif col.optional:
            out[col.name] = pd.Series([None] * len(frame), dtype=col.dtype)
        else:
            raise KeyError(f"table {spec.name!r} needs column {col.name!r}")
    return pd.DataFrame(out)


def make_tables(frames: Mapping[str, pd.DataFrame]) -> Tables:
    """Build `Tables` from trusted frames; tables not given are empty."""
    built = {
        spec.name: typed_frame(spec, frames[spec.name]) if spec.name in frames else empty_frame(spec)
        for spec in ALL_TABLES
    }
    return Tables(**built)


def write_frame(frame: pd.DataFrame, path_stem: Path, fmt: FileFormat) -> Path:
    if fmt == "parquet":
        path = path_stem.with_suffix(".parquet")
        out = frame.copy()
        for name in out.columns:
            if str(out[name].dtype).startswith("datetime64"):
                # date32, as the contract says for parquet.
                out[name] = out[name].dt.date
        out.to_parquet(path, index=False)
    else:
        path = path_stem.with_suffix(".csv")
        frame.to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


def write_tables(tables: Tables, out_dir: Path, fmt: FileFormat = "parquet") -> list[Path]:
    """Write every table as `<table>.<fmt>` into `out_dir` (created if needed).

    Every contract column is written, optional ones too (null where unknown), as
    loading gives them back; an optional table without rows (no `districts`)
    gets no file, as loading reads an absent file.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_frame(frame, out_dir / name, fmt) for name, frame in tables.items()]


def write_truth(truth: pd.DataFrame, out_dir: Path, fmt: FileFormat = "parquet") -> Path:
    """Write the evaluation-only ground truth into `out_dir/_truth/`."""
    truth_dir = out_dir / TRUTH_DIR
    truth_dir.mkdir(parents=True, exist_ok=True)
    return write_frame(typed_frame(TRUTH, truth), truth_dir / TRUTH.name, fmt)
