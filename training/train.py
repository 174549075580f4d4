"""The training job: tables -> temporal split -> features and labels -> fitted candidates -> the best.

Pure of MLflow: `train_model` returns everything a run holds (model, evaluation,
bias audit, importance); `training.pipeline` logs, gates and registers it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from features.labels import build_labels
from features.pipeline import features_from_timeline
from features.tables import Tables
from features.timeline import build_timeline
from models.ranker import RiskModel
from timpora.config import TrainingDefaults
from training.baselines import fit_logistic, logistic_scores, office_rule_scores, random_scores
from training.evaluate import evaluate_views, flatten, shap_importance
from training.fit import FitConfig, LabelledCases, Objective, fit_ranker
from training.metrics import evaluate_ranking
from training.splits import TemporalSplit, default_cutoff, temporal_split
from training.weights import estimate_propensity, inverse_propensity_weights

ObjectiveChoice = Literal["binary", "lambdarank", "both"]


@dataclass(frozen=True)
class TrainOptions:
    defaults: TrainingDefaults = field(default_factory=TrainingDefaults)
    objective: ObjectiveChoice = "binary"
    cutoff: dt.date | None = None
    horizon_days: int | None = None

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
    weighted: bool
    model: RiskModel
    validation_score: float  # precision at the main capacity on labelled validation cases


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


def build_case_sets(tables: Tables, split: TemporalSplit) -> CaseSet:
    """Features and labels for every as-of date of the split, from one timeline."""
    timeline = build_timeline(tables)
    dates = (*split.train_dates, *split.validation_dates, split.test_date)
    features = features_from_timeline(timeline, dates, progress=True)
    labels = build_labels(tables, dates, split.horizon_days, timeline)
    return CaseSet(features, labels)


def _labelled_cases(cases: CaseSet, weights: np.ndarray | None = None) -> LabelledCases:
    labelled = cases.labelled()
    label = np.asarray(labelled.labels["label"].astype(bool), dtype=np.int64)
    weight = np.ones(len(label)) if weights is None else weights
    return LabelledCases(labelled.features, label, weight)


def _training_weights(train: CaseSet, model_features: tuple[str, ...]) -> np.ndarray:
    propensity = estimate_propensity(train.features, train.labels["inspected"], model_features)
    inspected = train.labels["inspected"].to_numpy(dtype=bool)
    return inverse_propensity_weights(train.labels["selection_propensity"][inspected], propensity[inspected])


def _precision_at(model: RiskModel, cases: LabelledCases, k: str) -> float:
    scores = model.margin_of(cases.features)
    label = pd.Series(cases.label.astype(bool), dtype="boolean")
    tie_key = cases.features.index.get_level_values("person_id").to_numpy(dtype=str)
    return evaluate_ranking(scores, label, [k], tie_key=tie_key)[f"precision@{k}"]


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
    model_features = tuple(cases.features.columns)
    weights = _training_weights(train, model_features)
    validation_cases = _labelled_cases(validation)
    objectives: tuple[Objective, ...] = (
        ("binary", "lambdarank") if options.objective == "both" else (options.objective,)
    )
    candidates = []
    for objective in objectives:
        for weighted in (True, False):
            config = FitConfig(objective=objective, seed=d.seed)
            train_cases = _labelled_cases(train, weights if weighted else None)
            model = fit_ranker(train_cases, validation_cases, config, split.horizon_days)
            model.info.update({"weighted": weighted, "split": split.describe(), "window": split.window()})
            score = _precision_at(model, validation_cases, d.main_capacity)
            candidates.append(Candidate(objective, weighted, model, score))
    best = max(candidates, key=lambda c: (np.nan_to_num(c.validation_score, nan=-1.0), c.weighted))

    labelled_train = _labelled_cases(train, weights)
    logistic = fit_logistic(labelled_train.features, labelled_train.label, labelled_train.weight)
    test_scores = {
        "model": best.model.score(test.features),
        "office_rule": office_rule_scores(test.features),
        "random": random_scores(len(test.features), d.seed),
        "logistic": logistic_scores(logistic, test.features),
    }
    for candidate in candidates:
        if candidate is not best:
            name = f"model_{candidate.objective}_{'weighted' if candidate.weighted else 'unweighted'}"
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
    result: TrainingResult, truth: pd.Series | None, defaults: TrainingDefaults
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
