"""The MLflow face of a `RiskModel`: a pyfunc that loads the saved artefact and returns calibrated scores.

The pyfunc holds no state of its own; the booster, feature list, categories and
calibration live in the `risk_model` artefact directory written by
`RiskModel.save`, so the pickled object is just this class. MLflow's column
schema has no categorical type: over the pyfunc, categorical features travel as
text (`pyfunc_input`) and are turned back into the registry's categories here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel, PythonModelContext
from mlflow.types import ColSpec, Schema, TensorSpec

from features.catalog import FEATURES_BY_NAME
from models.ranker import RiskModel

ARTIFACT_KEY = "risk_model"  # key of the RiskModel directory in the pyfunc's artifacts


def pyfunc_input(features: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The model's columns, in order, as the pyfunc schema expects them: categoricals as text.

    The index is dropped (MLflow's schema and input example are positional).
    Missing categories become None.
    """
    frame = features.loc[:, list(names)].reset_index(drop=True)
    for name in names:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            frame[name] = pd.Series(
                column.astype(object).where(column.notna(), None), index=frame.index, dtype=object
            )
    return frame


def pyfunc_signature(names: Sequence[str]) -> ModelSignature:
    """The pyfunc's schema, from the feature registry rather than inferred from a few example rows.

    Every model column is required (a missing column is refused by MLflow before
    scoring); values may be missing. Numeric features are doubles, categorical
    features text. The output is one calibrated score per row.
    """
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec("string" if FEATURES_BY_NAME[name].is_categorical else "double", name, required=True)
        for name in names
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([TensorSpec(np.dtype(np.float64), (-1,))]))


def restore_categories(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Categorical features given as text back to pandas categoricals with the registry's categories.

    Text outside the closed vocabulary becomes missing, as in `feature_matrix`.
    Numeric codes and columns that are already categorical pass through unchanged.
    """
    out = frame
    for name in names:
        spec = FEATURES_BY_NAME[name]
        if spec.categories is None or name not in frame.columns:
            continue
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(column.dtype):
            continue
        if out is frame:
            out = frame.copy()
        out[name] = pd.Categorical(column.astype(object), categories=pd.Index(spec.categories))
    return out


class RiskModelPyfunc(PythonModel):
    """Scores a feature matrix with the `RiskModel` stored in the model's artifacts."""

    _risk_model: RiskModel | None = None

    @property
    def risk_model(self) -> RiskModel:
        """The loaded `RiskModel` (available once MLflow has called `load_context`)."""
        if self._risk_model is None:
            raise RuntimeError("the RiskModel is loaded by load_context; load this model with mlflow")
        return self._risk_model

    def load_context(self, context: PythonModelContext) -> None:
        """Load the RiskModel from the artefact directory MLflow has made available."""
        self._risk_model = RiskModel.load(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> npt.NDArray[np.float64]:
        """Calibrated probability of a finding, one per row of the feature matrix."""
        model = self.risk_model
        return model.score(restore_categories(model_input, model.feature_names))
