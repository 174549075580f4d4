"""The bias audit of a run: who the model's top-k list holds, by nationality, sex and age band.

Protected attributes come from the persons table here and only here; they are
joined to cases after scoring and never enter the feature matrix.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from features.tables import Tables
from training.bias import FairnessSettings, Flag, age_band, audit_views, proxy_auc
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


def listed_cases(scores: np.ndarray, labels: pd.DataFrame, main_k: int | str) -> pd.Series:
    """Which cases the top-k list of these scores holds (ties broken by person_id, as in evaluation)."""
    tie_key = labels.index.get_level_values("person_id").to_numpy(dtype=str)
    return pd.Series(top_k_mask(scores, main_k, tie_key), index=labels.index)


def run_bias_audit(
    tables: Tables,
    scores: np.ndarray,
    labels: pd.DataFrame,
    truth: pd.Series | None,
    main_k: int | str,
    bounds: tuple[float, float] | None = None,
    *,
    unbiased: pd.DataFrame | None = None,
    settings: FairnessSettings | None = None,
) -> tuple[pd.DataFrame, list[Flag]]:
    """The audit table of the top-k list in every view, and its flags.

    Views: "list" (selection rates beside each group's estimated violation rate), "labelled"
    (error rates on every inspected case: selection-biased, so its flags are marked biased and
    never block), "random_sample" (RANDOM inspections), "unbiased" (when `unbiased` evidence is
    given: columns `label` and `weight` = 1 / inclusion probability, indexed like `labels`)
    and "truth" (simulated data only: reported, never a decision). `bounds`, when given,
    replaces settings.bounds.
    """
    settings = settings or FairnessSettings()
    if bounds is not None:
        settings = replace(settings, bounds=(bounds[0], bounds[1]))
    groups = protected_groups(tables, labels.index)
    return audit_views(
        listed_cases(scores, labels, main_k),
        groups,
        view_labels(labels, truth, without_tips=False),
        unbiased=unbiased,
        biased_views=("labelled",),
        base_rate_view="random_sample",
        settings=settings,
    )


def nationality_proxy_auc(tables: Tables, features: pd.DataFrame, seed: int) -> float:
    """How well the model's features predict nationality (macro one-vs-rest AUC)."""
    groups = protected_groups(tables, features.index)
    return proxy_auc(features, groups["nationality"], seed=seed)
