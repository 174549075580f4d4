"""Settings: declared once, read from the environment and files at the edges, with clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from serving.settings import ServiceSettings, SettingsError, default_home, load_service_settings
from timpora.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TIMPORA_* variable from the caller's shell, and no settings file in the working directory."""
    for name in list(os.environ):
        if name.startswith("TIMPORA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_resolve_against_the_checkouts_var_folder() -> None:
    settings = load_settings()
    assert default_home() == ROOT / "var"
    assert settings.home_dir == ROOT / "var"
    assert settings.data_dir == ROOT / "var" / "demo"
    assert settings.keys_path == ROOT / "var" / "serving" / "keys.json"
    assert settings.audit_path == ROOT / "var" / "serving" / "audit.jsonl"
    tracking = settings.tracking
    assert tracking.tracking_uri == f"sqlite:///{ROOT}/var/mlflow/mlflow.db"
    assert tracking.artifact_root == ROOT / "var" / "mlflow" / "artifacts"
    assert (tracking.experiment, tracking.model_name) == ("timpora", "timpora-risk")
    assert settings.serving.host == "127.0.0.1" and settings.training.horizon_days == 90


def test_home_moves_every_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIMPORA_HOME", str(tmp_path / "office"))
    settings = load_settings()
    for path in (settings.data_dir, settings.keys_path, settings.audit_path, settings.tracking.artifact_root):
        assert path.is_relative_to(tmp_path / "office")
    assert not (tmp_path / "office").exists()  # folders are made when used, not when configured


def test_environment_variables_override_paths_and_nested_pieces(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIMPORA_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("TIMPORA_ARTIFACT_ROOT", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("TIMPORA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TIMPORA_MODEL_VERSION", "3")
    monkeypatch.setenv("TIMPORA_SERVING__PORT", "3999")
    monkeypatch.setenv("TIMPORA_TRAINING__HORIZON_DAYS", "60")
    monkeypatch.setenv("TIMPORA_DRIFT__PSI_LARGE", "0.3")
    settings = load_settings()
    assert settings.tracking.tracking_uri == "http://127.0.0.1:5000"
    assert settings.tracking.artifact_root == tmp_path / "elsewhere"
    assert settings.data_dir == tmp_path / "data" and settings.model_version == "3"
    assert settings.serving.port == 3999 and settings.serving.host == "127.0.0.1"  # the rest kept
    assert settings.training.horizon_days == 60 and settings.training.stride_days == 30
    assert settings.drift.psi_large == 0.3


def test_a_toml_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "timpora.toml").write_text(
        'home = "/srv/timpora"\n[serving]\nport = 4000\nmax_k = 200\n[training]\nhorizon_days = 120\n'
    )
    monkeypatch.setenv("TIMPORA_SERVING__PORT", "4001")
    settings = load_settings()
    assert settings.home_dir == Path("/srv/timpora")
    assert (settings.serving.port, settings.serving.max_k) == (4001, 200)
    assert settings.training.horizon_days == 120


def test_a_named_settings_file_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIMPORA_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError, match=r"TIMPORA_CONFIG=.*missing\.toml: no such settings file"):
        load_settings()


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMPORA_SERVING__PORT", "three thousand")
    with pytest.raises(SettingsError, match=r"TIMPORA_SERVING__PORT: .*integer.*'three thousand'"):
        load_service_settings()


def test_the_service_settings_are_the_base_of_the_full_settings() -> None:
    service_fields = set(ServiceSettings.model_fields)
    assert service_fields < set(Settings.model_fields)
    assert set(Settings.model_fields) - service_fields == {"training", "simulation"}


def test_a_bad_setting_is_a_usage_error_on_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "TIMPORA_SERVING__PORT": "x"}
    done = subprocess.run(
        [sys.executable, "-m", "timpora", "models"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "TIMPORA_SERVING__PORT" in done.stderr


def test_keys_file_and_audit_log_honour_their_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIMPORA_KEYS_FILE", str(tmp_path / "k.json"))
    monkeypatch.setenv("TIMPORA_AUDIT_LOG", str(tmp_path / "a.jsonl"))
    settings = load_service_settings()
    assert (settings.keys_path, settings.audit_path) == (tmp_path / "k.json", tmp_path / "a.jsonl")


def test_the_settings_command_prints_what_is_in_force(tmp_path: Path) -> None:
    env = {**os.environ, "TIMPORA_SERVING__PORT": "3555", "TIMPORA_HOME": str(tmp_path / "office")}
    done = subprocess.run(
        [sys.executable, "-m", "timpora", "settings", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["serving"]["port"] == 3555 and shown["training"]["horizon_days"] == 90
    assert shown["resolved"]["data"] == str(tmp_path / "office" / "demo")
    assert shown["resolved"]["tracking_uri"] == f"sqlite:///{tmp_path}/office/mlflow/mlflow.db"
