"""Plain-language reasons: the features that pushed a case up the list, in English and Bahasa Indonesia.

A reason is a registered feature with a positive SHAP contribution, worded from
the feature registry with the case's value ("Labour findings against the sponsor
in the last 365 days: 3"). Reasons explain an order of work; they are not
findings about the person.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from features.catalog import FEATURES_BY_NAME, Unit

YES_NO = {"en": ("no", "yes"), "id": ("tidak", "ya")}


@dataclass(frozen=True)
class Reason:
    feature: str
    contribution: float
    value: object
    en: str
    id: str


def format_value(feature: str, value: object, language: str = "en") -> str:
    """A feature value as a supervisor would read it."""
    unit = FEATURES_BY_NAME[feature].unit
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "none" if language == "en" else "tidak ada"
    if unit == Unit.CATEGORY:
        return str(value)
    number = float(value)  # type: ignore[arg-type]
    if unit == Unit.FLAG:
        return YES_NO[language][int(number > 0)]
    if unit == Unit.SHARE:
        return f"{number:.0%}"
    if unit == Unit.RATIO:
        return f"{number:.2f}"
    if unit == Unit.DAYS:
        return f"{number:,.0f} {'days' if language == 'en' else 'hari'}"
    return f"{number:,.0f}"


def describe(feature: str, value: object) -> tuple[str, str]:
    """The reason text for one feature and value, in English and Bahasa Indonesia."""
    spec = FEATURES_BY_NAME[feature]
    if spec.unit == Unit.FLAG and isinstance(value, int | float) and not math.isnan(value) and value > 0:
        return spec.en, spec.id  # "In the country without a valid permit" needs no ": yes"
    return (
        f"{spec.en}: {format_value(feature, value, 'en')}",
        f"{spec.id}: {format_value(feature, value, 'id')}",
    )


def top_reasons(
    values: npt.NDArray[np.object_], contributions: npt.NDArray[np.float64], names: Sequence[str], n: int = 3
) -> list[list[Reason]]:
    """For each row, the `n` features that raised its score most (positive contributions only).

    `values` holds the readable feature values (`RiskModel.readable_values`) and
    `contributions` the SHAP contributions, one column per name (a trailing bias
    column is ignored).
    """
    shap = contributions[:, : len(names)]
    order = np.argsort(-shap, axis=1, kind="stable")[:, :n]
    out: list[list[Reason]] = []
    for row, columns in enumerate(order):
        reasons = []
        for j in columns:
            contribution = float(shap[row, j])
            if contribution <= 0:
                break
            value = values[row, j]
            en, id_ = describe(names[j], value)
            reasons.append(Reason(names[j], contribution, value, en, id_))
        out.append(reasons)
    return out
