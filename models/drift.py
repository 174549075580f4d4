"""Population stability: do the cases scored now look like the cases the model was trained on?

The population stability index (PSI) of a feature compares its distribution on
the reference cases (the champion's training cases, recomputed from the data
set with the same feature code) with its distribution on the current cases:
PSI = sum over cells of (a - e) * ln(a / e), with e and a the shares of each
sample in a cell. Below 0.1 the population is stable, from 0.25 it has shifted
enough that the model's ranking may no longer hold (`DriftSettings`). PSI is
a distance, lower is better.

Cells: a numeric feature is cut at the reference's quantiles (deduplicated),
with cells of their own for the reference's minimum (the 0 most counts share)
and for values below or above its range, so a constant column still shows a
move either way; categories and flags are cells by value. Missing values are
a cell of their own. Shares are floored at 1e-4 so an empty cell costs a
finite amount.

Because features as of a date use only rows dated on or before it, the
reference cases do not move when later rows are appended to the data set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.catalog import FEATURES_BY_NAME, Unit
from features.pipeline import features_from_timeline
from features.tables import Tables
from features.timeline import Timeline, build_timeline
from models.ranker import RiskModel

PROPORTION_FLOOR = 1e-4  # share given to an empty cell: log(0) would make one empty cell infinite
BY_VALUE_UNITS = frozenset({Unit.CATEGORY, Unit.FLAG})
DRIFT_FILE = "drift.csv"


@dataclass(frozen=True)
class DriftSettings:
    """Population stability of the served cases against the champion's training cases (`timpora drift`)."""

    psi_moderate: float = 0.1  # PSI at or above this: moderate shift (the usual credit-scoring convention)
    psi_large: float = 0.25  # at or above this: large shift, the model is scoring a different population
    bins: int = 10  # quantile bins of a numeric feature, cut on the reference cases
    warn_level: Literal["moderate", "large"] = "large"  # the service and the page warn from this level on
    worst: int = 3  # features named in the summary
    features_for_level: int = 3  # features that must reach a level (or the scores must) to set it
    # Training dates the service's start-up drift check recomputes (spread over the window). All 12 took
    # 19.4 s and +790 MiB at 100k cases per date; 3 took 4.5 s and no extra peak (bench world, 350k persons).
    service_reference_dates: int | None = 3


DEFAULT_DRIFT = DriftSettings()  # the declared defaults; the edges pass the loaded settings


class Level(StrEnum):
    """How far a population has moved, in increasing order."""

    STABLE = "stable"
    MODERATE = "moderate"
    LARGE = "large"


_LEVEL_ORDER = tuple(Level)


def psi_level(value: float, settings: DriftSettings = DEFAULT_DRIFT) -> Level:
    """stable < `psi_moderate` <= moderate < `psi_large` <= large."""
    if value >= settings.psi_large:
        return Level.LARGE
    return Level.MODERATE if value >= settings.psi_moderate else Level.STABLE


def reaches(level: Level | str, threshold: Level | str) -> bool:
    """Whether `level` is at or above `threshold`."""
    return _LEVEL_ORDER.index(Level(level)) >= _LEVEL_ORDER.index(Level(threshold))


# -- the index ------------------------------------------------------------------------------------


def _floats(series: pd.Series) -> npt.NDArray[np.float64]:
    if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object:
        raise TypeError("a categorical or text column has no quantiles: pass by_value=True")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _index(expected: npt.NDArray[np.float64], actual: npt.NDArray[np.float64]) -> float:
    """PSI of two count vectors over the same cells."""
    e = np.maximum(expected / expected.sum(), PROPORTION_FLOOR)
    a = np.maximum(actual / actual.sum(), PROPORTION_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _value_counts(e: pd.Series, a: pd.Series) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Counts per distinct value (over both samples), then missing."""
    codes, uniques = pd.factorize(pd.concat([e, a], ignore_index=True), use_na_sentinel=True)
    cells = np.where(codes < 0, len(uniques), codes)  # missing: the last cell
    size = len(uniques) + 1
    return (
        np.bincount(cells[: len(e)], minlength=size).astype(np.float64),
        np.bincount(cells[len(e) :], minlength=size).astype(np.float64),
    )


def _quantile_counts(
    expected: npt.NDArray[np.float64], actual: npt.NDArray[np.float64], bins: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Counts per cell of the expected sample's quantile edges, then missing.

    With edges q0 (the minimum) < q1 < ... < qk (the maximum) the cells are
    (-inf, q0), {q0}, (q0, q1], ..., (qk-1, qk], (qk, inf).
    """
    known = expected[~np.isnan(expected)]
    edges = np.unique(np.quantile(known, np.linspace(0.0, 1.0, bins + 1))) if len(known) else np.empty(0)
    size = len(edges) + 3

    def counts(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        missing = np.isnan(values)
        present = values[~missing]
        cells = np.searchsorted(edges, present, side="left") + 1
        if len(edges):
            cells[present < edges[0]] = 0
        out = np.bincount(cells, minlength=size).astype(np.float64)
        out[-1] = missing.sum()
        return out

    return counts(expected), counts(actual)


def psi(
    expected: pd.Series | npt.ArrayLike,
    actual: pd.Series | npt.ArrayLike,
    bins: int = DEFAULT_DRIFT.bins,
    *,
    by_value: bool = False,
) -> float:
    """Population stability index of `actual` against `expected` (0 = same distribution; lower is better).

    Numeric values are cut at `bins` quantiles of `expected`; with `by_value`
    (categories, flags) each value is a cell. Missing values are a cell either way.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    e, a = pd.Series(expected), pd.Series(actual)
    if e.empty or a.empty:
        raise ValueError("PSI needs at least one value in each sample")
    if by_value:
        e_counts, a_counts = _value_counts(e, a)
    else:
        e_counts, a_counts = _quantile_counts(_floats(e), _floats(a), bins)
    return _index(e_counts, a_counts)


# -- per feature and summary ----------------------------------------------------------------------


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    names: Sequence[str],
    settings: DriftSettings = DEFAULT_DRIFT,
) -> pd.DataFrame:
    """PSI of each named feature, current against reference: feature, family, psi, level; largest first."""
    if not names:
        raise ValueError("feature_drift needs at least one feature name")
    missing = [n for n in names if n not in reference.columns or n not in current.columns]
    if missing:
        raise KeyError(f"feature(s) missing from the reference or current cases: {', '.join(missing[:5])}")
    rows = []
    for name in names:
        spec = FEATURES_BY_NAME.get(name)
        by_value = spec is not None and spec.unit in BY_VALUE_UNITS
        value = psi(reference[name], current[name], settings.bins, by_value=by_value)
        rows.append(
            {
                "feature": name,
                "family": spec.family.value if spec else "",
                "psi": value,
                "level": psi_level(value, settings).value,
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(["psi", "feature"], ascending=[False, True], ignore_index=True)


def score_drift(
    model: RiskModel, reference: pd.DataFrame, current: pd.DataFrame, bins: int = DEFAULT_DRIFT.bins
) -> float:
    """PSI of the model's scores on the current cases against its scores on the reference cases."""
    return psi(model.score(reference), model.score(current), bins)


@dataclass(frozen=True)
class DriftSummary:
    """The headline of a drift table. `level` is that of the largest PSI, of a feature or of the score."""

    max_psi: float
    mean_psi: float
    n_moderate: int
    n_large: int
    score_psi: float
    worst: tuple[str, ...]  # the features with the largest PSI, largest first
    level: Level


def summarise_drift(
    table: pd.DataFrame, score_psi: float, settings: DriftSettings = DEFAULT_DRIFT
) -> DriftSummary:
    """Max and mean PSI, how many features moved moderately or largely, the worst ones, and the level."""
    values = table["psi"].to_numpy(dtype=np.float64)
    levels = table["level"].to_numpy(dtype=str)
    max_psi = float(values.max())
    ordered = table.sort_values("psi", ascending=False, kind="stable")["feature"]
    n_moderate = int((levels == Level.MODERATE.value).sum())
    n_large = int((levels == Level.LARGE.value).sum())
    # The population has moved when the scores moved, or when several features did: one feature alone
    # (e.g. a smoothed rate whose prior steps from date to date) is reported but does not set the level.
    level = psi_level(score_psi, settings)
    if n_large >= settings.features_for_level:
        level = Level.LARGE
    elif n_large + n_moderate >= 2 and not reaches(level, Level.MODERATE):
        level = Level.MODERATE
    return DriftSummary(
        max_psi=max_psi,
        mean_psi=float(values.mean()),
        n_moderate=n_moderate,
        n_large=n_large,
        score_psi=score_psi,
        worst=tuple(str(f) for f in ordered.head(settings.worst)),
        level=level,
    )


# -- the reference cases --------------------------------------------------------------------------


def training_dates(info: Mapping[str, Any], stride_days: int = 30) -> tuple[dt.date, ...]:
    """The as-of dates a model was trained on, from its `info["window"]`.

    The window lists its dates (`train_dates`); a window that records only its
    first and last date is read at `stride_days` apart (the stride it was trained with).
    """
    window = info.get("window")
    if not isinstance(window, Mapping) or not {"train_first", "train_last"} <= set(window):
        raise ValueError(
            "the model records no training window (info['window']): "
            "its training cases cannot be recomputed; retrain it to measure drift"
        )
    if "train_dates" in window:
        return tuple(dt.date.fromisoformat(str(d)) for d in window["train_dates"])
    first = dt.date.fromisoformat(str(window["train_first"]))
    last = dt.date.fromisoformat(str(window["train_last"]))
    span = (last - first).days
    if span < 0:
        raise ValueError(f"the model's training window ends before it starts: {first}..{last}")
    if span % stride_days:
        raise ValueError(
            f"training window {first}..{last} is not a whole number of {stride_days}-day strides: "
            "pass the stride the model was trained with"
        )
    return tuple(first + dt.timedelta(days=stride_days * i) for i in range(span // stride_days + 1))


def sample_dates(dates: Sequence[dt.date], n: int | None) -> tuple[dt.date, ...]:
    """At most `n` dates spread evenly from the first to the last (all of them when `n` is None)."""
    if n is None or n >= len(dates):
        return tuple(dates)
    if n < 1:
        raise ValueError(f"need at least one reference date, got {n}")
    if n == 1:
        return (dates[-1],)
    picks = np.unique(np.round(np.linspace(0, len(dates) - 1, n)).astype(np.int64))
    return tuple(dates[int(i)] for i in picks)


def _timeline(data: Tables | Timeline) -> Timeline:
    return data if isinstance(data, Timeline) else build_timeline(data)


def reference_cases(model: RiskModel, data: Tables | Timeline, max_dates: int | None = None) -> pd.DataFrame:
    """The model's training cases (every case on its training as-of dates), recomputed from a data set.

    The same feature code as training, point in time: rows appended after the
    window do not change them. `max_dates` spreads fewer dates over the window.
    """
    dates = sample_dates(training_dates(model.info), max_dates)
    cases = features_from_timeline(_timeline(data), dates)
    if cases.empty:
        raise ValueError(
            f"the data set has no cases on the model's training dates {dates[0]}..{dates[-1]}: "
            "it does not cover the training window"
        )
    return cases


# -- the report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftReport:
    """Drift of the cases on one date against a model's training cases."""

    as_of: dt.date
    reference_dates: tuple[dt.date, ...]
    n_reference: int
    n_current: int
    features: pd.DataFrame  # feature, family, psi, level; largest PSI first
    summary: DriftSummary

    def warning(self, threshold: Level | str = DEFAULT_DRIFT.warn_level) -> str | None:
        """A plain sentence for people when the drift reaches `threshold`, else None."""
        s = self.summary
        if s.level == Level.STABLE or not reaches(s.level, threshold):
            return None
        how = "markedly" if s.level == Level.LARGE else "somewhat"
        return (
            f"The cases as of {self.as_of} differ {how} from the cases the model was trained on "
            f"(largest PSI {s.max_psi:.2f}, in {', '.join(s.worst)}; score PSI {s.score_psi:.2f}). "
            "Its scores may be less reliable: retrain it on recent data."
        )

    @property
    def reference_window(self) -> str:
        dates = self.reference_dates
        return f"{len(dates)} dates {dates[0]}..{dates[-1]}" if dates else "dates not recorded"

    def describe(self) -> str:
        s = self.summary
        return (
            f"{self.n_current:,} cases as of {self.as_of} against {self.n_reference:,} training cases on "
            f"{self.reference_window}: {s.level.value} "
            f"(max PSI {s.max_psi:.3f}, mean {s.mean_psi:.3f}, {s.n_moderate} moderate, {s.n_large} large; "
            f"score PSI {s.score_psi:.3f})"
        )


def _dates_of(cases: pd.DataFrame) -> tuple[dt.date, ...]:
    if "as_of" not in (cases.index.names or []):
        return ()
    return tuple(d.date() for d in sorted(set(cases.index.get_level_values("as_of"))))


def drift_report(
    model: RiskModel,
    timeline: Timeline,
    as_of: dt.date,
    *,
    current: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
    max_reference_dates: int | None = None,
    settings: DriftSettings = DEFAULT_DRIFT,
) -> DriftReport:
    """PSI of every model feature and of the score: the cases as of `as_of` against the training cases.

    Both are computed from `timeline` unless given: `current` (the cases as of
    the date, e.g. those a service already scored) and `reference` (e.g. the
    training cases of another data set).
    """
    if reference is None:
        reference = reference_cases(model, timeline, max_reference_dates)
    if current is None:
        current = features_from_timeline(timeline, [as_of])
    if current.empty:
        raise ValueError(f"no cases as of {as_of}: nothing to compare")
    table = feature_drift(reference, current, model.feature_names, settings)
    summary = summarise_drift(table, score_drift(model, reference, current, settings.bins), settings)
    return DriftReport(as_of, _dates_of(reference), len(reference), len(current), table, summary)
