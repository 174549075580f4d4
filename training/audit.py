"""The bias audit of a run: who the model's top-k list holds, by nationality, sex and age band.

Protected attributes come from the persons table here and only here; they are
joined to cases after scoring and never enter the feature matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.tables import Tables
from training.bias import age_band, audit_groups, flags_summary, proxy_auc
from training.evaluate import top_k_mask, view_labels

AUDIT_ATTRIBUTES = ("nationality", "sex", "age_band")


def protected_groups(tables: Tables, cases: pd.Index) -> pd.DataFrame:
    """Nationality, sex and age band of each case (age on its as-of date)."""
    persons = tables.persons.set_index("person_id")
    ids = cases.get_level_values("person_id")
    rows = persons.reindex(ids)
    as_of = pd.Series(cases.get_level_values("as_of"), index=range(len(cases)))
    return pd.DataFrame(
        {
            "nationality": rows["nationality"].to_numpy(),
            "sex": rows["sex"].to_numpy(),
            "age_band": age_band(rows["birth_year"].reset_index(drop=True), as_of).to_numpy(),
        },
        index=cases,
    )


def run_bias_audit(
    tables: Tables,
    scores: np.ndarray,
    labels: pd.DataFrame,
    truth: pd.Series | None,
    main_k: str,
    bounds: tuple[float, float],
) -> tuple[pd.DataFrame, list[str]]:
    """The audit table for each view (labelled, random_sample, truth) and the flags of all views."""
    groups = protected_groups(tables, labels.index)
    tie_key = labels.index.get_level_values("person_id").to_numpy(dtype=str)
    listed = pd.Series(top_k_mask(scores, main_k, tie_key), index=labels.index)
    frames, flags = [], []
    for view, label in view_labels(labels, truth).items():
        audit = audit_groups(listed, label, groups, bounds=bounds)
        audit.insert(0, "view", view)
        frames.append(audit)
        for flag in flags_summary(audit):
            # Selection rates (pprev) do not depend on labels: report them once, for the list.
            if ": pprev " in flag:
                if view == "labelled":
                    flags.append(f"list: {flag}")
            else:
                flags.append(f"{view}: {flag}")
    return pd.concat(frames, ignore_index=True), flags


def nationality_proxy_auc(tables: Tables, features: pd.DataFrame, seed: int) -> float:
    """How well the model's features predict nationality (macro one-vs-rest AUC)."""
    groups = protected_groups(tables, features.index)
    return proxy_auc(features, groups["nationality"], seed=seed)
