"""Everyday use: re-running the demo keeps an analyst's data, and training skips data it has seen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LiveService

TIMPORA = str(Path(sys.executable).parent / "timpora")


def _timpora(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TIMPORA, *args], capture_output=True, text=True, env=env, timeout=300)


def test_simulate_refuses_a_directory_with_files_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    (out / "_ingest").mkdir(parents=True)
    (out / "_ingest" / "log.jsonl").write_text('{"table": "inspections"}\n')
    refused = _timpora("simulate", "--out", str(out), "--persons", "20")
    assert refused.returncode == 2
    assert "already holds files" in refused.stderr and "--force" in refused.stderr
    assert (out / "_ingest" / "log.jsonl").read_text() == '{"table": "inspections"}\n'  # untouched
    forced = _timpora("simulate", "--out", str(out), "--persons", "20", "--force")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert (out / "persons.parquet").is_file() and not (out / "_ingest").exists()  # a clean new world
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _timpora("simulate", "--out", str(empty), "--persons", "20").returncode == 0  # empty is fine


@pytest.mark.slow  # the shared live service (a trained champion)
def test_train_if_changed_skips_the_data_the_champion_was_trained_on(live_service: LiveService) -> None:
    done = _timpora("train", str(live_service.data_dir), "--if-changed", env=live_service.env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"Not trained: champion v{live_service.model_version} was trained on")
