"""A running service follows `promote` and `rollback`, and a locked registry is reported, not waited on.

A second `timpora serve` runs on a copy of the live service's registry (the
shared one keeps its version) with a second registered version of the same
model, made without retraining, and checks the champion alias every second.
The registry copy is then locked for real (an open SQLite transaction holding
`BEGIN EXCLUSIVE`): `timpora promote` answers in one line, the read side raises
RegistryBusyError, and `/model` answers at once from the details read before.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import LiveService

from models.mlflow_store import (
    CHALLENGER,
    CHAMPION,
    RegistryBusyError,
    TrackingConfig,
    tracking_client,
    version_details,
)
from serving.process import free_port, running_service, serve_command
from serving.schemas import ModelInfo
from training.model_registry import promote, rollback

pytestmark = pytest.mark.slow


@dataclasses.dataclass(frozen=True)
class FollowingService:
    service: LiveService
    tracking: TrackingConfig
    db_path: Path


def _copy_registry(live: LiveService, root: Path) -> TrackingConfig:
    """The live registry copied (SQLite's backup API: consistent while the live service reads it), with
    version 2 registered from version 1's artefact as the challenger. Artefacts stay where they are."""
    source = Path(live.env["TIMPORA_TRACKING_URI"].removeprefix("sqlite:///"))
    db_path = root / "mlflow.db"
    with sqlite3.connect(source) as original, sqlite3.connect(db_path) as copy:
        original.backup(copy)
    config = TrackingConfig(
        tracking_uri=f"sqlite:///{db_path}", artifact_root=Path(live.env["TIMPORA_ARTIFACT_ROOT"])
    )
    client = tracking_client(config)
    first = client.get_model_version(config.model_name, live.model_version)
    second = client.create_model_version(
        config.model_name,
        str(first.source),
        run_id=first.run_id,
        tags=dict(first.tags),
        model_id=first.model_id,
    )
    client.set_registered_model_alias(config.model_name, CHALLENGER, str(second.version))
    return config


@pytest.fixture(scope="module")
def following(
    live_service: LiveService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FollowingService]:
    """`timpora serve` on its own registry copy and data copy, checking the champion alias every second."""
    root = tmp_path_factory.mktemp("model_follow")
    tracking = _copy_registry(live_service, root)
    data = root / "data"
    shutil.copytree(live_service.data_dir, data, ignore=shutil.ignore_patterns("_ingest", "_lists"))
    env = {
        **live_service.env,
        "TIMPORA_TRACKING_URI": tracking.tracking_uri,
        "TIMPORA_AUDIT_LOG": str(root / "audit.jsonl"),
        "BENTOML_HOME": str(root / "bentoml"),
        "TIMPORA_SERVING__FOLLOW_INTERVAL_S": "1",
    }
    log_path, port = root / "service.log", free_port()
    with running_service(serve_command(data, port), env, port, log_path) as process:
        service = dataclasses.replace(
            live_service,
            url=process.url,
            audit_path=root / "audit.jsonl",
            data_dir=data,
            env=env,
            log_path=log_path,
        )
        yield FollowingService(service, tracking, root / "mlflow.db")


def _get(service: LiveService, path: str, role: str = "analyst", timeout: float = 10) -> httpx.Response:
    return httpx.get(
        service.url + path, headers={"Authorization": f"Bearer {service.keys[role]}"}, timeout=timeout
    )


def _model(service: LiveService) -> ModelInfo:
    response = _get(service, "/model")
    assert response.status_code == 200, response.text
    info = ModelInfo.model_validate(response.json())
    # Never an alias the version does not hold, whether or not the switch has happened yet.
    assert (info.alias == CHAMPION) == (CHAMPION in info.aliases), info
    return info


def _wait_for_version(service: LiveService, version: str, timeout_s: float = 20) -> ModelInfo:
    deadline = time.monotonic() + timeout_s
    while True:
        info = _model(service)
        if info.version == version or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def test_service_follows_promote_and_rollback(following: FollowingService) -> None:
    service, tracking = following.service, following.tracking
    first = _model(service)
    assert (first.version, first.alias, first.aliases) == ("1", CHAMPION, [CHAMPION])
    listed = httpx.post(
        service.url + "/inspection_list",
        json={"k": 5},
        headers={"Authorization": f"Bearer {service.keys['supervisor']}"},
        timeout=30,
    )
    assert listed.status_code == 200, listed.text
    list_id = listed.json()["list_id"]

    assert promote(tracking, force=True, reason="test: the service follows the champion").promoted
    promoted = _wait_for_version(service, "2")
    assert (promoted.version, promoted.alias, promoted.aliases) == ("2", CHAMPION, [CHAMPION])
    scored = httpx.post(
        service.url + "/score",
        json={"person_ids": ["nobody"], "reasons": False},
        headers={"Authorization": f"Bearer {service.keys['analyst']}"},
        timeout=10,
    )
    assert scored.json()["model_version"] == "2"
    earlier = _get(service, f"/lists/{list_id}", "supervisor")  # a list the previous version drew
    assert earlier.status_code == 200, earlier.text
    assert (earlier.json()["model_version"], len(earlier.json()["rows"])) == ("1", 5)

    assert rollback(tracking).version == "1"
    back = _wait_for_version(service, "1")
    assert (back.version, back.alias, back.aliases) == ("1", CHAMPION, [CHAMPION])

    switches = [
        (record["from_version"], record["to_version"])
        for record in map(json.loads, service.audit_path.read_text().splitlines())
        if record.get("event") == "model_switched"
    ]
    assert switches == [("1", "2"), ("2", "1")]


def test_locked_registry_is_reported_not_waited_on(following: FollowingService) -> None:
    service, tracking = following.service, following.tracking
    before = _model(service)
    assert before.registry is None
    lock = sqlite3.connect(following.db_path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # no other connection reads or writes until the rollback below
    try:
        start = time.monotonic()
        cli = subprocess.Popen(  # (a) the CLI: one sentence, exit 1
            [str(Path(sys.executable).parent / "timpora"), "promote"],
            env={**service.env, "COLUMNS": "300"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        began = time.monotonic()  # (b) the read side: RegistryBusyError after a short retry
        with pytest.raises(RegistryBusyError, match="locked by another process"):
            version_details(tracking, before.version)
        assert time.monotonic() - began < 3

        began = time.monotonic()  # (c) the service: the details read before, at once, marked busy
        response = _get(service, "/model", timeout=10)
        elapsed = time.monotonic() - began
        assert response.status_code == 200, response.text
        info = ModelInfo.model_validate(response.json())
        assert elapsed < 3, elapsed
        assert info.registry is not None and info.registry.startswith("busy, details as of "), info.registry
        assert (info.version, info.aliases, info.metrics) == (before.version, before.aliases, before.metrics)

        out, err = cli.communicate(timeout=60)
        cli_seconds = time.monotonic() - start
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    lines = [line for line in err.splitlines() if line.strip()]
    assert cli.returncode == 1, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: the model registry"), err
    assert "locked by another process" in lines[0] and "Traceback" not in err + out, err
    assert cli_seconds < 30, cli_seconds  # MLflow alone waits 20 s per locked statement, then retries
    assert _model(service).registry is None  # read from the registry again once it is free
