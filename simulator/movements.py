"""Border crossings and who is in the country when.

Crossings come from residents' arrivals, trips abroad and departures, and from
visitors' trips. `Presence` is derived from those crossings with the contract's
case rule (the last crossing on or before a day decides; with none, a valid
permit does), so every later module agrees with the tables on who is a case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator.intervals import covering
from simulator.period import NEVER, BoolArray, IntArray, Period, categorical, repeat_counts, uniform_days
from simulator.persons import Persons
from simulator.reference import HUB_WEIGHTS, PORTS, weights_over
from simulator.residents import Stays
from simulator.visitors import Trips

TRIPS_ABROAD_PER_YEAR = np.array([1.2, 2.5, 1.0, 1.0, 1.5, 1.2])  # residents, by Role
HOME_PORT_SHARE = 0.8


@dataclass(frozen=True)
class Crossings:
    """Border crossings sorted by person, day, then exit before entry."""

    person: IntArray
    day: IntArray
    is_in: BoolArray
    port: IntArray  # code in PORTS

    def __len__(self) -> int:
        return len(self.person)


@dataclass(frozen=True)
class Presence:
    """Intervals [start, stop) in the country, sorted by person and start; stop is NEVER if open."""

    person: IntArray
    start: IntArray
    stop: IntArray
    n_persons: int

    def on(self, day: int, removed: IntArray | None = None) -> BoolArray:
        """Per person: in the country on `day` (and not yet removed, if removal days are given)."""
        hit = (self.start <= day) & (day < self.stop)
        mask = np.zeros(self.n_persons, dtype=bool)
        mask[self.person[hit]] = True
        if removed is not None:
            mask &= day < removed
        return mask

    def contains(self, person: IntArray, day: IntArray) -> BoolArray:
        """Per query: `person` is in the country on `day`."""
        return covering(self.person, self.start, self.stop - 1, person, day) >= 0


def resident_trips(
    stays: Stays, persons: Persons, period: Period, rng: np.random.Generator
) -> tuple[IntArray, IntArray, IntArray]:
    """Short trips abroad by residents: (person, exit day, return day), not overlapping.

    Residents present at the start who later overstay get at least one trip, so that
    an entry is on record and they stay cases after their permit ends.
    """
    lo = stays.start(period) + 20
    hi = stays.trip_window_end(period)
    rate = TRIPS_ABROAD_PER_YEAR[persons.role[stays.person]]
    count = np.where(hi - lo > 10, rng.poisson(rate * np.maximum(hi - lo, 0) / 365.0), 0)
    count = np.where(stays.overstay & ~stays.entered, np.maximum(count, 1), count)
    owner, _ = repeat_counts(count)
    out = uniform_days(rng, lo[owner], hi[owner], len(owner))
    back = out + uniform_days(rng, 3, 21, len(owner))
    order = np.lexsort((out, owner))
    owner, out, back = owner[order], out[order], back[order]
    # Drop a trip that starts before an earlier trip of the same person has returned.
    running = pd.Series(back).groupby(owner).cummax().to_numpy(dtype=np.int64)
    first = np.r_[True, owner[1:] != owner[:-1]][: len(owner)]
    prev = np.r_[-NEVER, running[:-1]][: len(owner)]
    keep = first | (out > prev + 1)
    return stays.person[owner[keep]], out[keep], back[keep]


def build_crossings(
    stays: Stays,
    trips: Trips,
    abroad: tuple[IntArray, IntArray, IntArray],
    persons: Persons,
    period: Period,
    rng: np.random.Generator,
) -> Crossings:
    """Every entry and exit, with the checkpoint used."""
    trip_person, trip_out, trip_back = abroad
    arrived, left = stays.entered, stays.departure < NEVER
    visitor_came, visitor_left = trips.entry >= period.start, trips.exit < NEVER
    person = np.concatenate(
        [
            stays.person[arrived],
            stays.person[left],
            trip_person,
            trip_person,
            trips.person[visitor_came],
            trips.person[visitor_left],
        ]
    )
    day = np.concatenate(
        [
            stays.first_issue[arrived],
            stays.departure[left],
            trip_out,
            trip_back,
            trips.entry[visitor_came],
            trips.exit[visitor_left],
        ]
    )
    is_in = np.concatenate(
        [
            np.ones(int(arrived.sum()), dtype=bool),
            np.zeros(int(left.sum()), dtype=bool),
            np.zeros(len(trip_person), dtype=bool),
            np.ones(len(trip_person), dtype=bool),
            np.ones(int(visitor_came.sum()), dtype=bool),
            np.zeros(int(visitor_left.sum()), dtype=bool),
        ]
    )
    order = np.lexsort((is_in, day, person))
    person, day, is_in = person[order], day[order], is_in[order]
    hub = categorical(rng, weights_over(PORTS, HUB_WEIGHTS), len(person))
    port = np.where(rng.random(len(person)) < HOME_PORT_SHARE, persons.port[person], hub)
    return Crossings(person, day, is_in, port)


def build_presence(
    crossings: Crossings, stays: Stays, trips: Trips, n_persons: int, period: Period
) -> Presence:
    """Presence intervals that follow the contract's case rule for these crossings.

    People in the country at the start without a recorded entry (residents, and
    visitors part-way through a trip) are in until their first crossing: their
    permits are valid throughout.
    """
    person, day, is_in = crossings.person, crossings.day, crossings.is_in
    # Padded with a sentinel row so that "the next crossing" always exists.
    padded_person, padded_day = np.append(person, -1), np.append(day, NEVER)
    stop = np.where(padded_person[1:] == person, padded_day[1:], NEVER)
    pre = np.concatenate([stays.person[~stays.entered], trips.person[trips.entry < period.start]])
    first_pos = np.searchsorted(person, pre, side="left")
    pre_stop = np.where(padded_person[first_pos] == pre, padded_day[first_pos], NEVER)
    all_person = np.concatenate([person[is_in], pre])
    all_start = np.concatenate([day[is_in], np.full(len(pre), period.start, dtype=np.int64)])
    all_stop = np.concatenate([stop[is_in], pre_stop])
    order = np.lexsort((all_start, all_person))
    return Presence(all_person[order], all_start[order], all_stop[order], n_persons)
