"""Fetch the files a registered model's training run logged (report, plots, tables) for reading."""

from __future__ import annotations

from pathlib import Path

import mlflow

from models.mlflow_store import NoModelError, TrackingConfig
from training.tracking import start_experiment


def model_run_files(config: TrackingConfig, destination: Path, alias: str = "champion") -> tuple[str, Path]:
    """Download the run artefacts of the model version behind `alias`; returns (version, folder)."""
    start_experiment(config)
    client = mlflow.MlflowClient(config.tracking_uri)
    try:
        version = client.get_model_version_by_alias(config.model_name, alias)
    except mlflow.exceptions.MlflowException as exc:
        raise NoModelError(f"no model version has alias {alias!r}: train and promote one first") from exc
    destination.mkdir(parents=True, exist_ok=True)
    folder = mlflow.artifacts.download_artifacts(run_id=version.run_id, dst_path=str(destination))
    return str(version.version), Path(folder)
