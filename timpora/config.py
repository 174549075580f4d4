"""Configuration in one place: defaults that run on a laptop, read once at the edge."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class SimulationDefaults:
    """The embedded world `make run` simulates."""

    persons: int = 20_000
    seed: int = 7
    start: dt.date = dt.date(2022, 1, 1)
    end: dt.date = dt.date(2026, 6, 30)


@dataclass(frozen=True)
class Settings:
    simulation: SimulationDefaults = SimulationDefaults()
    horizon_days: int = 90  # label window: a violation found within H days after T


SETTINGS = Settings()
