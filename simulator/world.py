"""Simulate a world of foreign nationals, sponsors and inspections in the data contract's shape.

One `numpy.random.Generator` seeded from the config is threaded through every
step in a fixed order, so the same config always gives the same world.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import TRUTH
from features.tables import Tables, make_tables, typed_frame
from simulator.address import address_frame, draw_address_reports
from simulator.agency import agency_frame, draw_agency_reports
from simulator.inspections import inspections_frame, run_inspections
from simulator.labour import draw_labour_findings, labour_frame
from simulator.movements import Crossings, build_crossings, build_presence, resident_trips
from simulator.period import Period
from simulator.permits import ITAS_WORK, concat_permits, permits_frame, sort_permits
from simulator.persons import draw_persons, person_ids, persons_frame
from simulator.reference import PORTS
from simulator.removals import apply_removals
from simulator.residents import plan_residents
from simulator.sponsors import draw_sponsors, finalise_sponsors, sponsor_ids, sponsors_frame
from simulator.violations import draw_violations, truth_frame
from simulator.visitors import plan_visitors
from timpora.config import SETTINGS

_DEFAULTS = SETTINGS.simulation  # the embedded world, configured in one place


@dataclass(frozen=True)
class WorldConfig:
    """What to simulate: how many persons, which seed, which period (inclusive)."""

    persons: int = _DEFAULTS.persons
    seed: int = _DEFAULTS.seed
    start: dt.date = _DEFAULTS.start
    end: dt.date = _DEFAULTS.end


@dataclass(frozen=True)
class World:
    """A simulated data set and its hidden ground truth (evaluation only)."""

    config: WorldConfig
    tables: Tables
    truth: pd.DataFrame


def simulate_world(config: WorldConfig) -> World:
    """Simulate the eight contract tables and the violation truth for `config`."""
    if config.persons < 1:
        raise ValueError("a world needs at least one person")
    rng = np.random.default_rng(config.seed)
    period = Period.from_dates(config.start, config.end)
    sponsors = draw_sponsors(config.persons, period, rng)
    persons = draw_persons(config.persons, sponsors, period, rng)
    stays, resident_permits = plan_residents(persons, sponsors, period, rng)
    trips, visitor_permits = plan_visitors(persons, sponsors, period, rng)
    permits = sort_permits(concat_permits([resident_permits, visitor_permits]))
    sponsors = finalise_sponsors(
        sponsors, permits.person, permits.sponsor, permits.issue, permits.type == ITAS_WORK, rng
    )
    abroad = resident_trips(stays, persons, period, rng)
    crossings = build_crossings(stays, trips, abroad, persons, period, rng)
    presence = build_presence(crossings, stays, trips, persons.n, period)
    truth = draw_violations(persons, sponsors, stays, trips, period, rng)
    reports = draw_agency_reports(truth, presence, sponsors, period, rng)
    labour = draw_labour_findings(sponsors, persons, truth, period, rng)
    outcome = run_inspections(presence, truth, permits, sponsors, reports, labour, period, rng)
    after = apply_removals(
        outcome.removed, persons, crossings, presence, permits, reports, outcome.truth, period
    )
    addresses = draw_address_reports(
        persons, sponsors, trips, after.crossings, after.permits, after.presence, after.truth, period, rng
    )
    pid, sid = person_ids(persons.n), sponsor_ids(sponsors.n)
    tables = make_tables(
        {
            "persons": persons_frame(persons),
            "sponsors": sponsors_frame(sponsors),
            "permits": permits_frame(after.permits, pid, sid),
            "border_crossings": _crossings_frame(after.crossings, pid),
            "address_reports": address_frame(addresses, pid),
            "agency_reports": agency_frame(after.reports, pid, sid),
            "labour_violations": labour_frame(labour, sid),
            "inspections": inspections_frame(outcome.inspections, pid, sid),
        }
    )
    return World(config=config, tables=tables, truth=typed_frame(TRUTH, truth_frame(after.truth, pid)))


def _crossings_frame(crossings: Crossings, pid: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": pid.to_numpy()[crossings.person],
            "crossing_date": crossings.day.astype("datetime64[D]").astype("datetime64[s]"),
            "direction": np.where(crossings.is_in, "IN", "OUT").astype(object),
            "port": np.array(PORTS, dtype=object)[crossings.port],
        }
    )
