"""Shared fixtures: the hand-built tiny world (tests/tiny_world.py) and a small simulated world.

The simulated world is made once per test session and written to a temporary
directory in parquet, so the slow end-to-end tests share it.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# A world big enough for a model to learn from (about 1,500 labelled training cases), small enough
# for CI: about 2 s to simulate, under a minute to train.
HEADER_TIMEOUT_S = 3.0  # the live service closes a connection that sends no request headers in this time
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


@dataclass
class LiveService:
    """A real `timpora serve` process on loopback with a trained champion and one key per role."""

    url: str
    keys: dict[str, str]
    audit_path: Path
    keys_path: Path
    data_dir: Path
    env: dict[str, str]
    model_version: str
    log_path: Path


@pytest.fixture(scope="session")
def live_service(small_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """Train and promote a champion on the small world, then start `timpora serve` as a subprocess."""
    from models.mlflow_store import TrackingConfig, quiet_mlflow
    from serving.keys import KeyStore, Role
    from serving.process import free_port, running_service, serve_command
    from training.model_registry import promote
    from training.train import TrainOptions
    from training.workflow import run_training

    quiet_mlflow()
    root = tmp_path_factory.mktemp("live_service")
    tracking = TrackingConfig(tracking_uri=f"sqlite:///{root}/mlflow.db", artifact_root=root / "artifacts")
    run = run_training(small_world_dir, TrainOptions(), tracking)
    assert run.version is not None, run.gate_failures
    assert promote(tracking).promoted
    store = KeyStore(root / "keys.json")
    keys = {role.value: store.create(role, f"test-{role.value}")[1] for role in Role}
    env = {
        **os.environ,
        "TIMPORA_TRACKING_URI": tracking.tracking_uri,
        "TIMPORA_ARTIFACT_ROOT": str(tracking.artifact_root),
        "TIMPORA_KEYS_FILE": str(root / "keys.json"),
        "TIMPORA_AUDIT_LOG": str(root / "audit.jsonl"),
        "BENTOML_HOME": str(root / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "TIMPORA_SERVING__HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
    }
    log_path = root / "service.log"
    port = free_port()
    with running_service(serve_command(small_world_dir, port), env, port, log_path) as service:
        yield LiveService(
            url=service.url,
            keys=keys,
            audit_path=root / "audit.jsonl",
            keys_path=root / "keys.json",
            data_dir=small_world_dir,
            env=env,
            model_version=run.version,
            log_path=log_path,
        )
