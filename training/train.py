"""The training job: tables -> temporal split -> features and labels -> fitted candidates -> the best.

Pure of MLflow. A run computes its split once (`split_for`), builds the case sets for it
(`build_case_sets`) and passes both down. Each step returns a whole, frozen result:
`train_model` the fitted candidates, the best of them and every scorer's test-fold scores
(`FittedModels`); `evaluate_result` the same with the evaluation in every view and global SHAP
importance (`TrainingResult`). `training.workflow` audits, logs, gates and registers it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from features.labels import build_labels
from features.pipeline import features_from_timeline
from features.settings import DEFAULT_DATASET, DatasetSettings
from features.tables import Tables
from features.timeline import build_timeline
from models.office_rule import office_rule_scores
from models.ranker import RiskModel
from training.baselines import fit_logistic, logistic_scores, random_scores
from training.evaluate import Scores, evaluate_views, flatten, shap_importance
from training.evidence import operational_capacity
from training.fit import FitConfig, LabelledCases, Objective, fit_ranker
from training.metrics import evaluate_ranking
from training.settings import TrainingSettings
from training.splits import TemporalSplit, default_cutoff, temporal_split

ObjectiveChoice = Literal["binary", "lambdarank", "both"]


@dataclass(frozen=True)
class TrainOptions:
    defaults: TrainingSettings = field(default_factory=TrainingSettings)
    dataset: DatasetSettings = DEFAULT_DATASET  # the default cut-off ends at the known-through date
    objective: ObjectiveChoice = "binary"
    cutoff: dt.date | None = None
    horizon_days: int | None = None
    capacity: int | None = None  # the office's inspections per horizon (operational k); None: from the data
    # LightGBM settings; the objective comes from `objective`, the seed and thread count from `defaults`.
    fit: FitConfig | None = None

    @property
    def horizon(self) -> int:
        return self.horizon_days or self.defaults.horizon_days


@dataclass(frozen=True, eq=False)
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


@dataclass(frozen=True)
class Candidate:
    objective: Objective
    model: RiskModel
    validation_score: float  # labelled precision at the operational capacity, mean over validation dates


@dataclass(frozen=True, eq=False)
class FittedModels:
    """The candidates fitted on the split's training dates, the best on validation, and the test-fold
    scores of the model, the other candidates and the baselines."""

    split: TemporalSplit
    model: RiskModel
    candidates: tuple[Candidate, ...]
    validation: CaseSet
    test: CaseSet
    test_scores: Mapping[str, Scores]
    capacity: int  # operational capacity: the office's inspections per horizon
    outcome_model: Pipeline  # logistic on the training cases: a baseline and the DR outcome model
    counts: Mapping[str, int]


@dataclass(frozen=True, eq=False)
class TrainingResult(FittedModels):
    """A fitted run with its evaluation: every scorer (the champion too, when there is one, scored on
    this run's test fold) in every view, flattened for MLflow, and the model's global SHAP importance."""

    evaluation: pd.DataFrame
    summary: Mapping[str, float]
    importance: pd.DataFrame
    contributions: pd.DataFrame  # SHAP on a sample of test cases


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
    last = tables.known_through(options.dataset.continuous_tables)  # not a table that runs ahead
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


def train_model(
    tables: Tables,
    options: TrainOptions,
    *,
    split: TemporalSplit | None = None,
    cases: CaseSet | None = None,
) -> FittedModels:
    """Fit the candidates, keep the best on validation, score it and the baselines on test.

    `split` and `cases`: the run's split and the case sets built for it (`split_for`,
    `build_case_sets`), computed here when not given.
    """
    d = options.defaults
    if split is None:
        if cases is not None:
            raise ValueError("case sets need the split they were built for")
        split = split_for(tables, options)
    if cases is None:
        cases = build_case_sets(tables, split)
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
    window = {"split": split.describe(), "window": split.window()}
    candidates = []
    for objective in objectives:
        config = replace(
            options.fit or FitConfig(), objective=objective, seed=d.seed, num_threads=d.num_threads
        )
        model = fit_ranker(train_cases, validation_cases, config, split.horizon_days, info=window)
        candidates.append(Candidate(objective, model, _precision_over_dates(model, validation, k)))
    # Binary against lambdarank (whose scores are not probabilities): labelled precision at the
    # operational capacity, averaged over the validation dates; binary wins ties.
    best = max(
        candidates, key=lambda c: (np.nan_to_num(c.validation_score, nan=-1.0), c.objective == "binary")
    )

    logistic = fit_logistic(train_cases.features, train_cases.label, train_cases.weight)
    test_scores = {
        "model": best.model.score(test.features),
        "office_rule": office_rule_scores(test.features),
        "random": random_scores(len(test.features), d.seed),
        "logistic": logistic_scores(logistic, test.features),
    }
    for candidate in candidates:
        if candidate is not best:
            test_scores[f"model_{candidate.objective}"] = candidate.model.score(test.features)
    return FittedModels(
        split=split,
        model=best.model,
        candidates=tuple(candidates),
        validation=validation,
        test=test,
        test_scores=test_scores,
        capacity=k,
        outcome_model=logistic,
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
    fitted: FittedModels,
    truth: pd.Series | None,
    defaults: TrainingSettings,
    champion: RiskModel | None = None,
) -> TrainingResult:
    """The fitted run with its three-view evaluation and global SHAP importance; `champion`: the
    current champion, scored on this run's test fold beside the others."""
    test_scores = dict(fitted.test_scores)
    if champion is not None:
        test_scores["champion"] = champion.score(fitted.test.features)
    evaluation = evaluate_views(
        test_scores, fitted.test.labels, truth, defaults.capacities, defaults.main_capacity
    )
    sample = fitted.test.features
    if len(sample) > defaults.shap_sample:
        sample = sample.sample(defaults.shap_sample, random_state=defaults.seed)
    contributions = fitted.model.contributions(sample)
    fitted_fields = {f.name: getattr(fitted, f.name) for f in fields(FittedModels)}
    return TrainingResult(
        **{**fitted_fields, "test_scores": test_scores},
        evaluation=evaluation,
        summary=flatten(evaluation),
        importance=shap_importance(contributions),
        contributions=contributions,
    )
