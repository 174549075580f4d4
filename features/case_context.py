"""Who and where a case is, for filtering lists: not model features, never in the matrix.

A case's district is where they last reported living on or before T; failing
that, their approved work district; failing that, their sponsor's district.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.contract import PERMIT_TYPE
from features.grouping import IntArray, last_index_by, take
from features.pipeline import INDEX_NAMES
from features.snapshot import Snapshot


def _names(codes: IntArray, vocabulary: npt.NDArray[np.object_]) -> pd.Series:
    """Codes to their names; -1 to missing."""
    names = vocabulary[np.maximum(codes, 0)] if len(vocabulary) else np.full(len(codes), None, dtype=object)
    names[codes < 0] = None
    return pd.Series(names, dtype="str")


def case_context(snapshot: Snapshot) -> pd.DataFrame:
    """District and current permit type of every case on the snapshot's date."""
    timeline = snapshot.timeline
    cases = np.flatnonzero(snapshot.is_case)
    addresses = timeline.addresses
    last = last_index_by(addresses.person, timeline.n_persons, addresses.day <= snapshot.t)
    district = take(addresses.district, last, -1)
    work = take(timeline.permits.work_district, snapshot.current_permit, -1)
    sponsor = take(timeline.sponsors.district, snapshot.current_sponsor, -1)
    district = np.where(district >= 0, district, np.where(work >= 0, work, sponsor))[cases]
    permit_type = take(timeline.permits.type, snapshot.current_permit, -1)[cases]
    as_of = np.full(len(cases), snapshot.t).astype("datetime64[D]").astype("datetime64[s]")
    frame = pd.DataFrame(
        {
            "district": _names(district, np.asarray(timeline.districts, dtype=object)),
            "permit_type": _names(permit_type, np.asarray(PERMIT_TYPE, dtype=object)),
        }
    )
    frame.index = pd.MultiIndex.from_arrays(
        [pd.Index(timeline.person_ids[cases], dtype="str"), pd.DatetimeIndex(as_of)], names=INDEX_NAMES
    )
    return frame
