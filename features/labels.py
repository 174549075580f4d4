"""Labels: did an inspection in (T, T+H] find a violation? No inspection means no label."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.contract import TRIGGER
from features.grouping import count_by, max_by
from features.pipeline import INDEX_NAMES, to_day
from features.snapshot import take_snapshot
from features.tables import Tables
from features.timeline import Timeline, build_timeline, codes_of, day_numbers

RANDOM = TRIGGER.index("RANDOM")
TIP = TRIGGER.index("TIP")
TRIGGERS_SORTED = tuple(sorted(TRIGGER))
# Every subset of triggers, indexed by its bit mask, written as in the `triggers` column.
TRIGGER_SETS = np.array(
    [
        "|".join(t for bit, t in enumerate(TRIGGERS_SORTED) if mask >> bit & 1)
        for mask in range(2 ** len(TRIGGER))
    ],
    dtype=object,
)


def build_labels(
    tables: Tables,
    as_of_dates: Sequence[dt.date | pd.Timestamp | str],
    horizon_days: int,
    timeline: Timeline | None = None,
) -> pd.DataFrame:
    """One row per case (person in the country on T) and as-of date, indexed like the features.

    Columns: `inspected` (any inspection in (T, T+H]), `label` (violation found;
    <NA> when not inspected: selective labels are not negatives),
    `random_inspected` and `random_label` (the same for RANDOM inspections only,
    the unbiased sample), `untipped_inspected` and `untipped_label` (the same without
    TIP-triggered inspections: a list made on T cannot know of a tip that comes later),
    `triggers` (the window's triggers, '|'-joined) and
    `selection_propensity` (the smallest logged propensity in the window; NaN if none).
    Pass the `timeline` of the same tables to reuse it.
    """
    if horizon_days < 1:
        raise ValueError("horizon_days must be at least 1")
    if timeline is None:
        timeline = build_timeline(tables)
    n = timeline.n_persons
    frame = tables.inspections
    person = codes_of(frame["person_id"], timeline.person_ids)
    day = day_numbers(frame["inspection_date"])
    found = frame["violation_found"].to_numpy(dtype=bool)
    trigger = frame["trigger"].astype("str").to_numpy(dtype=object)
    is_random = trigger == TRIGGER[RANDOM]
    is_tip = trigger == TRIGGER[TIP]
    propensity = frame["selection_propensity"].to_numpy(dtype=np.float64, na_value=np.nan)
    rows = []
    for t in sorted({to_day(d) for d in as_of_dates}):
        cases = np.flatnonzero(take_snapshot(timeline, t).is_case)
        window = (day > t) & (day <= t + horizon_days)
        inspected = count_by(person, n, window)[cases] > 0
        hit = count_by(person, n, window & found)[cases] > 0
        random_inspected = count_by(person, n, window & is_random)[cases] > 0
        random_hit = count_by(person, n, window & is_random & found)[cases] > 0
        untipped_inspected = count_by(person, n, window & ~is_tip)[cases] > 0
        untipped_hit = count_by(person, n, window & ~is_tip & found)[cases] > 0
        min_propensity = -max_by(person, -propensity, n, window & ~np.isnan(propensity))[cases]
        # Which triggers occurred per case, as a bit mask over the (alphabetical) vocabulary,
        # then one vectorised lookup of the '|'-joined names: no per-person Python work.
        mask = np.zeros(len(cases), dtype=np.int64)
        for bit, name in enumerate(TRIGGERS_SORTED):
            mask |= (count_by(person, n, window & (trigger == name))[cases] > 0).astype(np.int64) << bit
        triggers = TRIGGER_SETS[mask]
        block = pd.DataFrame(
            {
                "inspected": inspected,
                "label": pd.array(np.where(inspected, hit, False), dtype="boolean"),
                "random_inspected": random_inspected,
                "random_label": pd.array(random_hit, dtype="boolean"),
                "untipped_inspected": untipped_inspected,
                "untipped_label": pd.array(untipped_hit, dtype="boolean"),
                "triggers": pd.array(triggers, dtype="str"),
                "selection_propensity": min_propensity,
            }
        )
        block.loc[~inspected, "label"] = pd.NA
        block.loc[~random_inspected, "random_label"] = pd.NA
        block.loc[~untipped_inspected, "untipped_label"] = pd.NA
        as_of = pd.DatetimeIndex(np.full(len(cases), t).astype("datetime64[D]").astype("datetime64[s]"))
        block.index = pd.MultiIndex.from_arrays(
            [pd.Index(timeline.person_ids[cases], dtype="str"), as_of], names=INDEX_NAMES
        )
        rows.append(block)
    return pd.concat(rows)
