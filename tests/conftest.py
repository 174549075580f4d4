"""Shared fixtures: the hand-built tiny world (tests/tiny_world.py) and a small simulated world.

The simulated world is made once per test session and written to a temporary
directory in parquet, so the slow end-to-end tests share it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 120
) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the service exited with {process.returncode}:\n{log_path.read_text()[-4000:]}"
            )
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the service was not ready within {timeout_s} s:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def live_service(small_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """Train and promote a champion on the small world, then start `timpora serve` as a subprocess."""
    from serving.keys import KeyStore, Role
    from training.pipeline import run_training
    from training.registry import promote
    from training.tracking import TrackingConfig, quiet_mlflow
    from training.train import TrainOptions

    quiet_mlflow()
    root = tmp_path_factory.mktemp("live_service")
    tracking = TrackingConfig(tracking_uri=f"sqlite:///{root}/mlflow.db", artifact_root=root / "artifacts")
    run = run_training(small_world_dir, TrainOptions(), tracking)
    assert run.version is not None, run.gate_failures
    assert promote(tracking).promoted
    store = KeyStore(root / "keys.json")
    keys = {role.value: store.create(role, f"test-{role.value}")[1] for role in Role}
    port = free_port()
    env = {
        **os.environ,
        "TIMPORA_TRACKING_URI": tracking.tracking_uri,
        "TIMPORA_ARTIFACT_ROOT": str(tracking.artifact_root),
        "TIMPORA_KEYS_FILE": str(root / "keys.json"),
        "TIMPORA_AUDIT_LOG": str(root / "audit.jsonl"),
        "BENTOML_HOME": str(root / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    log_path = root / "service.log"
    timpora = str(Path(sys.executable).parent / "timpora")
    command = [timpora, "serve", "--data", str(small_world_dir), "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process, log_path)
        yield LiveService(
            url=url,
            keys=keys,
            audit_path=root / "audit.jsonl",
            keys_path=root / "keys.json",
            data_dir=small_world_dir,
            env=env,
            model_version=run.version,
            log_path=log_path,
        )
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL after 20 s; a group that already exited is fine."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
