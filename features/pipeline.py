"""From tables to the point-in-time feature matrix: one row per (person_id, as_of) case.

Training, evaluation, batch ranking and the HTTP service all call
`build_features`; there is no other copy of feature logic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from rich.table import Table as RichTable
from tqdm.auto import tqdm

from features.address import address_features
from features.agency import agency_features
from features.catalog import FAMILY_LABELS, FEATURE_NAMES, FEATURES, FEATURES_BY_NAME, Family
from features.employer import employer_features
from features.grouping import FloatArray
from features.inspection_history import inspection_features
from features.overstay import overstay_features
from features.permit_history import permit_features
from features.snapshot import Snapshot, take_snapshot
from features.sponsorship import sponsorship_features
from features.tables import Tables
from features.timeline import Timeline, build_timeline

INDEX_NAMES = ("person_id", "as_of")

FAMILY_FUNCTIONS: dict[Family, Callable[[Snapshot], dict[str, FloatArray]]] = {
    Family.OVERSTAY: overstay_features,
    Family.PERMIT: permit_features,
    Family.EMPLOYER: employer_features,
    Family.SPONSORSHIP: sponsorship_features,
    Family.AGENCY: agency_features,
    Family.ADDRESS: address_features,
    Family.INSPECTION: inspection_features,
}


def _bar_off(progress: bool, dates: int) -> bool | None:
    """Off when not asked for or for a single date; None lets tqdm switch it off when stderr is not a
    terminal, so logs and pipes get no bars."""
    return True if not progress or dates < 2 else None


def to_day(date: dt.date | pd.Timestamp | str) -> int:
    """A date as days since the epoch."""
    return int(pd.Timestamp(date).to_datetime64().astype("datetime64[D]").astype(np.int64))


def _as_of_days(as_of_dates: Iterable[dt.date | pd.Timestamp | str]) -> list[int]:
    days = sorted({to_day(d) for d in as_of_dates})
    if not days:
        raise ValueError("build_features needs at least one as-of date")
    return days


def _snapshot_frame(snapshot: Snapshot) -> pd.DataFrame:
    cases = np.flatnonzero(snapshot.is_case)
    columns: dict[str, FloatArray] = {}
    for family, compute in FAMILY_FUNCTIONS.items():
        values = compute(snapshot)
        expected = {f.name for f in FEATURES if f.family == family}
        if set(values) != expected:  # a family may only produce its registered features
            raise RuntimeError(f"family {family} produced {sorted(set(values) ^ expected)} off the registry")
        columns.update({name: column[cases] for name, column in values.items()})
    frame = pd.DataFrame({name: columns[name] for name in FEATURE_NAMES})
    for name in FEATURE_NAMES:
        spec = FEATURES_BY_NAME[name]
        if spec.categories is not None:
            codes = frame[name].to_numpy().astype(np.int64)
            frame[name] = pd.Categorical.from_codes(codes, categories=pd.Index(spec.categories))
    as_of = np.full(len(cases), snapshot.t, dtype="int64").astype("datetime64[D]").astype("datetime64[s]")
    frame.index = pd.MultiIndex.from_arrays(
        [pd.Index(snapshot.timeline.person_ids[cases], dtype="str"), pd.DatetimeIndex(as_of)],
        names=INDEX_NAMES,
    )
    return frame


def features_from_timeline(
    timeline: Timeline, as_of_dates: Sequence[dt.date | pd.Timestamp | str], progress: bool = False
) -> pd.DataFrame:
    """The feature matrix from an already built timeline (reuse it across calls)."""
    days = _as_of_days(as_of_dates)
    frames = [
        _snapshot_frame(take_snapshot(timeline, t))
        for t in tqdm(days, desc="features", unit="date", disable=_bar_off(progress, len(days)))
    ]
    return pd.concat(frames) if len(frames) > 1 else frames[0]


def build_features(
    tables: Tables, as_of_dates: Sequence[dt.date | pd.Timestamp | str], progress: bool = False
) -> pd.DataFrame:
    """Point-in-time features of every case on each as-of date.

    Rows: cases (persons in the country on T), indexed by (person_id, as_of).
    Columns: exactly `features.catalog.FEATURE_NAMES`, in that order; features as
    of T use only rows dated on or before T and recorded by T (contract v2's
    `recorded_date`; see `Timeline.known_on`), and permit cancellations recorded by T.
    """
    return features_from_timeline(build_timeline(tables), as_of_dates, progress)


def describe_features(matrix: pd.DataFrame) -> RichTable:
    """A per-family summary of a feature matrix for the terminal."""
    dates = matrix.index.get_level_values("as_of")
    summary = RichTable(
        title=f"Features: {len(matrix):,} cases on {dates.nunique()} date(s) "
        f"({dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d})"
    )
    for column in ("family", "features", "non-zero share", "missing share"):
        summary.add_column(column, justify="left" if column == "family" else "right")
    for family in Family:
        names = [f.name for f in FEATURES if f.family == family]
        block = matrix[names]
        numeric = block.select_dtypes("number")
        nonzero = float((numeric.fillna(0) != 0).to_numpy().mean()) if numeric.shape[1] else float("nan")
        summary.add_row(
            FAMILY_LABELS[family][0],
            str(len(names)),
            f"{nonzero:.1%}",
            f"{block.isna().to_numpy().mean():.1%}",
        )
    if "overstay_now" in matrix:
        summary.caption = f"Currently overstaying: {int(matrix['overstay_now'].sum()):,} cases"
    return summary
