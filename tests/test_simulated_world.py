"""Data tests on a simulated world: formats agree and the point-in-time law holds at scale."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from exports import as_known_on

from features.loading import load_valid_tables
from features.pipeline import build_features
from features.tables import Tables, write_tables
from simulator.world import WorldConfig, simulate_world

CONFIG = WorldConfig(persons=3_000, seed=5, start=dt.date(2023, 1, 1), end=dt.date(2025, 6, 30))
DATES = ["2024-03-31", "2024-12-31", "2025-06-30"]


@pytest.fixture(scope="module")
def world_tables() -> Tables:
    return simulate_world(CONFIG).tables


def test_csv_and_parquet_give_identical_features(world_tables: Tables, tmp_path: Path) -> None:
    matrices = []
    for fmt in ("csv", "parquet"):
        write_tables(world_tables, tmp_path / fmt, fmt)  # type: ignore[arg-type]
        matrices.append(build_features(load_valid_tables(tmp_path / fmt), DATES))
    pd.testing.assert_frame_equal(matrices[0], matrices[1])
    assert len(matrices[0]) > 1_000


@pytest.mark.parametrize("as_of", DATES[:2])
def test_features_equal_those_of_an_export_cut_at_t(world_tables: Tables, as_of: str) -> None:
    """Everything the simulator recorded after T, removed, changes no feature as of T."""
    t = pd.Timestamp(as_of)
    full = build_features(world_tables, [as_of])
    cut = build_features(as_known_on(world_tables, t), [as_of])
    pd.testing.assert_frame_equal(full, cut)
    assert full["overstay_now"].sum() > 0 and full["past_inspections_total"].sum() > 0
