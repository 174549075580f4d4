"""Baselines scored in the same run as the model, on the same cases.

- random: a seeded random order (what an unguided team would find);
- office rule: the naive rule offices use today: currently overstaying first, then
  recent agency reports about the person, then fewest days to permit expiry;
- logistic regression on the same allow-listed features.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from features.catalog import FEATURE_NAMES, FEATURES_BY_NAME
from models.office_rule import Scores
from models.ranker import feature_matrix


def random_scores(n: int, seed: int) -> Scores:
    return np.random.default_rng(seed).random(n)


def _logistic_pipeline() -> Pipeline:
    categorical = [j for j, n in enumerate(FEATURE_NAMES) if FEATURES_BY_NAME[n].is_categorical]
    numeric = [j for j in range(len(FEATURE_NAMES)) if j not in categorical]
    columns = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                numeric,
            ),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=-1.0),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=2000, class_weight="balanced"))


def fit_logistic(
    features: pd.DataFrame, label: npt.NDArray[np.int64], weight: npt.NDArray[np.float64]
) -> Pipeline:
    """A logistic regression on the same features (imputed, scaled, one-hot categories)."""
    model = _logistic_pipeline()
    with _quiet_empty_features():
        model.fit(feature_matrix(features, FEATURE_NAMES), label, logisticregression__sample_weight=weight)
    return model


def logistic_scores(model: Pipeline, features: pd.DataFrame) -> Scores:
    with _quiet_empty_features():
        scores = model.predict_proba(feature_matrix(features, FEATURE_NAMES))[:, 1]
    return np.asarray(scores, dtype=np.float64)


@contextmanager
def _quiet_empty_features() -> Iterator[None]:
    """The imputer drops a feature with no observed value among the cases (e.g. an overstay history
    no labelled case has): expected, and said on every training otherwise. Other warnings pass."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping features without any observed values")
        yield
