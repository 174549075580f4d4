"""What an inspection finds, and what follows from a finding.

An inspection of a person in violation notices it with a type-dependent
probability; the highest-priority violation noticed is recorded. Findings have
consequences from the next month on: overstayers and deportees are removed (a
removal day), and after a fine or warning most put things right (the violation
interval ends).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from features.contract import ACTION
from simulator.intervals import pairs_by_person
from simulator.period import BoolArray, FloatArray, IntArray, categorical, uniform_days
from simulator.selection import Picks
from simulator.violations import (
    DOCUMENT_FRAUD,
    OTHER,
    OVERSTAY,
    PERMIT_MISUSE,
    UNAPPROVED_WORK,
    UNREPORTED_ADDRESS,
    Truth,
)

DEPORTATION, FINE, WARNING, NO_ACTION = (ACTION.index(a) for a in ("DEPORTATION", "FINE", "WARNING", "NONE"))
# By violation type code: chance an inspection notices it, and which one is reported first.
DETECTION = {
    OVERSTAY: 0.97,
    PERMIT_MISUSE: 0.75,
    UNAPPROVED_WORK: 0.75,
    UNREPORTED_ADDRESS: 0.8,
    DOCUMENT_FRAUD: 0.5,
    OTHER: 0.5,
}
PRIORITY = {
    OVERSTAY: 0,
    DOCUMENT_FRAUD: 1,
    PERMIT_MISUSE: 2,
    UNAPPROVED_WORK: 3,
    UNREPORTED_ADDRESS: 4,
    OTHER: 5,
}
# Action mix over (DEPORTATION, FINE, WARNING) by violation type; overstays follow the 60-day rule.
ACTIONS = {
    PERMIT_MISUSE: (0.5, 0.2, 0.3),
    UNAPPROVED_WORK: (0.15, 0.5, 0.35),
    UNREPORTED_ADDRESS: (0.0, 0.3, 0.7),
    DOCUMENT_FRAUD: (1.0, 0.0, 0.0),
    OTHER: (0.0, 0.0, 1.0),
}
OVERSTAY_DEPORTATION_DAYS = 60
CORRECTION_P = 0.7  # a fine or warning ends the violation


@dataclass(frozen=True)
class Inspections:
    """Inspection records; sponsor is -1 away from sponsor sites."""

    person: IntArray
    sponsor: IntArray
    day: IntArray
    trigger: IntArray
    found: BoolArray
    violation: IntArray  # code in VIOLATION_TYPE, -1 if none found
    action: IntArray
    propensity: FloatArray  # NaN unless RANDOM

    def __len__(self) -> int:
        return len(self.person)

    def take(self, index: IntArray | BoolArray) -> Inspections:
        return Inspections(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def assess(
    picks: Picks,
    trigger: IntArray,
    propensity: FloatArray,
    truth: Truth,
    end: IntArray,
    rng: np.random.Generator,
) -> Inspections:
    """Outcomes: the highest-priority violation that is going on and gets noticed, if any."""
    query, row = pairs_by_person(truth.person, picks.person)
    day = picks.day[query]
    ongoing = (truth.start[row] <= day) & (day <= end[row])
    detect = np.array([DETECTION[t] for t in sorted(DETECTION)])[truth.type[row]]
    noticed = ongoing & (rng.random(len(row)) < detect)
    rank = np.where(noticed, np.array([PRIORITY[t] for t in sorted(PRIORITY)])[truth.type[row]], 99)
    order = np.lexsort((rank, query))
    query, row, rank = query[order], row[order], rank[order]
    first = np.r_[True, query[1:] != query[:-1]] if len(query) else np.zeros(0, dtype=bool)
    best = first & (rank < 99)
    found_row = np.full(len(picks), -1, dtype=np.int64)
    found_row[query[best]] = row[best]
    found = found_row >= 0
    violation = np.where(found, truth.type[np.maximum(found_row, 0)], -1)
    action = _actions(violation, picks.day - truth.start[np.maximum(found_row, 0)] + 1, rng)
    return Inspections(picks.person, picks.sponsor, picks.day, trigger, found, violation, action, propensity)


def _actions(violation: IntArray, days_in: IntArray, rng: np.random.Generator) -> IntArray:
    mix = np.zeros((len(violation), 3))
    for vtype, probs in ACTIONS.items():
        mix[violation == vtype] = probs
    over = violation == OVERSTAY
    mix[over] = np.where((days_in[over] > OVERSTAY_DEPORTATION_DAYS)[:, None], (1.0, 0, 0), (0, 1.0, 0))
    action = np.full(len(violation), NO_ACTION, dtype=np.int64)
    found = violation >= 0
    action[found] = categorical(rng, mix[found], int(found.sum()))  # codes 0..2 = DEPORTATION, FINE, WARNING
    return action


def apply_consequences(
    done: Inspections,
    truth: Truth,
    end: IntArray,
    removed: IntArray,
    next_month: int,
    rng: np.random.Generator,
) -> None:
    """Removals and corrections, effective from the next month on (updates `end` and `removed`)."""
    leaves = done.found & ((done.action == DEPORTATION) | (done.violation == OVERSTAY))
    when = np.maximum(done.day[leaves] + uniform_days(rng, 3, 30, int(leaves.sum())), next_month)
    np.minimum.at(removed, done.person[leaves], when)
    fixes = done.found & ~leaves & (rng.random(len(done)) < CORRECTION_P)
    query, row = pairs_by_person(truth.person, done.person[fixes])
    match = truth.type[row] == done.violation[fixes][query]
    day = done.day[fixes][query]
    match &= (truth.start[row] <= day) & (day <= end[row])
    last = np.maximum(day + uniform_days(rng, 1, 30, len(row)), next_month) - 1
    np.minimum.at(end, row[match], last[match])
