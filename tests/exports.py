"""A data set as an export made on a given day would hold it (shared by point-in-time tests)."""

from __future__ import annotations

import pandas as pd

from features.contract import TABLES
from features.tables import Tables


def as_known_on(tables: Tables, t: pd.Timestamp) -> Tables:
    """No row dated after t, and no cancellation that had not happened by t."""
    frames = {}
    for spec in TABLES:
        frame = tables[spec.name]
        if spec.event_date is not None:
            frame = frame[frame[spec.event_date] <= t]
        frames[spec.name] = frame
    permits = frames["permits"].copy()
    permits.loc[permits["cancelled_date"] > t, "cancelled_date"] = pd.NaT
    frames["permits"] = permits
    return tables.replace(**frames)
