"""Removal from the country after a finding: an exit on the removal day, nothing of the person after."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.agency import AgencyReports
from simulator.movements import Crossings, Presence
from simulator.period import NEVER, IntArray, Period
from simulator.permits import PermitRows
from simulator.persons import Persons
from simulator.violations import Truth


@dataclass(frozen=True)
class AfterRemovals:
    crossings: Crossings
    presence: Presence
    permits: PermitRows
    reports: AgencyReports
    truth: Truth


def apply_removals(
    removed: IntArray,
    persons: Persons,
    crossings: Crossings,
    presence: Presence,
    permits: PermitRows,
    reports: AgencyReports,
    truth: Truth,
    period: Period,
) -> AfterRemovals:
    """Cut every removed person's records at their removal day (removals after the period are ignored)."""
    removed = np.where(removed > period.end, NEVER, removed)
    people = np.flatnonzero(removed < NEVER)
    on_day = removed[people]
    leaving = presence.contains(people, on_day)
    cut_at = removed[crossings.person]
    keep = (crossings.day < cut_at) | (
        (crossings.day == cut_at) & ~crossings.is_in
    )  # an own exit that day stays
    person = np.concatenate([crossings.person[keep], people[leaving]])
    day = np.concatenate([crossings.day[keep], on_day[leaving]])
    is_in = np.concatenate([crossings.is_in[keep], np.zeros(int(leaving.sum()), dtype=bool)])
    port = np.concatenate([crossings.port[keep], persons.port[people[leaving]]])
    order = np.lexsort((is_in, day, person))
    new_crossings = Crossings(person[order], day[order], is_in[order], port[order])

    cut = removed[presence.person]
    alive = presence.start < cut
    new_presence = Presence(
        presence.person[alive],
        presence.start[alive],
        np.minimum(presence.stop, cut)[alive],
        presence.n_persons,
    )

    p_cut = removed[permits.person]
    kept = permits.take(permits.issue < p_cut)
    k_cut = removed[kept.person]
    cancel_now = (k_cut < NEVER) & (kept.expiry >= k_cut) & (kept.cancelled > k_cut)
    new_permits = kept.with_cancelled(np.where(cancel_now, k_cut, kept.cancelled))

    r_cut = np.where(reports.person >= 0, removed[np.maximum(reports.person, 0)], NEVER)
    new_reports = reports.take(reports.day < r_cut)

    t_cut = removed[truth.person]
    live = truth.take(truth.start < t_cut)
    live_cut = removed[live.person]
    new_truth = Truth(
        live.person,
        live.type,
        live.start,
        np.where(live_cut < NEVER, np.minimum(live.end, live_cut - 1), live.end),
    )
    return AfterRemovals(new_crossings, new_presence, new_permits, new_reports, new_truth)
