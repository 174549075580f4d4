"""Evaluation only: the simulator's hidden ground truth (`_truth/`), where a data set has it.

Nothing in features, training or ranking imports this module; only the
evaluation reads it, to say what a list would really find (view c).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import TRUTH, TRUTH_DIR
from features.pipeline import to_day
from features.tables import typed_frame
from features.timeline import NEVER, codes_of, day_numbers


def load_truth(data_dir: Path) -> pd.DataFrame | None:
    """The ground-truth violation intervals, or None when the data set has none."""
    folder = data_dir / TRUTH_DIR
    for suffix, reader in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
        path = folder / f"{TRUTH.name}{suffix}"
        if path.exists():
            return typed_frame(TRUTH, reader(path))
    return None


def truth_labels(truth: pd.DataFrame, cases: pd.Index, horizon_days: int) -> pd.Series:
    """For each (person_id, as_of) case: was the person in violation at any time in (T, T+H]?"""
    person_ids = pd.Index(cases.get_level_values("person_id").unique())
    person = codes_of(truth["person_id"], person_ids)
    start = day_numbers(truth["start_date"])
    end = day_numbers(truth["end_date"], missing=NEVER)
    out = np.zeros(len(cases), dtype=bool)
    case_person = codes_of(pd.Series(cases.get_level_values("person_id")), person_ids)
    case_day = np.array([to_day(d) for d in cases.get_level_values("as_of").unique()])
    as_of_days = day_numbers(pd.Series(cases.get_level_values("as_of")))
    for t in case_day:
        overlaps = (person >= 0) & (start <= t + horizon_days) & (end > t)
        in_violation = np.zeros(len(person_ids), dtype=bool)
        in_violation[person[overlaps]] = True
        rows = as_of_days == t
        out[rows] = in_violation[case_person[rows]]
    return pd.Series(out, index=cases, name="truth")
