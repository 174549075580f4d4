"""The training job: tables -> temporal split -> features and labels -> fitted candidates -> the best.

Pure of MLflow: `train_model` returns everything a run holds (model, evaluation,
bias audit, importance); `training.workflow` logs, gates and registers it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from features.labels import build_labels
from features.pipeline import features_from_timeline
from features.tables import Tables
from features.timeline import build_timeline
from models.office_rule import office_rule_scores
from models.ranker import RiskModel
from training.baselines import fit_logistic, logistic_scores, random_scores
from training.evaluate import evaluate_views, flatten, shap_importance
from training.evidence import operational_capacity
from training.fit import FitConfig, LabelledCases, Objective, fit_ranker
from training.metrics import evaluate_ranking
from training.settings import TrainingSettings
from training.splits import TemporalSplit, default_cutoff, temporal_split

ObjectiveChoice = Literal["binary", "lambdarank", "both"]


@dataclass(frozen=True)
class TrainOptions:
    defaults: TrainingSettings = field(default_factory=TrainingSettings)
    objective: ObjectiveChoice = "binary"
    cutoff: dt.date | None = None
    horizon_days: int | None = None
    capacity: int | None = None  # the office's inspections per horizon (operational k); None: from the data
    fit: FitConfig | None = None  # LightGBM settings (objective and seed come from the options)

    @property
    def horizon(self) -> int:
        return self.horizon_days or self.defaults.horizon_days


@dataclass
class CaseSet:
    """Features and labels of the cases on some as-of dates."""

    features: pd.DataFrame
    labels: pd.DataFrame

    def labelled(self) -> CaseSet:
        keep = self.labels["inspected"].to_numpy(dtype=bool)
        return CaseSet(self.features[keep], self.labels[keep])

    def on(self, dates: tuple[dt.date, ...]) -> CaseSet:
        as_of = self.features.index.get_level_values("as_of")
        keep = as_of.isin(pd.DatetimeIndex([pd.Timestamp(d) for d in dates]))
        return CaseSet(self.features[keep], self.labels[keep])


@dataclass
class Candidate:
    objective: Objective
    model: RiskModel
    validation_score: float  # labelled precision at the operational capacity, mean over validation dates


@dataclass
class TrainingResult:
    split: TemporalSplit
    model: RiskModel
    candidates: list[Candidate]
    test: CaseSet
    test_scores: dict[str, np.ndarray]
    evaluation: pd.DataFrame
    summary: dict[str, float]
    importance: pd.DataFrame
    contributions: pd.DataFrame  # SHAP on a sample of test cases
    counts: dict[str, int]
    capacity: int = 0  # operational capacity: the office's inspections per horizon
    outcome_model: Pipeline | None = None  # logistic on the training cases: the DR estimator's outcome model
    validation: CaseSet | None = None


def build_case_sets(tables: Tables, split: TemporalSplit) -> CaseSet:
    """Features and labels for every as-of date of the split, from one timeline."""
    timeline = build_timeline(tables)
    dates = (*split.train_dates, *split.validation_dates, split.test_date)
    features = features_from_timeline(timeline, dates, progress=True)
    labels = build_labels(tables, dates, split.horizon_days, timeline)
    return CaseSet(features, labels)


def _labelled_cases(cases: CaseSet) -> LabelledCases:
    """Labelled cases, unweighted: logged propensities serve evaluation only, never the fit."""
    labelled = cases.labelled()
    label = np.asarray(labelled.labels["label"].astype(bool), dtype=np.int64)
    return LabelledCases(labelled.features, label, np.ones(len(label)))


def _precision_over_dates(model: RiskModel, cases: CaseSet, k: int) -> float:
    """Labelled precision of the model's top k on each as-of date, averaged over the dates."""
    values = []
    as_of = cases.features.index.get_level_values("as_of")
    for date in as_of.unique():
        rows = np.asarray(as_of == date)
        features, labels = cases.features[rows], cases.labels[rows]
        tie_key = features.index.get_level_values("person_id").to_numpy(dtype=str)
        metrics = evaluate_ranking(model.margin_of(features), labels["label"], [k], tie_key=tie_key)
        values.append(metrics[f"precision@{k}"])
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def split_for(tables: Tables, options: TrainOptions) -> TemporalSplit:
    last = tables.last_date()
    first = _first_date(tables)
    if last is None or first is None:
        raise ValueError("the data set has no dated rows to train on")
    cutoff = options.cutoff or default_cutoff(last.date(), options.horizon)
    d = options.defaults
    return temporal_split(first, cutoff, options.horizon, d.stride_days, d.max_train_dates)


def _first_date(tables: Tables) -> dt.date | None:
    starts = [
        pd.Timestamp(frame[column].min())
        for frame, column in (
            (tables.border_crossings, "crossing_date"),
            (tables.permits, "issue_date"),
            (tables.inspections, "inspection_date"),
        )
        if len(frame)
    ]
    return min(starts).date() if starts else None


def train_model(tables: Tables, options: TrainOptions, cases: CaseSet | None = None) -> TrainingResult:
    """Fit the candidates, keep the best on validation, evaluate it and the baselines on test."""
    d = options.defaults
    split = split_for(tables, options)
    cases = cases or build_case_sets(tables, split)
    train, validation, test = (
        cases.on(split.train_dates),
        cases.on(split.validation_dates),
        cases.on((split.test_date,)),
    )
    validation_cases = _labelled_cases(validation)
    objectives: tuple[Objective, ...] = (
        ("binary", "lambdarank") if options.objective == "both" else (options.objective,)
    )
    k = operational_capacity(tables, split.horizon_days, split.test_date, options.capacity or d.capacity)
    train_cases = _labelled_cases(train)
    candidates = []
    for objective in objectives:
        config = replace(options.fit or FitConfig(), objective=objective, seed=d.seed)
        model = fit_ranker(train_cases, validation_cases, config, split.horizon_days)
        model.info.update({"split": split.describe(), "window": split.window()})
        candidates.append(Candidate(objective, model, _precision_over_dates(model, validation, k)))
    # Binary against lambdarank (whose scores are not probabilities): labelled precision at the
    # operational capacity, averaged over the validation dates; binary wins ties.
    best = max(
        candidates, key=lambda c: (np.nan_to_num(c.validation_score, nan=-1.0), c.objective == "binary")
    )

    labelled_train = train_cases
    logistic = fit_logistic(labelled_train.features, labelled_train.label, labelled_train.weight)
    test_scores = {
        "model": best.model.score(test.features),
        "office_rule": office_rule_scores(test.features),
        "random": random_scores(len(test.features), d.seed),
        "logistic": logistic_scores(logistic, test.features),
    }
    for candidate in candidates:
        if candidate is not best:
            name = f"model_{candidate.objective}"
            test_scores[name] = candidate.model.score(test.features)
    return TrainingResult(
        split=split,
        model=best.model,
        candidates=candidates,
        test=test,
        test_scores=test_scores,
        evaluation=pd.DataFrame(),
        summary={},
        importance=pd.DataFrame(),
        contributions=pd.DataFrame(),
        capacity=k,
        outcome_model=logistic,
        validation=validation,
        counts={
            "train_cases": len(train.features),
            "train_labelled": int(train.labels["inspected"].sum()),
            "validation_labelled": int(validation.labels["inspected"].sum()),
            "test_cases": len(test.features),
            "test_labelled": int(test.labels["inspected"].sum()),
            "test_random_labelled": int(test.labels["random_inspected"].sum()),
        },
    )


def evaluate_result(
    result: TrainingResult, truth: pd.Series | None, defaults: TrainingSettings
) -> TrainingResult:
    """Add the three-view evaluation and global SHAP importance to a training result."""
    evaluation = evaluate_views(
        result.test_scores, result.test.labels, truth, defaults.capacities, defaults.main_capacity
    )
    sample = result.test.features
    if len(sample) > defaults.shap_sample:
        sample = sample.sample(defaults.shap_sample, random_state=defaults.seed)
    contributions = result.model.contributions(sample)
    return replace(
        result,
        evaluation=evaluation,
        summary=flatten(evaluation),
        importance=shap_importance(contributions),
        contributions=contributions,
    )
