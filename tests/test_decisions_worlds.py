"""Decisions taken in deployment mode (no `_truth/` on disk) on simulated worlds, checked against the
hidden truth afterwards: the truth is a check beside the decision, never its input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from features.tables import write_tables
from models.mlflow_store import TrackingConfig, quiet_mlflow
from models.office_rule import office_rule_scores
from models.order import rank_order
from simulator.world import WorldConfig, simulate_world
from training.evaluate import truth_labels
from training.train import TrainOptions
from training.workflow import run_training

pytestmark = pytest.mark.slow


def test_a_model_better_than_the_rule_is_registered_when_false_tips_bias_the_labels(tmp_path: Path) -> None:
    """False public tips concentrate on one nationality, so the labelled view is skewed toward whoever
    follows tips. Without the truth, the model is still registered; the truth agrees it beats the rule."""
    quiet_mlflow()
    world = simulate_world(
        WorldConfig(
            persons=15_000,
            seed=11,
            start=dt.date(2022, 1, 1),
            end=dt.date(2025, 12, 31),
            false_tip_nationality="CHN",
        )
    )
    data = tmp_path / "world"
    write_tables(world.tables, data, "parquet")  # no _truth/: deployment mode
    store = tmp_path / "store"
    tracking = TrackingConfig(tracking_uri=f"sqlite:///{store}/mlflow.db", artifact_root=store / "artifacts")
    outcome = run_training(data, TrainOptions(), tracking)
    assert outcome.version is not None, outcome.registration.render()
    assert all(e.truth is None for e in outcome.registration.evidence)  # nothing read the truth

    test = outcome.result.test
    k = outcome.result.capacity
    truly = truth_labels(world.truth, test.labels.index, outcome.result.split.horizon_days).to_numpy()
    ids = test.features.index.get_level_values("person_id").to_numpy(dtype=str)
    model_top = rank_order(outcome.result.model.score(test.features), ids)[:k]
    rule_top = rank_order(office_rule_scores(test.features), ids)[:k]
    assert np.mean(truly[model_top]) > np.mean(truly[rule_top])
