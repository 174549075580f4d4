"""Inspections month by month: who is picked (`selection`), what is found (`outcomes`).

Each month the office runs its site visits, targeting rule and tip follow-ups,
and draws a uniformly random sample sized to keep RANDOM at 5% of all
inspections. Consequences of findings (removals, corrections) take effect from
the next month, so later selection sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import ACTION, TRIGGER, VIOLATION_TYPE
from simulator.agency import AgencyReports
from simulator.ids import decode, make_ids
from simulator.labour import LabourFindings
from simulator.movements import Presence
from simulator.outcomes import Inspections, apply_consequences, assess
from simulator.period import (
    NEVER,
    BoolArray,
    FloatArray,
    IntArray,
    Period,
    concat_rows,
    to_datetimes,
)
from simulator.permits import PermitRows
from simulator.selection import Picks, draw_random, routine_picks, schedule_tips, targeted_picks
from simulator.sponsors import Sponsors
from simulator.violations import Truth

RANDOM, TARGETED, TIP, ROUTINE = (TRIGGER.index(t) for t in ("RANDOM", "TARGETED", "TIP", "ROUTINE"))
RANDOM_SHARE = 0.05
RANDOM_DAYS_PER_MONTH = 4


@dataclass(frozen=True)
class InspectionOutcome:
    inspections: Inspections
    truth: Truth  # with violation ends moved where a finding put things right
    removed: IntArray  # per person: day of removal from the country, NEVER if none
    tip_person: IntArray  # follow-ups of reports about persons, for the whole period (sorted by day)
    tip_day: IntArray


def run_inspections(
    presence: Presence,
    truth: Truth,
    permits: PermitRows,
    sponsors: Sponsors,
    reports: AgencyReports,
    labour: LabourFindings,
    period: Period,
    rng: np.random.Generator,
    until: int | None = None,
) -> InspectionOutcome:
    """All inspections of the period, month by month (about 12 steps a year).

    With `until` (a day number), only the months that start before it are run:
    the random draws up to there are the same as for the whole period, so the
    office's inspections before `until` and their consequences are those of the
    full world, and nothing the office would have done later has happened.
    """
    n = presence.n_persons
    end = truth.end.copy()
    removed = np.full(n, NEVER, dtype=np.int64)
    last_inspected = np.full(n, -NEVER, dtype=np.int64)
    tip_person, tip_day = schedule_tips(reports, rng)
    done: list[Inspections] = []
    others_so_far = random_so_far = 0
    for month in _months(period):
        if until is not None and month[0] >= until:
            break
        present = presence.on(month[0], removed)
        routine = routine_picks(present, permits, sponsors, labour, reports, month, rng)
        targeted = targeted_picks(present, last_inspected, removed, truth, end, permits, reports, month, rng)
        lo, hi = (
            np.searchsorted(tip_day, month[0], side="left"),
            np.searchsorted(tip_day, month[1], side="right"),
        )
        tips = Picks(tip_person[lo:hi], tip_day[lo:hi], np.full(hi - lo, -1, dtype=np.int64))
        picks, trigger = _join([tips, targeted, routine], [TIP, TARGETED, ROUTINE])
        keep = presence.contains(picks.person, picks.day) & (picks.day < removed[picks.person])
        picks, trigger = _take(picks, keep), trigger[keep]
        others_so_far += len(picks)
        wanted = round(RANDOM_SHARE / (1 - RANDOM_SHARE) * others_so_far) - random_so_far
        random_picks, propensity = _random_picks(presence, removed, month, max(wanted, 0), rng)
        random_so_far += len(random_picks)
        picks, trigger = _join([random_picks, picks], [RANDOM, trigger])
        propensity = np.r_[propensity, np.full(len(picks) - len(propensity), np.nan)]
        first = _first_per_person_day(picks)  # random draws come first and win ties
        month_done = assess(_take(picks, first), trigger[first], propensity[first], truth, end, rng)
        apply_consequences(month_done, truth, end, removed, month[1] + 1, rng)
        np.maximum.at(last_inspected, month_done.person, month_done.day)
        done.append(month_done)
    joined = concat_rows(Inspections, done)
    order = np.lexsort((joined.person, joined.trigger, joined.day))
    new_truth = Truth(truth.person, truth.type, truth.start, end)
    return InspectionOutcome(joined.take(order), new_truth, removed, tip_person, tip_day)


def calendar_months(period: Period) -> list[tuple[int, int]]:
    """The (first, last) day numbers of each calendar month of the period, clipped to it."""
    return _months(period)


def _months(period: Period) -> list[tuple[int, int]]:
    first = np.datetime64(period.start, "D").astype("datetime64[M]")
    last = np.datetime64(period.end, "D").astype("datetime64[M]")
    starts = np.arange(first, last + 1).astype("datetime64[D]").astype(np.int64)
    ends = np.r_[starts[1:] - 1, period.end]
    return [(max(int(s), period.start), int(e)) for s, e in zip(starts, ends, strict=True)]


def _random_picks(
    presence: Presence, removed: IntArray, month: tuple[int, int], n: int, rng: np.random.Generator
) -> tuple[Picks, FloatArray]:
    """`n` uniform draws from the cases of a few random days of the month, with their propensity."""
    span = month[1] - month[0] + 1
    k = min(RANDOM_DAYS_PER_MONTH, n, span)
    days = np.sort(month[0] + rng.choice(span, size=k, replace=False)) if k else np.zeros(0, dtype=np.int64)
    per_day = rng.multinomial(n, np.full(k, 1.0 / k)) if k else np.zeros(0, dtype=np.int64)
    people, when, propensity = [], [], []
    for day, count in zip(days, per_day, strict=True):  # at most four days
        drawn, p = draw_random(presence.on(int(day), removed), int(count), rng)
        people.append(drawn)
        when.append(np.full(len(drawn), day, dtype=np.int64))
        propensity.append(np.full(len(drawn), p))
    if not people:
        return Picks(*(np.zeros(0, dtype=np.int64) for _ in range(3))), np.zeros(0)
    person = np.concatenate(people)
    return Picks(person, np.concatenate(when), np.full(len(person), -1, dtype=np.int64)), np.concatenate(
        propensity
    )


def _join(parts: list[Picks], triggers: list[int | IntArray]) -> tuple[Picks, IntArray]:
    trigger = np.concatenate(
        [
            np.full(len(p), t, dtype=np.int64) if isinstance(t, int) else t
            for p, t in zip(parts, triggers, strict=True)
        ]
    )
    joined = concat_rows(Picks, parts)
    return joined, trigger


def _take(picks: Picks, index: IntArray | BoolArray) -> Picks:
    return Picks(picks.person[index], picks.day[index], picks.sponsor[index])


def _first_per_person_day(picks: Picks) -> IntArray:
    """Positions of the first pick of each (person, day), in their original order."""
    key = picks.person * np.int64(2**32) + picks.day
    _, first = np.unique(key, return_index=True)
    return np.sort(first)


def inspections_frame(
    inspections: Inspections, person_ids: pd.Series, sponsor_ids: pd.Series
) -> pd.DataFrame:
    """The inspections table (contract columns); ids follow the row order."""
    return pd.DataFrame(
        {
            "inspection_id": make_ids("IN", len(inspections), 7),
            "person_id": person_ids.to_numpy()[inspections.person],
            "sponsor_id": decode(sponsor_ids.to_numpy(dtype=object), inspections.sponsor),
            "inspection_date": to_datetimes(inspections.day),
            "trigger": np.array(TRIGGER, dtype=object)[inspections.trigger],
            "violation_found": inspections.found,
            "violation_type": decode(VIOLATION_TYPE, inspections.violation),
            "action": np.array(ACTION, dtype=object)[inspections.action],
            "selection_propensity": inspections.propensity,
        }
    )
