"""Permit rows as integer-coded arrays, and the permits table built from them."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from features.contract import PERMIT_TYPE
from simulator.ids import decode, make_ids
from simulator.period import BoolArray, IntArray, concat_rows, to_datetimes
from simulator.reference import DISTRICTS, POSITIONS, VISA_INDEX

VOA, VISIT, ITAS_WORK, ITAS_INVESTOR, ITAS_FAMILY, ITAS_STUDY, ITAS_RETIREMENT, ITAP = range(len(PERMIT_TYPE))


@dataclass(frozen=True)
class PermitRows:
    """One entry per permit; -1 codes and `NEVER` days are nulls."""

    person: IntArray
    sponsor: IntArray
    type: IntArray  # code in PERMIT_TYPE
    visa: IntArray  # code in VISA_INDEX
    position: IntArray  # code in POSITIONS
    work_district: IntArray  # code in DISTRICTS
    issue: IntArray
    expiry: IntArray
    cancelled: IntArray

    def __len__(self) -> int:
        return len(self.person)

    def take(self, index: IntArray | BoolArray) -> PermitRows:
        """The rows at `index` (positions or a boolean mask)."""
        return PermitRows(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def with_cancelled(self, cancelled: IntArray) -> PermitRows:
        return replace(self, cancelled=cancelled)


def concat_permits(parts: list[PermitRows]) -> PermitRows:
    """All parts' rows, in order."""
    return concat_rows(PermitRows, parts)


def sort_permits(rows: PermitRows) -> PermitRows:
    """Rows ordered by person, then issue date (stable)."""
    return rows.take(np.lexsort((rows.issue, rows.person)))


def visa_code(name: str) -> int:
    return VISA_INDEX.index(name)


def permits_frame(rows: PermitRows, person_ids: pd.Series, sponsor_ids: pd.Series) -> pd.DataFrame:
    """The permits table (contract columns); ids follow the row order."""
    return pd.DataFrame(
        {
            "permit_id": make_ids("PM", len(rows), 7),
            "person_id": person_ids.to_numpy()[rows.person],
            "sponsor_id": decode(sponsor_ids.to_numpy(dtype=object), rows.sponsor),
            "permit_type": np.array(PERMIT_TYPE, dtype=object)[rows.type],
            "visa_index": decode(VISA_INDEX, rows.visa),
            "position": decode(POSITIONS, rows.position),
            "work_district": decode(DISTRICTS, rows.work_district),
            "issue_date": to_datetimes(rows.issue),
            "expiry_date": to_datetimes(rows.expiry),
            "cancelled_date": to_datetimes(rows.cancelled),
        }
    )
