"""Fitting the LightGBM ranker: binary classifier or lambdarank, early-stopped on a later fold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.linear_model import LogisticRegression

from features.catalog import FEATURE_NAMES, FEATURES_BY_NAME
from features.contract import CONTRACT_VERSION
from models.ranker import RiskModel, feature_matrix
from training.settings import TrainingSettings

Objective = Literal["binary", "lambdarank"]
MAX_QUERY_SIZE = 200  # lambdarank query groups: one as-of date, split into chunks of this size


@dataclass(frozen=True)
class FitConfig:
    """LightGBM settings. A training run sets the objective, and the seed and thread count from its
    training settings (`training.train.TrainOptions`); the defaults here are those settings' defaults."""

    objective: Objective = "binary"
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 40
    feature_fraction: float = 0.8
    lambda_l2: float = 1.0
    max_rounds: int = 600
    early_stopping_rounds: int = 50
    seed: int = TrainingSettings.seed
    num_threads: int = TrainingSettings.num_threads
    features: tuple[str, ...] | None = None  # a subset of the allow-list (default: all of it)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The model's features: the allow-list, or the subset asked for, in allow-list order."""
        if self.features is None:
            return FEATURE_NAMES
        unknown = sorted(set(self.features) - set(FEATURE_NAMES))
        if unknown:
            raise ValueError(f"features not in the allow-list (features/catalog.py): {', '.join(unknown)}")
        return tuple(name for name in FEATURE_NAMES if name in set(self.features))

    def lightgbm_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "objective": self.objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
        }
        if self.objective == "lambdarank":
            params["metric"] = "ndcg"
            params["eval_at"] = [50]
        else:
            params["metric"] = "binary_logloss"
        return params


@dataclass
class LabelledCases:
    """Labelled cases ready for fitting: features, 0/1 labels, weights, as-of dates."""

    features: pd.DataFrame
    label: npt.NDArray[np.int64]
    weight: npt.NDArray[np.float64]
    as_of: npt.NDArray[np.datetime64] = field(init=False)

    def __post_init__(self) -> None:
        self.as_of = self.features.index.get_level_values("as_of").to_numpy()


def _query_groups(as_of: npt.NDArray[np.datetime64], seed: int) -> tuple[npt.NDArray[np.int64], list[int]]:
    """Row order and group sizes: rows grouped by as-of date, each date cut into chunks."""
    rng = np.random.default_rng(seed)
    shuffle = rng.permutation(len(as_of))
    order = shuffle[np.argsort(as_of[shuffle], kind="stable")]
    sizes: list[int] = []
    _, counts = np.unique(as_of[order], return_counts=True)
    for count in counts:
        full, rest = divmod(int(count), MAX_QUERY_SIZE)
        sizes += [MAX_QUERY_SIZE] * full + ([rest] if rest else [])
    return order, sizes


def _dataset(cases: LabelledCases, config: FitConfig, reference: lgb.Dataset | None = None) -> lgb.Dataset:
    names = list(config.feature_names)
    categorical = [n for n in names if FEATURES_BY_NAME[n].is_categorical]
    matrix = feature_matrix(cases.features, config.feature_names)
    label, weight = cases.label, cases.weight
    group = None
    if config.objective == "lambdarank":
        order, group = _query_groups(cases.as_of, config.seed)
        matrix, label, weight = matrix[order], label[order], weight[order]
    return lgb.Dataset(
        matrix,
        label=label,
        weight=weight,
        group=group,
        feature_name=names,
        categorical_feature=categorical,
        reference=reference,
        free_raw_data=False,
        params={"verbosity": -1},
    )


def _platt(margin: npt.NDArray[np.float64], label: npt.NDArray[np.int64]) -> tuple[float, float]:
    """Map raw margins to probabilities on the validation fold (Platt scaling)."""
    if len(np.unique(label)) < 2:
        return 1.0, 0.0
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), label)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def balanced(cases: LabelledCases) -> LabelledCases:
    """The same cases with positive weights scaled so both classes carry equal total weight."""
    positive = cases.label == 1
    total_pos, total_neg = cases.weight[positive].sum(), cases.weight[~positive].sum()
    if total_pos == 0 or total_neg == 0:
        return cases
    weight = np.where(positive, cases.weight * total_neg / total_pos, cases.weight)
    return LabelledCases(cases.features, cases.label, weight)


def fit_ranker(
    train: LabelledCases,
    validation: LabelledCases,
    config: FitConfig,
    horizon_days: int,
    info: Mapping[str, Any] | None = None,
) -> RiskModel:
    """Fit one LightGBM model with early stopping on the later validation fold, calibrated on it
    (`info`: more to record in the model's info, e.g. its training window)."""
    if train.label.sum() == 0 or train.label.sum() == len(train.label):
        raise ValueError("training cases need both outcomes (violation found and not found)")
    params = config.lightgbm_params()
    if config.objective == "binary":
        # Class imbalance: positives weigh as much as negatives in total, in training AND in the
        # validation fold, so early stopping judges the same balanced loss it optimises.
        train, validation = balanced(train), balanced(validation)
    train_set = _dataset(train, config)
    valid_set = _dataset(validation, config, reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=config.max_rounds,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )
    uncalibrated = RiskModel(
        booster=booster,
        feature_names=config.feature_names,
        horizon_days=horizon_days,
        contract_version=CONTRACT_VERSION,
        objective=config.objective,
        info={"params": asdict(config), "best_iteration": booster.best_iteration, **(info or {})},
    )
    margin = uncalibrated.margin(feature_matrix(validation.features, config.feature_names))
    return replace(uncalibrated, calibration=_platt(margin, validation.label))
