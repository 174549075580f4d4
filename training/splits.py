"""Temporal design (as in dssg/triage's timechop): which as-of dates train, validate and test.

With horizon H and cut-off C (labels known up to C + H):
- test: the cases as of C, labelled by inspections in (C, C + H];
- validation: the cases on `validation_dates` as-of dates every `stride_days`
  ending at C - H (their labels end on or before C, before any test label);
- training: as-of dates every `stride_days` going back from the first validation
  date minus H (their labels end on or before it), at most `max_train_dates`.
No training label peeks into the validation or test windows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TemporalSplit:
    train_dates: tuple[dt.date, ...]
    validation_dates: tuple[dt.date, ...]
    test_date: dt.date
    horizon_days: int

    def window(self) -> dict[str, object]:
        """The trained-on window as ISO dates: the training as-of dates, validation end, test."""
        return {
            "train_dates": [d.isoformat() for d in self.train_dates],
            "train_first": self.train_dates[0].isoformat(),
            "train_last": self.train_dates[-1].isoformat(),
            "validation_last": self.validation_dates[-1].isoformat(),
            "test_date": self.test_date.isoformat(),
        }

    def describe(self) -> str:
        train, valid = self.train_dates, self.validation_dates
        return (
            f"train {len(train)} as-of dates {train[0]}..{train[-1]}, "
            f"validation {len(valid)} dates {valid[0]}..{valid[-1]}, "
            f"test {self.test_date} (horizon {self.horizon_days} days)"
        )


def default_cutoff(last_date: dt.date, horizon_days: int) -> dt.date:
    """The latest as-of date whose full label window lies inside the data."""
    return last_date - dt.timedelta(days=horizon_days)


def temporal_split(
    first_date: dt.date,
    cutoff: dt.date,
    horizon_days: int,
    stride_days: int,
    max_train_dates: int,
    warmup_days: int = 180,
    validation_dates: int = 3,
) -> TemporalSplit:
    """As-of dates for training, validation and test; raises if the data are too short.

    `stride_days` and `max_train_dates`: the training settings' (`TrainingSettings`)."""
    if min(horizon_days, stride_days, max_train_dates, validation_dates) < 1:
        raise ValueError("horizon, stride and numbers of dates must be positive")
    last_validation = cutoff - dt.timedelta(days=horizon_days)
    validation = tuple(
        last_validation - dt.timedelta(days=stride_days * i) for i in reversed(range(validation_dates))
    )
    last_train = validation[0] - dt.timedelta(days=horizon_days)
    earliest = first_date + dt.timedelta(days=warmup_days)
    dates = [
        d.date()
        for d in pd.date_range(end=pd.Timestamp(last_train), periods=max_train_dates, freq=f"{stride_days}D")
        if d.date() >= earliest
    ]
    if not dates:
        needed = warmup_days + 2 * horizon_days + stride_days * (validation_dates - 1)
        raise ValueError(
            f"the data span {first_date}..{cutoff + dt.timedelta(days=horizon_days)} is too short for "
            f"horizon {horizon_days} days: training needs about {needed} days of history before the cut-off"
        )
    return TemporalSplit(tuple(dates), validation, cutoff, horizon_days)
