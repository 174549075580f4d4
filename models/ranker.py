"""What a Timpora model is: one artefact that turns a feature matrix into scores and contributions.

`RiskModel` carries everything scoring needs besides the data: the LightGBM
booster, the allow-listed feature names in order, the categories of the
categorical features, the label horizon, the data contract version, the
objective and a Platt calibration from raw margin to probability. Training,
evaluation, ranking and serving all load this one object.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

from features.catalog import FEATURES_BY_NAME

FloatMatrix = npt.NDArray[np.float64]
# Prediction and TreeSHAP run on one thread. OpenMP's worker threads spin-wait for the other core,
# so when a web server or a second process shares the two cores, two threads are 10-25x slower
# (one-row TreeSHAP 8 ms instead of 0.3 ms; 10,000 rows 0.56M rows/s instead of 1.4M), and one
# thread is as fast as two for the batch sizes scoring sees (bench/bench_serve.py).
PREDICT_THREADS = 1
BOOSTER_FILE = "booster.txt"
META_FILE = "risk_model.json"


def feature_matrix(features: pd.DataFrame, names: tuple[str, ...]) -> FloatMatrix:
    """The allow-listed columns, in order, as a float matrix; categoricals become their codes.

    Categories are fixed by the feature registry, so the codes mean the same in
    training and serving. Unknown or missing categories are NaN.
    """
    missing = [name for name in names if name not in features.columns]
    if missing:
        raise KeyError(f"feature matrix lacks {len(missing)} model feature(s): {', '.join(missing[:5])}")
    out = np.empty((len(features), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        column = features[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            codes = column.cat.codes.to_numpy(dtype=np.float64)
            codes[codes < 0] = np.nan
            out[:, j] = codes
        else:
            out[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


@dataclass
class RiskModel:
    """A fitted ranker with what it needs to score and explain a feature matrix."""

    booster: lgb.Booster
    feature_names: tuple[str, ...]
    horizon_days: int
    contract_version: str
    objective: str
    calibration: tuple[float, float] = (1.0, 0.0)  # probability = sigmoid(a * margin + b)
    info: dict[str, Any] = field(default_factory=dict)  # training window, params, metrics...

    @property
    def categories(self) -> dict[str, tuple[str, ...]]:
        return {
            name: FEATURES_BY_NAME[name].categories or ()
            for name in self.feature_names
            if FEATURES_BY_NAME[name].is_categorical
        }

    def margin(self, matrix: FloatMatrix) -> npt.NDArray[np.float64]:
        """Raw model output: the ranking key (higher = inspect first)."""
        return np.asarray(
            self.booster.predict(matrix, raw_score=True, num_threads=PREDICT_THREADS), dtype=np.float64
        )

    def margin_of(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        return self.margin(feature_matrix(features, self.feature_names))

    def score(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Calibrated probability that an inspection within the horizon finds a violation."""
        return self.probability(self.margin(feature_matrix(features, self.feature_names)))

    def probability(self, margin: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        a, b = self.calibration
        return np.asarray(1.0 / (1.0 + np.exp(-(a * margin + b))), dtype=np.float64)

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Native TreeSHAP contributions to the margin, one column per feature plus `bias`.

        About 0.3 ms a row for a 30-tree model, 2 ms for 300 trees: call it for the rows someone will read.
        """
        values = self.contributions_of(feature_matrix(features, self.feature_names))
        return pd.DataFrame(values, index=features.index, columns=[*self.feature_names, "bias"])

    def contributions_of(self, matrix: FloatMatrix) -> FloatMatrix:
        """TreeSHAP contributions of a feature matrix: a column per feature, then the bias (base value)."""
        contributions = self.booster.predict(matrix, pred_contrib=True, num_threads=PREDICT_THREADS)
        return np.asarray(contributions, dtype=np.float64)

    def readable_values(self, matrix: FloatMatrix) -> npt.NDArray[np.object_]:
        """A feature matrix in the features' own terms, for reasons: category names, None for missing."""
        out = matrix.astype(object)
        out[np.isnan(matrix)] = None
        for j, name in enumerate(self.feature_names):
            categories = FEATURES_BY_NAME[name].categories
            if categories:
                codes = matrix[:, j]
                known = ~np.isnan(codes)
                out[known, j] = np.asarray(categories, dtype=object)[codes[known].astype(np.int64)]
        return out

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(directory / BOOSTER_FILE)
        meta = asdict(self)
        meta.pop("booster")
        meta["categories"] = self.categories
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, default=str))

    @classmethod
    def load(cls, directory: Path) -> RiskModel:
        meta = json.loads((directory / META_FILE).read_text())
        meta.pop("categories", None)
        booster = lgb.Booster(model_file=str(directory / BOOSTER_FILE))
        return cls(
            booster=booster,
            feature_names=tuple(meta.pop("feature_names")),
            calibration=(float(meta["calibration"][0]), float(meta["calibration"][1])),
            **{k: v for k, v in meta.items() if k != "calibration"},
        )
