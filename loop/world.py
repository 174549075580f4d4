"""The loop's world side: the truth, and what an inspection finds in it.

`prepare_loop_world` simulates a world with the same draws as `simulate_world`
(same config, same seed) up to the office's inspections, and runs the office
only for the calendar months before the loop starts (`run_inspections(until=)`).
The random draws of those months are those of the full world, so the office's
inspections before the loop, and their removals and corrections, are exactly
the full world's. Nothing the office would have done later has happened: the
truth ends and removals that later office inspections would have caused are
never applied, rather than undone afterwards (undoing is not possible
exactly, because a removal also cuts crossings, permits and reports).

From there each policy keeps its own `LoopState` (truth ends, removal days,
generator): its inspections are assessed with the simulator's `assess` and
have the simulator's `apply_consequences` (removal, correction, from the next
month on), and the tables it sees are rebuilt from the drawn world with its
removals (`apply_removals`). The office still follows up the tips of partner
agencies (scheduled from reports in the full world), assessed on the policy's
state; tips about persons the policy has already removed do not happen.

Residence reports are drawn once, on the world after the office's pre-loop
removals; a policy's removals cut them like the other records. (A corrected
UNREPORTED_ADDRESS violation does not make the person report again: a small
simplification, the same for every policy.)

This side knows persons by their simulator codes; the office side knows them by
their ids only (`person_codes` translates, in the runner).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.contract import TRIGGER, TRUTH
from features.tables import Tables, typed_frame
from simulator.address import AddressReports
from simulator.inspections import TIP, calendar_months, inspections_frame
from simulator.intervals import covering
from simulator.outcomes import Inspections, apply_consequences, assess
from simulator.period import NEVER, FloatArray, IntArray, uniform_days
from simulator.removals import apply_removals
from simulator.selection import Picks
from simulator.violations import Truth, truth_frame
from simulator.world import Drawn, WorldConfig, draw_world, finish_world, inspect_world, world_tables

_EPOCH = np.datetime64("1970-01-01", "D")
TIP_TRIGGER = TRIGGER.index("TIP")


def to_date(day: int) -> dt.date:
    """A day number as a date."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day))


@dataclass(frozen=True)
class LoopWorld:
    """A world whose office stopped inspecting when the loop starts (see the module docstring)."""

    config: WorldConfig
    drawn: Drawn
    months: tuple[tuple[int, int], ...]  # the loop's calendar months: (first, last) day numbers
    office: Inspections  # the office's inspections before the loop
    removed: IntArray  # removal days caused by those inspections (NEVER if none)
    end: IntArray  # truth ends after their corrections (row-aligned with drawn.truth)
    tip_person: IntArray  # the office's tip follow-ups over the whole period, sorted by day
    tip_day: IntArray
    addresses: AddressReports

    @property
    def start(self) -> dt.date:
        """The first day of the loop (the first list is drawn as of this day)."""
        return to_date(self.months[0][0])

    @property
    def final(self) -> dt.date:
        """The day after the loop's last month: the date the policies' final models are compared on."""
        return to_date(self.months[-1][1] + 1)

    def office_frame(self) -> pd.DataFrame:
        """The office's inspections before the loop, as the contract's inspections table."""
        return inspections_frame(self.office, self.drawn.person_ids, self.drawn.sponsor_ids)

    def office_per_month(self, months: int = 12) -> float:
        """Non-TIP office inspections per month over the last `months` months before the loop (capacity)."""
        first = self.months[0][0]
        recent = (self.office.day >= first - 30 * months) & (self.office.trigger != TIP)
        return float(recent.sum()) / months


def prepare_loop_world(config: WorldConfig, months: int, horizon_days: int) -> LoopWorld:
    """Simulate `config` with the office inspecting only before the loop's `months` months.

    The loop's months are the calendar months that end before the final date, the
    first of the month holding `end - horizon_days`; so every case of the final
    date has a whole horizon of truth after it.
    """
    drawn, rng = draw_world(config)
    all_months = calendar_months(drawn.period)
    final = np.datetime64(config.end - dt.timedelta(days=horizon_days), "M").astype("datetime64[D]")
    final_day = int((final - _EPOCH).astype(np.int64))
    last = next((i for i, m in enumerate(all_months) if m[0] >= final_day), len(all_months)) - 1
    first = last - months + 1
    if first < 1:
        raise ValueError(
            f"the period is too short for a loop of {months} months and a {horizon_days}-day horizon"
        )
    loop_months = tuple(all_months[first : last + 1])
    outcome = inspect_world(drawn, rng, until=loop_months[0][0])
    _, addresses = finish_world(drawn, outcome, rng)
    return LoopWorld(
        config=config,
        drawn=drawn,
        months=loop_months,
        office=outcome.inspections,
        removed=outcome.removed,
        end=outcome.truth.end,
        tip_person=outcome.tip_person,
        tip_day=outcome.tip_day,
        addresses=addresses,
    )


@dataclass
class LoopState:
    """One policy's world as it goes: truth ends and removal days (updated in place), and its draws."""

    end: IntArray
    removed: IntArray
    rng: np.random.Generator

    @classmethod
    def start(cls, world: LoopWorld, seed: int | list[int]) -> LoopState:
        return cls(world.end.copy(), world.removed.copy(), np.random.default_rng(seed))


def person_codes(world: LoopWorld, ids: Sequence[str] | np.ndarray) -> IntArray:
    """The simulator's codes of persons given by id; RuntimeError for an id the world does not hold."""
    codes = pd.Index(world.drawn.person_ids).get_indexer(pd.Index(np.asarray(ids, dtype=str)))
    if (codes < 0).any():
        raise RuntimeError("a listed person is not in the simulated world")
    return codes.astype(np.int64)


def visit_days(state: LoopState, month: tuple[int, int], size: int) -> IntArray:
    """Visit days of a month's list, uniform after the list's as-of date (its first day)."""
    return uniform_days(state.rng, month[0] + 1, month[1], size)


def month_tips(world: LoopWorld, state: LoopState, month: tuple[int, int]) -> Picks:
    """The office's tip follow-ups of the month, of persons present and not removed on the day."""
    lo = np.searchsorted(world.tip_day, month[0], side="left")
    hi = np.searchsorted(world.tip_day, month[1], side="right")
    person, day = world.tip_person[lo:hi], world.tip_day[lo:hi]
    keep = world.drawn.presence.contains(person, day) & (day < state.removed[person])
    return Picks(person[keep], day[keep], np.full(int(keep.sum()), -1, dtype=np.int64))


def inspect_month(
    world: LoopWorld,
    state: LoopState,
    picks: Picks,
    trigger: IntArray,
    propensity: FloatArray,
    month: tuple[int, int],
) -> Inspections:
    """Assess the month's inspections on the policy's world and apply their consequences to it.

    A person removed before the visit is not found in violation (they are gone).
    Removals and corrections take effect from the next month, as in the simulator.
    """
    truth = world.drawn.truth
    live_end = np.minimum(state.end, state.removed[truth.person] - 1)
    done = assess(picks, trigger, propensity, truth, live_end, state.rng)
    apply_consequences(done, truth, state.end, state.removed, month[1] + 1, state.rng)
    return done


def _dedupe(picks: Picks) -> IntArray:
    """Positions of the first pick of each (person, day): a list visit and a tip the same day are one."""
    key = picks.person * np.int64(2**32) + picks.day
    _, first = np.unique(key, return_index=True)
    return np.sort(first)


def visit_month(
    world: LoopWorld,
    state: LoopState,
    person: IntArray,
    trigger: IntArray,
    propensity: FloatArray,
    list_id: str | None,
    month: tuple[int, int],
    keep_tips: bool,
) -> tuple[Inspections, np.ndarray]:
    """Visit the office's picks (and the month's tips), assess on the policy's world, apply consequences.

    Returns the inspections and, row-aligned, their list id (None for tips).
    """
    days = visit_days(state, month, len(person))
    parts_person, parts_day = [person], [days]
    triggers, propensities = [trigger], [propensity]
    list_ids = [np.full(len(person), list_id, dtype=object)]
    if keep_tips:
        tips = month_tips(world, state, month)
        parts_person.append(tips.person)
        parts_day.append(tips.day)
        triggers.append(np.full(len(tips), TIP_TRIGGER, dtype=np.int64))
        propensities.append(np.full(len(tips), np.nan))
        list_ids.append(np.full(len(tips), None, dtype=object))
    who, day = np.concatenate(parts_person), np.concatenate(parts_day)
    picks = Picks(who, day, np.full(len(who), -1, dtype=np.int64))
    first = _dedupe(picks)
    picks = Picks(who[first], day[first], picks.sponsor[first])
    done = inspect_month(
        world, state, picks, np.concatenate(triggers)[first], np.concatenate(propensities)[first], month
    )
    return done, np.concatenate(list_ids)[first]


def month_frame(world: LoopWorld, done: Inspections, list_ids: np.ndarray, tag: str) -> pd.DataFrame:
    """The month's inspections in the contract's columns, with `list_id` on LIST rows."""
    frame = inspections_frame(done, world.drawn.person_ids, world.drawn.sponsor_ids)
    frame["inspection_id"] = [f"LOOP-{tag}-{i:05d}" for i in range(len(frame))]
    frame["list_id"] = list_ids
    return frame


def state_tables(world: LoopWorld, state: LoopState, inspections: pd.DataFrame) -> Tables:
    """The contract tables as the policy's world has them (its removals applied)."""
    d = world.drawn
    removed = np.where(state.removed > d.period.end, NEVER, state.removed)
    after = apply_removals(
        removed, d.persons, d.crossings, d.presence, d.permits, d.reports, d.truth, d.period
    )
    a = world.addresses
    keep = a.day < removed[a.person]
    addresses = AddressReports(a.person[keep], a.day[keep], a.district[keep], a.reporter[keep])
    return world_tables(d, after, addresses, inspections)


def state_truth(world: LoopWorld, state: LoopState) -> Truth:
    """The policy's truth: violation intervals with its corrections, cut at its removals."""
    t = world.drawn.truth
    cut = np.where(state.removed[t.person] < NEVER, state.removed[t.person] - 1, NEVER)
    end = np.minimum(state.end, cut)
    keep = end >= t.start
    return Truth(t.person[keep], t.type[keep], t.start[keep], end[keep])


def state_truth_frame(world: LoopWorld, state: LoopState) -> pd.DataFrame:
    """The `_truth/` table of the policy's world (evaluation only)."""
    frame = truth_frame(state_truth(world, state), world.drawn.person_ids)
    return typed_frame(TRUTH, frame)


@dataclass(frozen=True)
class Episodes:
    """Continuous violation episodes: a person's overlapping or touching intervals merged, any type."""

    person: IntArray
    start: IntArray
    last: IntArray

    def __len__(self) -> int:
        return len(self.person)

    def of(self, person: IntArray, day: IntArray) -> IntArray:
        """Per (person, day): the episode holding the day, or -1."""
        return covering(self.person, self.start, self.last, person, day)


def episodes(truth: Truth) -> Episodes:
    """Merge each person's violation intervals into continuous episodes."""
    order = np.lexsort((truth.start, truth.person))
    person, start, last = truth.person[order], truth.start[order], truth.end[order]
    if len(person) == 0:
        return Episodes(person, start, last)
    new_person = np.r_[True, person[1:] != person[:-1]]
    # A new episode starts after a gap: past the latest end of the person's earlier intervals.
    running = pd.Series(last).groupby(person).cummax().to_numpy(dtype=np.int64)
    prev_last = np.r_[-NEVER, running[:-1]]
    begins = new_person | (start > prev_last + 1)
    firsts = np.flatnonzero(begins)
    return Episodes(person[firsts], start[firsts], np.maximum.reduceat(last, firsts).astype(np.int64))


# ---------------------------------------------------------------- what was found


COUNTED = ("inspections", "findings", "new_episodes", "repeats", "days_to_detection_sum")


def count_findings(
    world: LoopWorld, state: LoopState, inspections: pd.DataFrame, months: list[dict[str, Any]]
) -> None:
    """Per month: inspections, findings, new episodes and repeats, for the policy's picks and tips apart.

    `inspections` (with a `month` column, 1-based) gains the columns `episode`,
    `episode_start` and `tip`; each row of `months` (keyed by `month`) gains the counts.
    """
    found = episodes(state_truth(world, state))
    frame = inspections
    frame["episode"] = _episode_of(world, found, frame)
    frame["episode_start"] = np.where(
        frame["episode"].to_numpy() >= 0, found.start[np.maximum(frame["episode"].to_numpy(), 0)], -1
    )
    frame["tip"] = frame["trigger"].to_numpy() == "TIP"
    by_month = {row["month"]: row for row in months}
    for tip, prefix in ((False, ""), (True, "tip_")):
        part = frame[frame["tip"] == tip].sort_values(["inspection_date", "inspection_id"])
        hits = part[part["violation_found"].astype(bool)]
        first = ~hits["episode"].duplicated()
        days = (hits["inspection_date"] - pd.to_datetime(to_date(0))).dt.days - hits["episode_start"]
        for month, rows in part.groupby("month"):
            m_hits = hits["month"] == month
            by_month[int(str(month))].update(
                {
                    f"{prefix}inspections": len(rows),
                    f"{prefix}findings": int(m_hits.sum()),
                    f"{prefix}new_episodes": int((m_hits & first).sum()),
                    f"{prefix}repeats": int((m_hits & ~first).sum()),
                    f"{prefix}days_to_detection_sum": float(days[m_hits & first].sum()),
                }
            )
    for row in months:
        for prefix in ("", "tip_"):
            for name in COUNTED:
                row.setdefault(f"{prefix}{name}", 0)


def _episode_of(world: LoopWorld, found: Episodes, frame: pd.DataFrame) -> IntArray:
    person = person_codes(world, frame["person_id"].to_numpy(dtype=str))
    dates = pd.to_datetime(frame["inspection_date"]).to_numpy(dtype="datetime64[D]")
    day: IntArray = dates.astype(np.int64)
    episode = found.of(person, day)
    hit = frame["violation_found"].to_numpy(dtype=bool)
    if (episode[hit] < 0).any():
        raise RuntimeError("a finding lies outside every violation episode of the truth")
    return np.where(hit, episode, -1)
