"""Retrain: a challenger on all data now available, compared with the champion on the same hold-out.

`run_training` already scores the champion on the challenger's hold-out,
estimates challenger - champion from the inspections with known selection
probabilities (committed lists, RANDOM draws; the labelled view, marked
biased, when they are not enough) and audits both for bias. Retraining adds the
side-by-side comparison, links the two runs in MLflow, and goes through the
same promotion decision as `timpora promote` (go ahead unless the evidence
shows harm, or `--force --reason`). The simulated truth is printed beside the
decision, never used for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from features.settings import DatasetSettings
from features.tables import Tables
from features.timeline import build_timeline
from models.drift import drift_report
from models.mlflow_store import TrackingConfig, tracking_client
from training.bias import Flag, new_or_worse
from training.model_registry import PromotionResult, promote
from training.tracking import log_drift
from training.train import TrainOptions
from training.workflow import TrainingOutcome, decision_settings, run_training

COLUMNS = ["view", "metric", "challenger", "champion", "difference", "office_rule"]
COMPARED_METRICS = ("precision@50", "precision@{main}", "recall@{main}", "pr_auc", "roc_auc")
CHAMPION_RUN_TAG = "champion_run_id"  # on the challenger's run: the run of the champion it was compared with
CHALLENGER_RUN_TAG = "challenger_run_id"  # on the champion's run: the latest run compared with it


@dataclass(frozen=True)
class RetrainOutcome:
    training: TrainingOutcome
    comparison: pd.DataFrame  # view, metric, challenger, champion, difference, office_rule
    new_bias_flags: list[Flag]  # the challenger's flags the champion does not raise, or raises less
    promotion: PromotionResult | None  # None when the challenger failed the gates


def comparison_table(summary: Mapping[str, float], main_k: str) -> pd.DataFrame:
    """Challenger and champion (and the office rule) per view and metric, from a run's summary."""
    rows = []
    for view in ("truth", "random_sample", "labelled", "labelled_without_tips"):
        for template in COMPARED_METRICS:
            metric = template.format(main=main_k)
            challenger = summary.get(f"{view}/model/{metric}")
            if challenger is None:
                continue
            champion = summary.get(f"{view}/champion/{metric}")
            rows.append(
                {
                    "view": view,
                    "metric": metric,
                    "challenger": challenger,
                    "champion": champion,
                    "difference": None if champion is None else challenger - champion,
                    "office_rule": summary.get(f"{view}/office_rule/{metric}"),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def _link_runs(tracking: TrackingConfig, challenger_run: str, champion_version: str) -> None:
    client = tracking_client(tracking)
    champion = client.get_model_version(tracking.model_name, champion_version)
    client.set_tag(challenger_run, CHAMPION_RUN_TAG, champion.run_id or "")
    if champion.run_id:
        client.set_tag(champion.run_id, CHALLENGER_RUN_TAG, challenger_run)


def _log_drift(tracking: TrackingConfig, outcome: TrainingOutcome, dataset: DatasetSettings) -> None:
    """The challenger's drift from its training cases to the known-through date, logged into its run
    (the tables are those the run trained on: loaded and validated once)."""
    tables = outcome.tables
    last = tables.known_through(dataset.continuous_tables)
    if last is None:
        return
    report = drift_report(outcome.result.model, build_timeline(tables), last.date())
    mlflow.set_tracking_uri(tracking.tracking_uri)
    with mlflow.start_run(run_id=outcome.run_id):
        log_drift(report)


def retrain(
    data_dir: Path,
    tracking: TrackingConfig,
    options: TrainOptions | None = None,
    *,
    force: bool = False,
    reason: str | None = None,
    tables: Tables | None = None,
    truth: pd.DataFrame | None = None,
) -> RetrainOutcome:
    """Train a challenger, compare it with the champion on the same hold-out, and promote if it may;
    `tables`: data_dir's tables when the caller has loaded and validated them already; `truth`: a
    simulation's hidden truth for the check printed beside the decision (see `run_training`)."""
    options = options or TrainOptions()
    d = options.defaults
    outcome = run_training(data_dir, options, tracking, tables=tables, truth=truth)
    if outcome.champion_version is not None:
        _link_runs(tracking, outcome.run_id, outcome.champion_version)
    _log_drift(tracking, outcome, options.dataset)
    new_flags = new_or_worse(outcome.bias_flags, outcome.champion_bias_flags)
    promotion = None
    if outcome.version is not None:
        promotion = promote(tracking, settings=decision_settings(d), force=force, reason=reason)
    return RetrainOutcome(
        training=outcome,
        comparison=comparison_table(outcome.result.summary, d.main_capacity),
        new_bias_flags=new_flags,
        promotion=promotion,
    )
