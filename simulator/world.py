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
from simulator.address import AddressReports, address_frame, draw_address_reports
from simulator.agency import (
    FALSE_TIP_MULTIPLIER,
    AgencyReports,
    FalseTipBias,
    agency_frame,
    draw_agency_reports,
)
from simulator.inspections import InspectionOutcome, inspections_frame, run_inspections
from simulator.labour import LabourFindings, draw_labour_findings, labour_frame
from simulator.movements import Crossings, Presence, build_crossings, build_presence, resident_trips
from simulator.period import Period
from simulator.permits import ITAS_WORK, PermitRows, concat_permits, permits_frame, sort_permits
from simulator.persons import Persons, draw_persons, person_ids, persons_frame
from simulator.reference import NATIONALITIES, PORTS
from simulator.removals import AfterRemovals, apply_removals
from simulator.residents import plan_residents
from simulator.sponsors import Sponsors, draw_sponsors, finalise_sponsors, sponsor_ids, sponsors_frame
from simulator.violations import Truth, draw_violations, truth_frame
from simulator.visitors import Trips, plan_visitors


@dataclass(frozen=True)
class WorldConfig:
    """What to simulate: how many persons, which seed, which period (inclusive).

    `false_tip_nationality` (ISO alpha-3) makes the public file `false_tip_multiplier`
    times as many false tips about that nationality: a world whose labelled view
    is biased toward whoever follows tips (the office rule). Off by default.
    """

    persons: int = 20_000  # the embedded world `make run` simulates
    seed: int = 7
    start: dt.date = dt.date(2022, 1, 1)
    end: dt.date = dt.date(2026, 6, 30)
    false_tip_nationality: str | None = None
    false_tip_multiplier: float = FALSE_TIP_MULTIPLIER

    def __post_init__(self) -> None:
        if self.false_tip_nationality is not None and self.false_tip_nationality not in NATIONALITIES:
            raise ValueError(
                f"unknown nationality {self.false_tip_nationality!r}: choose from {', '.join(NATIONALITIES)}"
            )
        if self.false_tip_multiplier < 1.0:
            raise ValueError(f"the false tip multiplier must be at least 1, got {self.false_tip_multiplier}")


@dataclass(frozen=True)
class World:
    """A simulated data set and its hidden ground truth (evaluation only)."""

    config: WorldConfig
    tables: Tables
    truth: pd.DataFrame


@dataclass(frozen=True)
class Drawn:
    """Everything drawn before the office inspects: the world as it would be without inspections."""

    period: Period
    persons: Persons
    sponsors: Sponsors
    trips: Trips
    permits: PermitRows
    crossings: Crossings
    presence: Presence
    truth: Truth
    reports: AgencyReports
    labour: LabourFindings

    @property
    def person_ids(self) -> pd.Series:
        return person_ids(self.persons.n)

    @property
    def sponsor_ids(self) -> pd.Series:
        return sponsor_ids(self.sponsors.n)


def draw_world(config: WorldConfig) -> tuple[Drawn, np.random.Generator]:
    """The world before any inspection, and the generator to continue with (inspections come next)."""
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
    bias = None
    if config.false_tip_nationality is not None:
        target = NATIONALITIES.index(config.false_tip_nationality)
        bias = FalseTipBias(persons.nationality, target, config.false_tip_multiplier)
    reports = draw_agency_reports(truth, presence, sponsors, period, rng, bias)
    labour = draw_labour_findings(sponsors, persons, truth, period, rng)
    drawn = Drawn(period, persons, sponsors, trips, permits, crossings, presence, truth, reports, labour)
    return drawn, rng


def inspect_world(drawn: Drawn, rng: np.random.Generator, until: int | None = None) -> InspectionOutcome:
    """The office's inspections (all, or those of the months before `until`) and their consequences."""
    d = drawn
    return run_inspections(
        d.presence, d.truth, d.permits, d.sponsors, d.reports, d.labour, d.period, rng, until
    )


def finish_world(
    drawn: Drawn, outcome: InspectionOutcome, rng: np.random.Generator
) -> tuple[AfterRemovals, AddressReports]:
    """Removals cut the records of removed persons; residence reports are drawn on what is left."""
    d = drawn
    after = apply_removals(
        outcome.removed, d.persons, d.crossings, d.presence, d.permits, d.reports, outcome.truth, d.period
    )
    addresses = draw_address_reports(
        d.persons,
        d.sponsors,
        d.trips,
        after.crossings,
        after.permits,
        after.presence,
        after.truth,
        d.period,
        rng,
    )
    return after, addresses


def world_tables(
    drawn: Drawn, after: AfterRemovals, addresses: AddressReports, inspections: pd.DataFrame
) -> Tables:
    """The contract tables of a world after removals, with the given inspections table."""
    pid, sid = drawn.person_ids, drawn.sponsor_ids
    return make_tables(
        {
            "persons": persons_frame(drawn.persons),
            "sponsors": sponsors_frame(drawn.sponsors),
            "permits": permits_frame(after.permits, pid, sid),
            "border_crossings": _crossings_frame(after.crossings, pid),
            "address_reports": address_frame(addresses, pid),
            "agency_reports": agency_frame(after.reports, pid, sid),
            "labour_violations": labour_frame(drawn.labour, sid),
            "inspections": inspections,
        }
    )


def simulate_world(config: WorldConfig) -> World:
    """Simulate the eight contract tables and the violation truth for `config`."""
    drawn, rng = draw_world(config)
    outcome = inspect_world(drawn, rng)
    after, addresses = finish_world(drawn, outcome, rng)
    pid, sid = drawn.person_ids, drawn.sponsor_ids
    tables = world_tables(drawn, after, addresses, inspections_frame(outcome.inspections, pid, sid))
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
