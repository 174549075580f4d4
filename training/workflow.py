"""The `timpora train` job end to end: load, train, evaluate, audit, log to MLflow, gate, register.

The current champion (if any) is scored on the challenger's own test fold in
the same run, so promotion compares the two on the same hold-out.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import CONTRACT_VERSION
from features.lists import CommittedList, read_lists
from features.loading import load_valid_tables
from features.tables import Tables
from models.card import model_card
from models.mlflow_store import NoModelError, TrackingConfig, load_risk_model
from models.office_rule import office_rule_scores
from models.order import rank_order
from models.ranker import RiskModel
from training.baselines import logistic_scores
from training.bias import FairnessSettings, Flag, count_flags, fairness_blocks
from training.bias_audit import nationality_proxy_auc, protected_groups, run_bias_audit
from training.decisions import (
    CHALLENGER_VS_CHAMPION,
    MODEL_VS_RANDOM,
    MODEL_VS_RULE,
    Decision,
    DecisionSettings,
    registration_decision,
)
from training.evaluate import top_k_mask, truth_labels
from training.evidence import (
    EvidenceSample,
    LabelledDate,
    Scorer,
    compare,
    deciding,
    list_samples,
    random_samples,
    unbiased_outcomes,
    with_outcome_model,
)
from training.model_registry import register_run
from training.offpolicy import Evidence, EvidenceSettings
from training.report import headline_table, write_run_files
from training.settings import TrainingSettings
from training.tracking import FINGERPRINT_PARAM, log_training_run, start_experiment
from training.train import (
    FittedModels,
    TrainingResult,
    TrainOptions,
    build_case_sets,
    evaluate_result,
    split_for,
    train_model,
)


@dataclass(frozen=True)
class TrainingOutcome:
    result: TrainingResult
    run_id: str
    version: str | None  # registered version, None when the registration decision refused it
    registration: Decision
    bias_flags: list[Flag]
    champion_version: str | None
    proxy_auc: float
    tables: Tables  # the validated tables the run trained on (retrain's drift check reads them again)
    champion_bias_flags: list[Flag] = field(default_factory=list)  # the champion's, on this run's hold-out
    versus_champion: Evidence | None = None  # challenger - champion: what promotion decides on
    fairness_blocks: list[str] = field(default_factory=list)
    evidence: pd.DataFrame = field(default_factory=pd.DataFrame)  # every comparison, every view

    @property
    def gate_failures(self) -> list[str]:
        return [] if self.registration.go else self.registration.objections


def fingerprint(data_dir: Path) -> str:
    """A short content hash of the data set's table files (which data trained this run)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(data_dir.glob("*.parquet")) + sorted(data_dir.glob("*.csv")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def evidence_settings(d: TrainingSettings) -> EvidenceSettings:
    return EvidenceSettings(
        min_ess=d.min_ess, max_width=d.max_interval_width, bootstrap=d.bootstrap_draws, seed=d.seed
    )


def decision_settings(d: TrainingSettings) -> DecisionSettings:
    return DecisionSettings(delta=d.delta, fairness_tolerance=d.fairness_tolerance)


@dataclass
class Comparisons:
    """Off-policy and labelled-view evidence for each comparison, and the truth beside it."""

    deciding: dict[str, Evidence]
    table: pd.DataFrame


def gather_samples(
    lists: list[CommittedList], tables: Tables, result: FittedModels, horizon_days: int
) -> tuple[list[EvidenceSample], list[LabelledDate]]:
    """The known-propensity samples (committed lists, RANDOM horizons) and the labelled dates."""
    split = result.split
    validation = result.validation
    dates = (*split.validation_dates, split.test_date)
    features = pd.concat([validation.features, result.test.features])
    labels = pd.concat([validation.labels, result.test.labels])
    samples = random_samples(tables, features, labels, dates, horizon_days, result.capacity)
    last = tables.last_date()
    if last is not None:
        samples += list_samples(lists, tables, split.validation_dates[0], last.date())
    outcome = result.outcome_model

    def predict(frame: pd.DataFrame) -> np.ndarray:
        return logistic_scores(outcome, frame)

    samples = with_outcome_model(samples, predict)
    as_of = features.index.get_level_values("as_of")
    labelled = []
    for date in dates:
        rows = np.asarray(as_of == pd.Timestamp(date))
        labelled.append(LabelledDate(features[rows], labels.loc[rows, "label"], date))
    return samples, labelled


def truth_difference(
    labelled: list[LabelledDate], truth: pd.DataFrame, horizon_days: int, a: Scorer, b: Scorer | None, k: int
) -> float:
    """What the simulated truth says of a's top k minus b's, mean over the dates (a check only);
    b None: a uniformly random list (the share of all cases in violation)."""
    values = []
    for date in labelled:
        truly = truth_labels(truth, date.features.index, horizon_days).to_numpy(dtype=bool)
        ids = date.features.index.get_level_values("person_id").to_numpy(dtype=str)
        n = min(k, len(ids))
        top_a = rank_order(a(date.features), ids)[:n]
        expected_b = truly.mean() if b is None else truly[rank_order(b(date.features), ids)[:n]].mean()
        values.append(truly[top_a].mean() - expected_b)
    return float(np.mean(values)) if values else float("nan")


def compare_scorers(
    samples: list[EvidenceSample],
    labelled: list[LabelledDate],
    scorers: dict[str, tuple[Scorer, Scorer | None]],
    k: int,
    settings: EvidenceSettings,
    truth: pd.DataFrame | None,
    horizon_days: int,
) -> Comparisons:
    deciding_evidence: dict[str, Evidence] = {}
    rows = []
    for name, (a, b) in scorers.items():
        offpolicy, labelled_view = compare(samples, labelled, a, b, name, k, settings)
        check = truth_difference(labelled, truth, horizon_days, a, b, k) if truth is not None else None
        chosen = replace(deciding(offpolicy, labelled_view), truth=check)
        deciding_evidence[name] = chosen
        for evidence in (offpolicy, labelled_view):
            rows.append(
                {
                    "comparison": name,
                    "source": evidence.source,
                    "estimator": evidence.estimator,
                    "estimate": evidence.estimate,
                    "low": evidence.low,
                    "high": evidence.high,
                    "n_effective": evidence.n_effective,
                    "n_clusters": evidence.n_clusters,
                    "k": evidence.k,
                    "sufficient": evidence.sufficient,
                    "deciding": evidence.source == chosen.source,
                    "note": evidence.note,
                    "truth_check": check,
                    **{f"value/{key}": value for key, value in evidence.values.items()},
                }
            )
    return Comparisons(deciding_evidence, pd.DataFrame(rows))


def run_training(
    data_dir: Path,
    options: TrainOptions,
    tracking: TrackingConfig,
    *,
    tables: Tables | None = None,
    truth: pd.DataFrame | None = None,
) -> TrainingOutcome:
    """Train, evaluate, audit, log, decide and register; `tables`: data_dir's tables when the caller
    has loaded and validated them already (`load_valid_tables`). `truth`: a simulation's hidden truth,
    read by the edge that calls (`training.truth.load_truth`), printed beside decisions, never deciding."""
    d = options.defaults
    tables = load_valid_tables(data_dir) if tables is None else tables
    split = split_for(tables, options)  # the run's one split: case sets, fit, evidence and log follow it
    fitted = train_model(tables, options, split=split, cases=build_case_sets(tables, split))
    test = fitted.test
    test_truth = truth_labels(truth, test.labels.index, split.horizon_days) if truth is not None else None

    start_experiment(tracking)
    champion: RiskModel | None
    champion_version: str | None
    try:
        champion, champion_version = load_risk_model(tracking, alias="champion")
    except NoModelError:
        champion, champion_version = None, None
    champion_flags: list[Flag] = []
    result = evaluate_result(fitted, test_truth, d, champion)
    lists = read_lists(data_dir)  # the committed lists: read once, for the evidence and the audit
    unbiased = unbiased_outcomes(lists, tables, test.labels, split.test_date, split.horizon_days)
    fairness = FairnessSettings(bounds=d.bias_bounds)
    # The audit and the blocks judge the list the office works from: the operational capacity.
    k = result.capacity
    bias, all_flags = run_bias_audit(
        tables, result.test_scores["model"], test.labels, test_truth, k, unbiased=unbiased, settings=fairness
    )
    flags = _decided(all_flags)
    blocks: list[str] = []
    if champion is not None:
        _, champion_all = run_bias_audit(
            tables,
            result.test_scores["champion"],
            test.labels,
            test_truth,
            k,
            unbiased=unbiased,
            settings=fairness,
        )
        champion_flags = _decided(champion_all)
        if unbiased is not None:
            tie_key = test.labels.index.get_level_values("person_id").to_numpy(dtype=str)
            blocks = [
                block.text
                for block in fairness_blocks(
                    protected_groups(tables, test.labels.index),
                    top_k_mask(result.test_scores["model"], k, tie_key),
                    top_k_mask(result.test_scores["champion"], k, tie_key),
                    unbiased,
                    d.fairness_tolerance,
                    settings=fairness,
                    seed=d.seed,
                )
            ]
    proxy = nationality_proxy_auc(tables, test.features, d.seed)

    samples, labelled = gather_samples(lists, tables, result, split.horizon_days)
    model = result.model
    scorers: dict[str, tuple[Scorer, Scorer | None]] = {
        MODEL_VS_RANDOM: (model.score, None),  # a random list, judged by its expected value
        MODEL_VS_RULE: (model.score, office_rule_scores),
    }
    if champion is not None:
        scorers[CHALLENGER_VS_CHAMPION] = (model.score, champion.score)
    comparisons = compare_scorers(
        samples, labelled, scorers, result.capacity, evidence_settings(d), truth, split.horizon_days
    )
    decisions = decision_settings(d)
    registration = registration_decision(
        comparisons.deciding[MODEL_VS_RANDOM], comparisons.deciding[MODEL_VS_RULE], decisions
    )
    versus_champion = comparisons.deciding.get(CHALLENGER_VS_CHAMPION)
    flag_texts = [flag.text for flag in flags]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_run_files(result, bias, flag_texts, proxy, d.main_capacity, out, bias_bounds=d.bias_bounds)
        pd.DataFrame([flag.to_dict() for flag in flags]).to_csv(out / "bias_flags.csv", index=False)
        comparisons.table.to_csv(out / "evidence.csv", index=False)
        (out / "decision.json").write_text(registration.to_json())
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
                bias_bounds=d.bias_bounds,
            )
            + _evidence_section(registration, versus_champion, result.capacity)
        )
        run_id = log_training_run(
            tracking,
            result.model,
            params={
                "objective": result.model.objective,
                "objective_choice": options.objective,
                "horizon_days": split.horizon_days,
                "test_date": split.test_date.isoformat(),
                "validation_dates": ",".join(d.isoformat() for d in split.validation_dates),
                "train_dates": len(split.train_dates),
                "first_train_date": split.train_dates[0].isoformat(),
                "contract_version": CONTRACT_VERSION,
                FINGERPRINT_PARAM: fingerprint(data_dir),
                "data_dir": str(data_dir),
                "main_capacity": d.main_capacity,
                "operational_capacity": result.capacity,
                "best_iteration": result.model.info.get("best_iteration"),
            },
            metrics={
                **result.summary,
                **{f"count/{k}": float(v) for k, v in result.counts.items()},
                **_evidence_metrics(comparisons.deciding),
                "proxy_auc_nationality": proxy,
                "bias_flags": float(count_flags(flags)),
                "fairness_blocks": float(len(blocks)),
            },
            tags={
                "champion_compared": champion_version or "none",
                "decision": "register" if registration.go else "refuse",
                "has_truth": str(test_truth is not None),
            },
            artifacts_dir=out,
            input_example=test.features.head(5),
        )
    summary = _registry_summary(result.summary, d.main_capacity)
    registered = register_run(
        tracking,
        run_id,
        decision=registration,
        summary=summary,
        bias_flags=[json.dumps(flag.to_dict(), sort_keys=True) for flag in flags],
        champion_version=champion_version,
        champion_bias_flags=[json.dumps(flag.to_dict(), sort_keys=True) for flag in champion_flags],
        versus_champion=versus_champion,
        fairness_blocks=blocks,
    )
    return TrainingOutcome(
        result=result,
        run_id=run_id,
        version=registered.version if registered is not None else None,
        registration=registration,
        bias_flags=flags,
        champion_version=champion_version,
        proxy_auc=proxy,
        tables=tables,
        champion_bias_flags=champion_flags,
        versus_champion=versus_champion,
        fairness_blocks=blocks,
        evidence=comparisons.table,
    )


def _decided(flags: list[Flag]) -> list[Flag]:
    """The flags a decision may read: every view but the simulated truth (reported in the audit table)."""
    return [flag for flag in flags if flag.view != "truth"]


def _evidence_metrics(deciding_evidence: dict[str, Evidence]) -> dict[str, float]:
    out = {}
    for name, evidence in deciding_evidence.items():
        key = name.replace(" - ", "_vs_").replace(" ", "_")
        for field_name in ("estimate", "low", "high", "n_effective"):
            out[f"evidence/{key}/{field_name}"] = float(getattr(evidence, field_name))
        out[f"evidence/{key}/sufficient"] = float(evidence.sufficient)
        if evidence.truth is not None:
            out[f"evidence/{key}/truth_check"] = float(evidence.truth)
    return out


def _evidence_section(registration: Decision, versus_champion: Evidence | None, k: int) -> str:
    lines = [
        "",
        f"## Decisions and their evidence (operational capacity k = {k})",
        "",
        "```",
        registration.render(),
    ]
    if versus_champion is not None:
        lines.append(f"promotion evidence: {versus_champion.describe()}")
    lines += ["```", ""]
    return "\n".join(lines)


def _registry_summary(summary: Mapping[str, float], main_k: str) -> dict[str, float]:
    """Headline metrics a registered version carries, per view, for model, champion and baselines."""
    keep = (f"precision@{main_k}", f"recall@{main_k}", "precision@50", "pr_auc", "roc_auc")
    out = {}
    for key, value in summary.items():
        _, scorer, metric = key.split("/", 2)
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
