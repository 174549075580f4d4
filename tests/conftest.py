"""Shared fixtures: the hand-built tiny world (tests/tiny_world.py) and a small simulated world.

The simulated world is made once per test session and written to a temporary
directory in parquet, so the slow end-to-end tests share it.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# A world big enough for a model to learn from (about 1,500 labelled training cases), small enough
# for CI: about 2 s to simulate, under a minute to train.
SMALL_WORLD = {"persons": 15_000, "seed": 11, "start": dt.date(2022, 1, 1), "end": dt.date(2025, 12, 31)}


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from features.tables import write_tables, write_truth
    from simulator.world import WorldConfig, simulate_world

    world = simulate_world(WorldConfig(**SMALL_WORLD))  # type: ignore[arg-type]
    out = tmp_path_factory.mktemp("small_world")
    write_tables(world.tables, out, "parquet")
    write_truth(world.truth, out, "parquet")
    return out
