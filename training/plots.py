"""Evaluation plots (PNG): precision-recall, calibration, SHAP summary, importance by family."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve

from training.metrics import reliability_curve


def _save(fig: Figure, path: Path) -> Path:
    """Figures are built with matplotlib's object API (no pyplot state, no display needed)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_precision_recall(
    scores: Mapping[str, npt.NDArray[np.float64]], label: pd.Series, path: Path
) -> Path:
    known = label.notna().to_numpy()
    truth = label[known].astype(bool).to_numpy()
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for name, values in scores.items():
        if truth.any() and not truth.all():
            precision, recall, _ = precision_recall_curve(truth, values[known])
            ax.plot(recall, precision, label=name)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall on labelled test cases")
    ax.legend()
    return _save(fig, path)


def plot_calibration(score: npt.NDArray[np.float64], label: pd.Series, path: Path) -> Path:
    curve = reliability_curve(score, label, bins=10)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    ax.plot(curve["mean_predicted"], curve["observed_rate"], marker="o", label="model")
    ax.set(xlabel="mean predicted", ylabel="observed rate", title="Calibration (labelled test cases)")
    ax.legend()
    return _save(fig, path)


def plot_shap_summary(contributions: pd.DataFrame, features: pd.DataFrame, path: Path) -> Path:
    import matplotlib.pyplot as plt
    import shap

    plt.switch_backend("Agg")  # shap draws through pyplot; files only

    names = [c for c in contributions.columns if c != "bias"]
    values = features[names].apply(lambda c: c.cat.codes if isinstance(c.dtype, pd.CategoricalDtype) else c)
    shap.summary_plot(
        contributions[names].to_numpy(),
        values.to_numpy(dtype=float),
        feature_names=names,
        show=False,
        max_display=20,
    )
    fig = plt.gcf()
    _save(fig, path)
    plt.close(fig)
    return path


def plot_family_importance(importance: pd.DataFrame, path: Path) -> Path:
    by_family = importance.groupby("family")["mean_abs_shap"].sum().sort_values()
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.barh(by_family.index, by_family.to_numpy())
    ax.set(xlabel="sum of mean |SHAP| (log-odds)", title="What drives the ranking, by family")
    return _save(fig, path)
