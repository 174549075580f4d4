"""The `timpora train` job end to end: load, train, evaluate, audit, log to MLflow, gate, register.

The current champion (if any) is scored on the challenger's own test fold in
the same run, so promotion compares the two on the same hold-out.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from features.contract import CONTRACT_VERSION
from features.loading import load_valid_tables
from models.card import model_card
from training.audit import nationality_proxy_auc, run_bias_audit
from training.registry import Gates, NoModelError, check_gates, load_risk_model, register_run
from training.report import headline_table, write_run_files
from training.tracking import TrackingConfig, log_training_run, start_experiment
from training.train import (
    TrainingResult,
    TrainOptions,
    build_case_sets,
    evaluate_result,
    split_for,
    train_model,
)
from training.truth import load_truth, truth_labels


@dataclass
class TrainingOutcome:
    result: TrainingResult
    run_id: str
    version: str | None  # registered version, None when the gates refused it
    gate_failures: list[str]
    bias_flags: list[str]
    champion_version: str | None
    proxy_auc: float
    champion_bias_flags: list[str] = field(default_factory=list)  # the champion's, on this run's hold-out


def fingerprint(data_dir: Path) -> str:
    """A short content hash of the data set's table files (which data trained this run)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(data_dir.glob("*.parquet")) + sorted(data_dir.glob("*.csv")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def run_training(
    data_dir: Path, options: TrainOptions, tracking: TrackingConfig, gates: Gates | None = None
) -> TrainingOutcome:
    d = options.defaults
    gates = gates or Gates(metric=f"precision@{d.main_capacity}")
    tables = load_valid_tables(data_dir)
    truth_frame = load_truth(data_dir)  # evaluation only: never reaches features or training
    split = split_for(tables, options)
    result = train_model(tables, options, build_case_sets(tables, split))
    test = result.test

    start_experiment(tracking)
    champion_version: str | None = None
    champion_flags: list[str] = []
    truth = (
        truth_labels(truth_frame, test.labels.index, split.horizon_days) if truth_frame is not None else None
    )
    try:
        champion, champion_version = load_risk_model(tracking, alias="champion")
        result.test_scores["champion"] = champion.score(test.features)
    except NoModelError:
        champion = None
    result = evaluate_result(result, truth, d)
    bias, flags = run_bias_audit(
        tables, result.test_scores["model"], test.labels, truth, d.main_capacity, d.bias_bounds
    )
    if champion is not None:
        _, champion_flags = run_bias_audit(
            tables, result.test_scores["champion"], test.labels, truth, d.main_capacity, d.bias_bounds
        )
    proxy = nationality_proxy_auc(tables, test.features, d.seed)

    view = gate_view(result.summary, d.main_capacity, d.min_gate_support)
    failures = [
        f"{failure} ({view} view)" for failure in check_gates(metrics_of_view(result.summary, view), gates)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_run_files(result, bias, flags, proxy, d.main_capacity, out)
        headline = headline_table(result.evaluation, d.main_capacity)
        (out / "model_card.md").write_text(
            model_card(
                result.model,
                split_description=split.describe(),
                headline=headline,
                bias_flags=flags,
                proxy_auc=proxy,
                counts=result.counts,
                main_k=d.main_capacity,
            )
        )
        run_id = log_training_run(
            tracking,
            result.model,
            params={
                "objective": result.model.objective,
                "objective_choice": options.objective,
                "weighted": result.model.info.get("weighted"),
                "horizon_days": split.horizon_days,
                "test_date": split.test_date.isoformat(),
                "validation_dates": ",".join(d.isoformat() for d in split.validation_dates),
                "train_dates": len(split.train_dates),
                "first_train_date": split.train_dates[0].isoformat(),
                "contract_version": CONTRACT_VERSION,
                "data_fingerprint": fingerprint(data_dir),
                "data_dir": str(data_dir),
                "main_capacity": d.main_capacity,
                "best_iteration": result.model.info.get("best_iteration"),
            },
            metrics={
                **result.summary,
                **{f"count/{k}": float(v) for k, v in result.counts.items()},
                "proxy_auc_nationality": proxy,
            },
            tags={
                "champion_compared": champion_version or "none",
                "gate_view": view,
                "has_truth": str(truth is not None),
            },
            artifacts_dir=out,
            input_example=test.features.head(5),
        )
    summary = _registry_summary(result.summary, d.main_capacity, view)
    registered = register_run(
        tracking,
        run_id,
        gate_failures=failures,
        summary=summary,
        bias_flags=flags,
        champion_version=champion_version,
        champion_bias_flags=champion_flags,
    )
    return TrainingOutcome(
        result=result,
        run_id=run_id,
        version=registered.version if registered is not None else None,
        gate_failures=failures,
        bias_flags=flags,
        champion_version=champion_version,
        proxy_auc=proxy,
        champion_bias_flags=champion_flags,
    )


def gate_view(summary: dict[str, float], main_k: str, min_support: int) -> str:
    """The least biased view with enough evidence to judge a model on.

    The simulated truth when the data set has it; else the RANDOM-inspection sample
    when it holds at least `min_support` labelled cases in the model's top k; else
    all labelled cases. The last favours the office rule (it chose whom to inspect),
    so gating on it is conservative.
    """
    if any(key.startswith("truth/model/") for key in summary):
        return "truth"
    if summary.get(f"random_sample/model/labelled@{main_k}", 0.0) >= min_support:
        return "random_sample"
    return "labelled"


def metrics_of_view(summary: dict[str, float], view: str) -> dict[str, float]:
    """The "<scorer>/<metric>" entries of one view."""
    return {k.removeprefix(f"{view}/"): v for k, v in summary.items() if k.startswith(f"{view}/")}


def _registry_summary(summary: dict[str, float], main_k: str, view: str) -> dict[str, float]:
    """Headline metrics a registered version carries: model, champion and baselines on the same
    hold-out and in the gate's view (promotion compares `model/...` with `champion/...`)."""
    keep = (f"precision@{main_k}", f"recall@{main_k}", "precision@50", "pr_auc", "roc_auc")
    out = {}
    for key, value in metrics_of_view(summary, view).items():
        scorer, metric = key.split("/", 1)
        if scorer in ("model", "champion", "office_rule", "random", "logistic") and metric in keep:
            out[key] = value
    return out


def training_table(outcome: TrainingOutcome, main_k: str) -> pd.DataFrame:
    """The headline comparison printed by `timpora train`: the model and the baselines per view."""
    table = headline_table(outcome.result.evaluation, main_k)
    keep = table["scorer"].isin(["model", "champion", "office_rule", "logistic", "random"])
    columns = [
        "view",
        "scorer",
        "precision@50",
        f"precision@{main_k}",
        f"recall@{main_k}",
        "pr_auc",
        "roc_auc",
    ]
    return table.loc[keep, [c for c in columns if c in table.columns]]
