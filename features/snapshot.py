"""The state of every person as of one date T, from rows dated on or before T only.

A `Snapshot` holds what several feature families share: who is a case (in the
country on T), each person's current permit and sponsor, and how long their
permit cover lasts as known on T. Cancellations dated after T are unknown on T
and are ignored here. Its `timeline` is the timeline as known on T
(`Timeline.known_on`): rows and cancellations recorded after T are not in it,
so every family that reads `snapshot.timeline` sees only what was known on T.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.grouping import BoolArray, IntArray, last_index_by, take
from features.timeline import NEVER, Timeline


@dataclass(frozen=True)
class Snapshot:
    """Per-person state as of day `t` (days since the epoch); arrays over all persons."""

    timeline: Timeline  # as known on t
    t: int
    is_case: BoolArray
    current_permit: IntArray  # index into timeline.permits of the latest permit issued <= t; -1 if none
    current_sponsor: IntArray  # sponsor code of the current permit; -1 if none
    cover_end: IntArray  # last day covered by a permit as known on t; -NEVER if never had one
    last_entry: IntArray  # day of the latest IN crossing <= t; -NEVER if none

    @property
    def has_valid_permit(self) -> BoolArray:
        return self.cover_end >= self.t

    @property
    def has_permit(self) -> BoolArray:
        return self.current_permit >= 0


def take_snapshot(timeline: Timeline, t: int) -> Snapshot:
    """Who is in the country on day t and under which permit, as known on t."""
    timeline = timeline.known_on(t)
    n = timeline.n_persons
    permits = timeline.permits
    issued = permits.issue <= t
    current = last_index_by(permits.person, n, issued)
    # Cover end known on t: a cancellation dated after t is not yet known.
    known_end = np.where(
        permits.cancelled <= t, np.minimum(permits.cancelled, permits.expiry), permits.expiry
    )
    cover_end = np.full(n, -NEVER, dtype=np.int64)
    np.maximum.at(cover_end, permits.person[issued], known_end[issued])

    crossings = timeline.crossings
    crossed = crossings.day <= t
    last_crossing = last_index_by(crossings.person, n, crossed)
    last_is_in = take(crossings.is_in.astype(np.int64), last_crossing, -1)
    last_entry = last_index_by(crossings.person, n, crossed & crossings.is_in)
    is_case = (last_is_in == 1) | ((last_is_in == -1) & (cover_end >= t))
    return Snapshot(
        timeline=timeline,
        t=t,
        is_case=is_case,
        current_permit=current,
        current_sponsor=take(permits.sponsor, current, -1).astype(np.int64),
        cover_end=cover_end,
        last_entry=take(crossings.day, last_entry, -NEVER).astype(np.int64),
    )
