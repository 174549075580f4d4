"""Evaluation of the model and the baselines on the test fold, in three views.

- labelled: every labelled test case (biased toward what past policy inspected);
- labelled_without_tips: the same without TIP-triggered inspections (a list made on T
  cannot know of a tip that comes after T, so its results are reported apart);
- random_sample: RANDOM-inspected cases only, the unbiased estimate (with a
  Wilson interval, since the sample is small);
- truth: every case against the simulator's hidden truth, when the data set
  has `_truth/` (what the top k would really find).
Metric keys are "<view>/<scorer>/<metric>", e.g. "labelled/model/precision@10%".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.catalog import FAMILY_LABELS, FEATURES_BY_NAME
from features.pipeline import to_day
from features.timeline import NEVER, codes_of, day_numbers
from models.order import rank_order
from training.metrics import evaluate_ranking, resolve_k, wilson_interval

Scores = npt.NDArray[np.float64]
VIEWS = ("labelled", "labelled_without_tips", "random_sample", "truth")


def view_labels(
    labels: pd.DataFrame, truth: pd.Series | None, without_tips: bool = True
) -> dict[str, pd.Series]:
    """The label series of each view available for these cases (`without_tips`: with the
    labelled view without TIP-triggered inspections)."""
    views = {"labelled": labels["label"], "random_sample": labels["random_label"]}
    if without_tips and "untipped_label" in labels:
        views["labelled_without_tips"] = labels["untipped_label"]
    if truth is not None:
        views["truth"] = truth.astype("boolean")
    return views


def evaluate_views(
    scores: Mapping[str, Scores],
    labels: pd.DataFrame,
    truth: pd.Series | None,
    ks: Sequence[int | str],
    main_k: int | str,
) -> pd.DataFrame:
    """One row per (view, scorer) with every ranking metric; ties broken by person_id."""
    tie_key = labels.index.get_level_values("person_id").to_numpy(dtype=str)
    rows = []
    for view, label in view_labels(labels, truth).items():
        for scorer, values in scores.items():
            metrics = evaluate_ranking(values, label, ks, tie_key=tie_key)
            labelled = metrics.get(f"labelled@{main_k}", float("nan"))
            precision = metrics.get(f"precision@{main_k}", float("nan"))
            if labelled and not np.isnan(labelled) and not np.isnan(precision):
                low, high = wilson_interval(round(precision * labelled), int(labelled))
            else:
                low, high = float("nan"), float("nan")
            rows.append(
                {
                    "view": view,
                    "scorer": scorer,
                    **metrics,
                    f"precision@{main_k}_low": low,
                    f"precision@{main_k}_high": high,
                }
            )
    return pd.DataFrame(rows)


def flatten(table: pd.DataFrame) -> dict[str, float]:
    """The evaluation table as flat "<view>/<scorer>/<metric>" keys (for MLflow and gates)."""
    out: dict[str, float] = {}
    for row in table.to_dict("records"):
        prefix = f"{row.pop('view')}/{row.pop('scorer')}"
        out.update({f"{prefix}/{k}": float(v) for k, v in row.items() if v is not None})
    return out


def top_k_mask(scores: Scores, k: int | str, tie_key: npt.NDArray[np.str_]) -> npt.NDArray[np.bool_]:
    """Which cases a list of capacity k holds (same ordering as the metrics)."""
    n = resolve_k(k, len(scores))
    listed = np.zeros(len(scores), dtype=bool)
    listed[rank_order(scores, tie_key)[:n]] = True
    return listed


def shap_importance(contributions: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per feature and its family, largest first."""
    values = contributions.drop(columns="bias").abs().mean()
    frame = pd.DataFrame({"feature": values.index, "mean_abs_shap": values.to_numpy()})
    frame["family"] = [FAMILY_LABELS[FEATURES_BY_NAME[f].family][0] for f in frame["feature"]]
    return frame.sort_values("mean_abs_shap", ascending=False, ignore_index=True)


def truth_labels(truth: pd.DataFrame, cases: pd.Index, horizon_days: int) -> pd.Series:
    """For each (person_id, as_of) case: was the person in violation at any time in (T, T+H]?

    `truth` is the simulated ground truth an edge read (`training.truth.load_truth`): evaluation only.
    """
    person_ids = pd.Index(cases.get_level_values("person_id").unique())
    person = codes_of(truth["person_id"], person_ids)
    start = day_numbers(truth["start_date"])
    end = day_numbers(truth["end_date"], missing=NEVER)
    out = np.zeros(len(cases), dtype=bool)
    case_person = codes_of(pd.Series(cases.get_level_values("person_id")), person_ids)
    case_day = np.array([to_day(d) for d in cases.get_level_values("as_of").unique()])
    as_of_days = day_numbers(pd.Series(cases.get_level_values("as_of")))
    for t in case_day:
        overlaps = (person >= 0) & (start <= t + horizon_days) & (end > t)
        in_violation = np.zeros(len(person_ids), dtype=bool)
        in_violation[person[overlaps]] = True
        rows = as_of_days == t
        out[rows] = in_violation[case_person[rows]]
    return pd.Series(out, index=cases, name="truth")
