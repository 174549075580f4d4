"""Temporal design (as in dssg/triage's timechop): which as-of dates train, validate and test.

With horizon H and cut-off C (labels known up to C + H):
- test: the cases as of C, labelled by inspections in (C, C + H];
- validation: the cases as of C - H (their labels end on C, before any test label);
- training: as-of dates every `stride_days` going back from C - 2H (their labels
  end on or before the validation date), at most `max_train_dates` of them.
No training label peeks into the validation or test windows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TemporalSplit:
    train_dates: tuple[dt.date, ...]
    validation_date: dt.date
    test_date: dt.date
    horizon_days: int

    def describe(self) -> str:
        return (
            f"train {len(self.train_dates)} as-of dates {self.train_dates[0]}..{self.train_dates[-1]}, "
            f"validation {self.validation_date}, test {self.test_date} (horizon {self.horizon_days} days)"
        )


def default_cutoff(last_date: dt.date, horizon_days: int) -> dt.date:
    """The latest as-of date whose full label window lies inside the data."""
    return last_date - dt.timedelta(days=horizon_days)


def temporal_split(
    first_date: dt.date,
    cutoff: dt.date,
    horizon_days: int,
    stride_days: int = 30,
    max_train_dates: int = 12,
    warmup_days: int = 180,
) -> TemporalSplit:
    """As-of dates for training, validation and test; raises if the data are too short."""
    if horizon_days < 1 or stride_days < 1 or max_train_dates < 1:
        raise ValueError("horizon, stride and number of training dates must be positive")
    validation = cutoff - dt.timedelta(days=horizon_days)
    last_train = validation - dt.timedelta(days=horizon_days)
    earliest = first_date + dt.timedelta(days=warmup_days)
    dates = [
        d.date()
        for d in pd.date_range(end=pd.Timestamp(last_train), periods=max_train_dates, freq=f"{stride_days}D")
        if d.date() >= earliest
    ]
    if not dates:
        needed = warmup_days + 2 * horizon_days
        raise ValueError(
            f"the data span {first_date}..{cutoff + dt.timedelta(days=horizon_days)} is too short for "
            f"horizon {horizon_days} days: training needs about {needed} days of history before the cut-off"
        )
    return TemporalSplit(tuple(dates), validation, cutoff, horizon_days)
