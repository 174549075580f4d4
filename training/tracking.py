"""MLflow tracking: where runs live, and one function that logs a training run with its model.

Where the store is (`TrackingConfig`) and how to read it are in `models.mlflow_store`;
this is the write side: the experiment, a run with its metrics, artefacts and
model, and the drift measured at training time. Nothing here touches MLflow or
the disk at import.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Mapping
from importlib.metadata import version as installed_version
from pathlib import Path

import mlflow
import pandas as pd

from models.drift import DRIFT_FILE, DriftReport
from models.mlflow_store import SQLITE_PREFIX, TrackingConfig, tracking_client
from models.pyfunc import ARTIFACT_KEY, RiskModelPyfunc, pyfunc_input, pyfunc_signature
from models.ranker import RiskModel

MODEL_ARTIFACT_PATH = "model"  # the logged model's name inside a run
MODEL_ID_TAG = "timpora.model_id"  # run tag: the logged model's id, what the registry registers
FINGERPRINT_PARAM = "data_fingerprint"  # run parameter: the content hash of the data set it trained on
RAW_METRICS_FILE = "metrics.json"  # the run's metrics under their original names ('@', '%')
INPUT_EXAMPLE_ROWS = 5
# What loading and scoring the pyfunc imports; pinned to this environment's versions.
# Passing them explicitly skips MLflow's 3-5 s requirement inference.
SCORING_PACKAGES = ("mlflow", "lightgbm", "numpy", "pandas", "cloudpickle")


def metric_key(name: str) -> str:
    """An MLflow-safe name for a metric or parameter: `precision@5%` -> `precision_at_5pct`.

    MLflow names allow only alphanumerics, `_ - . /` and spaces (colons too, but
    not on Windows); anything else becomes `_`.
    """
    key = name.strip().replace("@", "_at_").replace("%", "pct")
    key = re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", key)
    key = re.sub(r"/+", "/", key).strip("/")  # no empty path segments
    if not key or key in {".", ".."}:
        raise ValueError(f"{name!r} gives no usable MLflow name")
    return key


def metric_keys(names: Mapping[str, object]) -> dict[str, str]:
    """`metric_key` of each name; two names that would share a key are an error, not an overwrite."""
    keys: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name in names:
        key = metric_key(name)
        if key in seen:
            raise ValueError(f"{seen[key]!r} and {name!r} both become MLflow name {key!r}")
        seen[key] = name
        keys[name] = key
    return keys


def pinned_requirements(packages: tuple[str, ...] = SCORING_PACKAGES) -> list[str]:
    """`name==version` of each package as installed here."""
    return [f"{name}=={installed_version(name)}" for name in packages]


def _prepare_local_store(config: TrackingConfig) -> None:
    """Create the SQLite file's folder and the artefact root (MLflow creates neither)."""
    if config.tracking_uri.startswith(SQLITE_PREFIX):
        database = config.tracking_uri.removeprefix(SQLITE_PREFIX)
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    config.artifact_root.mkdir(parents=True, exist_ok=True)


def start_experiment(config: TrackingConfig) -> str:
    """Point MLflow at the store and get or create the experiment; returns its id.

    The experiment gets an explicit artefact location under the configured root,
    so artefacts never land under the current directory. MLflow's tracking and
    registry URIs are process-wide (and inherited by subprocesses); the active
    experiment is left alone: runs name their experiment explicitly.
    """
    _prepare_local_store(config)
    client = tracking_client(config)
    experiment = client.get_experiment_by_name(config.experiment)
    if experiment is None:
        location = (config.artifact_root / config.experiment).as_uri()
        experiment_id = client.create_experiment(config.experiment, artifact_location=location)
    elif experiment.lifecycle_stage != "active":
        raise RuntimeError(
            f"MLflow experiment {config.experiment!r} is deleted; restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or choose another name"
        )
    else:
        experiment_id = experiment.experiment_id
    return experiment_id


def json_safe_metrics(values: Mapping[str, float]) -> dict[str, float | None]:
    """Metrics with NaN and infinities as null: strict JSON that other tools can read."""
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in values.items()}


def log_training_run(
    config: TrackingConfig,
    model: RiskModel,
    *,
    params: dict[str, object],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts_dir: Path | None,
    input_example: pd.DataFrame,
    run_name: str | None = None,
    parent_run_id: str | None = None,
) -> str:
    """Log one training run: parameters, metrics, tags, report files and the model as a pyfunc.

    Metric and parameter names go through `metric_key`; the original names and
    values are kept in the run's `metrics.json`. Every file under `artifacts_dir`
    is logged at the run's artefact root. The model's schema comes from the
    feature registry (`pyfunc_signature`); a few rows of `input_example` are kept
    as its example. Returns the run id.
    """
    experiment_id = start_experiment(config)
    keys = metric_keys(metrics)
    param_keys = metric_keys(params)
    example = pyfunc_input(input_example.head(INPUT_EXAMPLE_ROWS), model.feature_names)
    run_tags = {
        "timpora.contract_version": model.contract_version,
        "timpora.horizon_days": str(model.horizon_days),
        "timpora.objective": model.objective,
        **tags,
    }
    nested = mlflow.active_run() is not None
    with (
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=run_name,
            parent_run_id=parent_run_id,
            nested=nested,
            tags=run_tags,
        ) as run,
        tempfile.TemporaryDirectory(prefix="timpora-model-") as scratch,
    ):
        if params:
            mlflow.log_params({param_keys[k]: v for k, v in params.items()})
        if metrics:
            mlflow.log_metrics({keys[k]: float(v) for k, v in metrics.items()})
        mlflow.log_dict(json_safe_metrics(metrics), RAW_METRICS_FILE)
        if artifacts_dir is not None:
            mlflow.log_artifacts(str(artifacts_dir))
        model_dir = Path(scratch) / ARTIFACT_KEY
        model.save(model_dir)
        logged = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT_PATH,
            python_model=RiskModelPyfunc(),
            artifacts={ARTIFACT_KEY: str(model_dir)},
            signature=pyfunc_signature(model.feature_names),
            input_example=example,
            pip_requirements=pinned_requirements(),
            metadata={
                "contract_version": model.contract_version,
                "horizon_days": model.horizon_days,
                "objective": model.objective,
                "feature_names": list(model.feature_names),
            },
        )
        mlflow.set_tag(MODEL_ID_TAG, logged.model_id)
        return run.info.run_id


def log_drift(report: DriftReport) -> None:
    """Log a drift report into the active MLflow run: `drift/*` metrics, tags and `drift.csv`."""
    if mlflow.active_run() is None:
        raise RuntimeError("log_drift logs into the active MLflow run: start one first")
    s = report.summary
    mlflow.log_metrics(
        {
            "drift/max_psi": s.max_psi,
            "drift/mean_psi": s.mean_psi,
            "drift/score_psi": s.score_psi,
            "drift/n_moderate": float(s.n_moderate),
            "drift/n_large": float(s.n_large),
        }
    )
    mlflow.set_tags(
        {
            "drift.as_of": report.as_of.isoformat(),
            "drift.reference": report.reference_window,
            "drift.level": s.level.value,
        }
    )
    mlflow.log_text(report.features.to_csv(index=False), DRIFT_FILE)
