"""Bias audit of one inspection list (Aequitas conventions) and a check for proxies of protected attributes.

The audit compares, group by group within each protected attribute, how much of
the list a group gets and how often the list is wrong about it. Error rates use
the labelled (inspected) cases only: an uninspected case is neither a false
positive nor a true negative. Inputs are aligned by position (pandas inputs
must share an index).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from training.metrics import Values, label_masks

AGE_BANDS = ("<25", "25-34", "35-44", "45-54", "55-64", "65+")
AUDIT_METRICS = ("ppr", "pprev", "precision", "fdr", "fpr", "fnr", "recall")
FOUR_FIFTHS = (0.8, 1.25)
# A disparity is flagged only when both groups have at least this many cases in the metric's
# denominator: with fewer, a ratio of 0/3 vs 1/9 is noise, not evidence.
MIN_SUPPORT = 30
# The count each metric divides by; ppr divides by the list size, so its disparity mostly
# reflects group size and is reported but never flagged (pprev compares selection rates).
DENOMINATORS: dict[str, tuple[str, ...] | None] = {
    "ppr": None,
    "pprev": ("group_size",),
    "precision": ("tp", "fp"),
    "fdr": ("tp", "fp"),
    "fpr": ("fp", "tn"),
    "fnr": ("fn", "tp"),
    "recall": ("fn", "tp"),
}
MISSING_GROUP = "<NA>"


def age_band(birth_year: pd.Series, as_of: pd.Series | pd.Index | dt.date | str) -> pd.Series:
    """Ordered age bands from birth year; age is as_of's year minus birth year (birthdays are unknown)."""
    if isinstance(as_of, pd.Series | pd.Index):
        if len(as_of) != len(birth_year):
            raise ValueError(f"as_of ({len(as_of)}) and birth_year ({len(birth_year)}) differ in length")
        years = np.asarray(pd.DatetimeIndex(as_of).year, dtype=np.float64)
    else:
        years = np.full(len(birth_year), float(pd.Timestamp(as_of).year))
    age = years - birth_year.to_numpy(dtype=np.float64, na_value=np.nan)
    bands = pd.cut(age, bins=[-np.inf, 25, 35, 45, 55, 65, np.inf], right=False, labels=list(AGE_BANDS))
    return pd.Series(bands, index=birth_year.index, name="age_band")


def _check_aligned(index: pd.Index, **inputs: Values) -> None:
    for name, values in inputs.items():
        if len(values) != len(index):
            raise ValueError(f"{name} ({len(values)}) and groups ({len(index)}) differ in length")
        if isinstance(values, pd.Series) and not values.index.equals(index):
            raise ValueError(f"{name} and groups have different indexes: align them first")


def _divide(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype("float64")


def _disparity(values: pd.Series, reference: float) -> pd.Series:
    """Ratio to the reference group's value: 1 when both are 0, inf when only the reference is 0."""
    if reference == 0:
        return pd.Series(np.where(values == 0, 1.0, math.inf), index=values.index).where(values.notna())
    return values / reference  # NaN when either is undefined


def audit_groups(
    listed: Values,
    labels: Values,
    groups: pd.DataFrame,
    reference: dict[str, str] | None = None,
    bounds: tuple[float, float] = FOUR_FIFTHS,
    min_support: int = MIN_SUPPORT,
) -> pd.DataFrame:
    """One row per (attribute, group): counts, Aequitas metrics, disparities and flags.

    ppr is the group's share of the list, pprev the share of the group listed; precision,
    fdr, fpr, fnr and recall come from the labelled cases. `<metric>_disparity` divides by the
    reference group's value (default: the attribute's largest group) and `<metric>_flag` marks
    ratios outside `bounds`. Undefined metrics (0 denominators) are NaN and never flagged, and
    neither is a metric whose denominator holds fewer than `min_support` cases in the group or
    the reference; ppr disparities are reported, never flagged (see DENOMINATORS).
    Missing attribute values form their own group, "<NA>".
    """
    low, high = bounds
    if not 0 < low <= 1 <= high:
        raise ValueError(f"bounds must satisfy 0 < low <= 1 <= high, got {bounds}")
    if groups.empty:
        raise ValueError("no cases or no attributes to audit")
    _check_aligned(groups.index, listed=listed, labels=labels)
    reference = reference or {}
    if unknown := set(reference) - set(groups.columns):
        raise ValueError(f"reference names attributes not in groups: {sorted(unknown)}")
    on_list = (listed if isinstance(listed, pd.Series) else pd.Series(listed)).to_numpy(dtype=bool)
    labelled, positive = label_masks(labels)
    negative = labelled & ~positive
    cases = pd.DataFrame(
        {
            "group_size": 1,
            "listed": on_list,
            "labelled": labelled,
            "tp": on_list & positive,
            "fp": on_list & negative,
            "fn": ~on_list & positive,
            "tn": ~on_list & negative,
        }
    ).astype("int64")
    total_listed = int(on_list.sum())
    parts = []
    for attribute in groups.columns:
        key = groups[attribute].reset_index(drop=True)
        counts = cases.groupby(key, observed=True, sort=True).sum()
        counts.index = counts.index.astype(str)
        if key.isna().any():
            counts.loc[MISSING_GROUP] = cases[key.isna().to_numpy()].sum()
        sizes = counts["group_size"].drop(MISSING_GROUP, errors="ignore")
        ref = reference.get(attribute) or str(sizes.idxmax() if len(sizes) else MISSING_GROUP)
        if ref not in counts.index:
            raise ValueError(f"reference group {ref!r} does not occur in {attribute!r}")
        part = counts.rename_axis("group").reset_index()
        part.insert(0, "attribute", attribute)
        part.insert(2, "reference", ref)
        part["ppr"] = _divide(part["listed"], pd.Series(total_listed, index=part.index))
        part["pprev"] = _divide(part["listed"], part["group_size"])
        part["precision"] = _divide(part["tp"], part["tp"] + part["fp"])
        part["fdr"] = _divide(part["fp"], part["tp"] + part["fp"])
        part["fpr"] = _divide(part["fp"], part["fp"] + part["tn"])
        part["fnr"] = _divide(part["fn"], part["fn"] + part["tp"])
        part["recall"] = _divide(part["tp"], part["fn"] + part["tp"])
        at_reference = part["group"] == ref
        for metric in AUDIT_METRICS:
            ratio = _disparity(part[metric], float(part.loc[at_reference, metric].iloc[0]))
            part[f"{metric}_disparity"] = ratio
            columns = DENOMINATORS[metric]
            if columns is None:
                supported = pd.Series(False, index=part.index)
            else:
                support = part[list(columns)].sum(axis=1)
                supported = (support >= min_support) & (float(support[at_reference].iloc[0]) >= min_support)
            part[f"{metric}_flag"] = ((ratio < low) | (ratio > high)) & supported
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def flags_summary(audit: pd.DataFrame) -> list[str]:
    """Human-readable flags, e.g. "nationality=RUS: fpr 1.62x the reference CHN (0.21 vs 0.13)"."""
    lines = []
    for row in audit.to_dict("records"):
        reference = audit[(audit["attribute"] == row["attribute"]) & (audit["group"] == row["reference"])]
        for metric in AUDIT_METRICS:
            if not row[f"{metric}_flag"]:
                continue
            value, ref_value = row[metric], float(reference[metric].iloc[0])
            ratio = row[f"{metric}_disparity"]
            size = f"{ratio:.2f}x" if math.isfinite(ratio) else "above 0 where it is 0 for"
            lines.append(
                f"{row['attribute']}={row['group']}: {metric} {size} the reference {row['reference']}"
                f" ({value:.2g} vs {ref_value:.2g})"
            )
    return lines


def _model_ready(features: pd.DataFrame) -> pd.DataFrame:
    """Numbers as floats with NaN, categoricals kept, text as categories; neutral column names."""
    columns = {}
    for i, (_, column) in enumerate(features.items()):
        if isinstance(column.dtype, pd.CategoricalDtype):
            columns[f"f{i}"] = column.reset_index(drop=True)
        elif pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
            columns[f"f{i}"] = pd.Series(column.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            columns[f"f{i}"] = column.reset_index(drop=True).astype("category")
    return pd.DataFrame(columns, index=pd.RangeIndex(len(features)))


def _group_rare(target: pd.Series, min_count: int, max_classes: int) -> pd.Series:
    counts = target.value_counts()
    kept: Sequence[str] = list(counts.index[(counts >= min_count).to_numpy()][:max_classes])
    return target.where(target.isin(kept), "OTHER")


def proxy_auc(
    features: pd.DataFrame,
    attribute: pd.Series,
    seed: int = 0,
    *,
    folds: int = 3,
    max_rows: int = 20_000,
    min_count: int = 50,
    max_classes: int = 12,
) -> float:
    """How well the features predict a protected attribute: cross-validated macro one-vs-rest ROC AUC.

    About 0.5 means the features carry little of the attribute; near 1 means some feature is a proxy
    for it. LightGBM on at most `max_rows` rows (seeded sample); the `max_classes` commonest classes
    with at least `min_count` rows are kept, the rest pooled as "OTHER". NaN with fewer than 2 classes.
    """
    _check_aligned(features.index, attribute=attribute)
    if folds < 2 or min_count < folds:
        raise ValueError(f"need folds >= 2 and min_count >= folds, got folds={folds}, min_count={min_count}")
    target = attribute.reset_index(drop=True)
    rows = np.flatnonzero(target.notna().to_numpy())
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))
    y = _group_rare(target.iloc[rows].astype(str).reset_index(drop=True), min_count, max_classes)
    sizes = y.value_counts()
    keep = y.isin(sizes.index[(sizes >= folds).to_numpy()]).to_numpy()  # a pooled OTHER may still be tiny
    y = y[keep].reset_index(drop=True)
    if y.nunique() < 2:
        return math.nan
    x = _model_ready(features).iloc[rows[keep]].reset_index(drop=True)
    model = LGBMClassifier(
        n_estimators=50, learning_rate=0.1, num_leaves=15, max_bin=63, random_state=seed, n_jobs=1, verbose=-1
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, x, y, cv=cv, method="predict_proba")
    classes = np.sort(y.unique())
    if len(classes) == 2:
        return float(roc_auc_score(y == classes[1], proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
