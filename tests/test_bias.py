"""Bias audit on a hand-built list of 12 cases (code tests), age bands, and the proxy check."""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from training.bias import AGE_BANDS, age_band, audit_groups, flags_summary, proxy_auc

# case: listed, label (None = not inspected), nationality, sex
CASES = [
    ("a1", True, True, "A", "F"),  # tp
    ("a2", True, False, "A", "M"),  # fp
    ("a3", False, True, "A", "F"),  # fn
    ("a4", False, False, "A", "M"),  # tn
    ("a5", False, False, "A", "F"),  # tn
    ("a6", True, None, "A", "M"),  # listed, unlabelled: in ppr/pprev only
    ("b1", True, False, "B", "M"),  # fp
    ("b2", True, False, "B", "F"),  # fp
    ("b3", False, True, "B", "M"),  # fn
    ("b4", False, None, "B", "F"),
    ("c1", False, False, "C", "M"),  # tn
    ("c2", False, None, "C", "F"),
]
INDEX = pd.Index([c[0] for c in CASES], name="person_id")
LISTED = pd.Series([c[1] for c in CASES], index=INDEX)
LABELS = pd.Series(pd.array([c[2] for c in CASES], dtype="boolean"), index=INDEX)
GROUPS = pd.DataFrame({"nationality": [c[3] for c in CASES], "sex": [c[4] for c in CASES]}, index=INDEX)
NAN = math.nan

# Worked by hand; 5 cases are listed in all.
# A: size 6, listed 3, tp 1 fp 1 fn 1 tn 2.  B: size 4, listed 2, tp 0 fp 2 fn 1 tn 0.  C: size 2, tn 1.
# F: size 6, listed 2 (a1, b2), tp 1 fp 1 fn 1 tn 1.  M: size 6, listed 3 (a2, a6, b1), tp 0 fp 2 fn 1 tn 2.
EXPECTED = {
    # (attribute, group): (size, listed, labelled, ppr, pprev, precision, fdr, fpr, fnr, recall)
    ("nationality", "A"): (6, 3, 5, 3 / 5, 3 / 6, 1 / 2, 1 / 2, 1 / 3, 1 / 2, 1 / 2),
    ("nationality", "B"): (4, 2, 3, 2 / 5, 2 / 4, 0.0, 1.0, 1.0, 1.0, 0.0),
    ("nationality", "C"): (2, 0, 1, 0.0, 0.0, NAN, NAN, 0.0, NAN, NAN),
    ("sex", "F"): (6, 2, 4, 2 / 5, 2 / 6, 1 / 2, 1 / 2, 1 / 2, 1 / 2, 1 / 2),
    ("sex", "M"): (6, 3, 5, 3 / 5, 3 / 6, 0.0, 1.0, 2 / 4, 1.0, 0.0),
}
METRICS = ["ppr", "pprev", "precision", "fdr", "fpr", "fnr", "recall"]
# Against the largest group: A for nationality; F for sex (F and M tie at 6, the first in order wins).
DISPARITY = {
    ("nationality", "A"): (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    ("nationality", "B"): (2 / 3, 1.0, 0.0, 2.0, 3.0, 2.0, 0.0),
    ("nationality", "C"): (0.0, 0.0, NAN, NAN, 0.0, NAN, NAN),
    ("sex", "F"): (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    ("sex", "M"): (1.5, 1.5, 0.0, 2.0, 1.0, 2.0, 0.0),
}
FLAGS = {
    ("nationality", "A"): set(),
    ("nationality", "B"): {"precision", "fdr", "fpr", "fnr", "recall"},
    ("nationality", "C"): {"pprev", "fpr"},  # NaN metrics are never flagged
    ("sex", "F"): set(),
    ("sex", "M"): {"pprev", "precision", "fdr", "fnr", "recall"},
}


@pytest.fixture(scope="module")
def audit() -> pd.DataFrame:
    return audit_groups(LISTED, LABELS, GROUPS, min_support=1).set_index(["attribute", "group"])


@pytest.mark.parametrize("row", list(EXPECTED))
def test_group_metrics_by_hand(audit: pd.DataFrame, row: tuple[str, str]) -> None:
    size, listed, labelled, *metrics = EXPECTED[row]
    got = audit.loc[row]
    assert (got["group_size"], got["listed"], got["labelled"]) == (size, listed, labelled)
    assert got[METRICS].tolist() == pytest.approx(metrics, nan_ok=True)


@pytest.mark.parametrize("row", list(DISPARITY))
def test_disparities_and_flags_by_hand(audit: pd.DataFrame, row: tuple[str, str]) -> None:
    got = audit.loc[row]
    assert got[[f"{m}_disparity" for m in METRICS]].tolist() == pytest.approx(DISPARITY[row], nan_ok=True)
    assert {m for m in METRICS if got[f"{m}_flag"]} == FLAGS[row]


def test_reference_defaults_to_the_largest_group(audit: pd.DataFrame) -> None:
    assert audit["reference"].to_dict() == {
        ("nationality", "A"): "A",
        ("nationality", "B"): "A",
        ("nationality", "C"): "A",
        ("sex", "F"): "F",
        ("sex", "M"): "F",
    }


def test_chosen_reference_and_zero_reference_values() -> None:
    audit = audit_groups(LISTED, LABELS, GROUPS, reference={"sex": "M"}, min_support=1).set_index(
        ["attribute", "group"]
    )
    female = audit.loc[("sex", "F")]
    assert female["fdr_disparity"] == pytest.approx(0.5)  # 1/2 against 1
    assert female["pprev_disparity"] == pytest.approx((1 / 3) / (1 / 2))
    assert female["precision_disparity"] == math.inf  # 1/2 where the reference has 0: flagged
    assert female["precision_flag"]
    assert audit.loc[("nationality", "B"), "reference"] == "A"  # other attributes keep the default


def test_both_zero_is_no_disparity() -> None:
    groups = pd.DataFrame({"g": ["X", "X", "Y"]})
    audit = audit_groups([True, True, True], pd.array([False, False, False], dtype="boolean"), groups)
    assert audit["precision"].tolist() == [0.0, 0.0]
    assert audit["precision_disparity"].tolist() == [1.0, 1.0]
    assert not audit["precision_flag"].any()


@pytest.mark.parametrize(
    ("bounds", "flagged"),
    [
        ((0.8, 1.25), {"pprev", "precision", "fdr", "fnr", "recall"}),
        ((0.5, 2.0), {"precision", "recall"}),  # 1.5 and 2.0 are inside: the bounds are inclusive
        ((0.0001, 10.0), {"precision", "recall"}),
    ],
)
def test_flag_bounds(bounds: tuple[float, float], flagged: set[str]) -> None:
    audit = audit_groups(LISTED, LABELS, GROUPS, bounds=bounds, min_support=1).set_index(
        ["attribute", "group"]
    )
    assert {m for m in METRICS if audit.loc[("sex", "M"), f"{m}_flag"]} == flagged


def test_missing_attribute_values_form_their_own_group() -> None:
    groups = GROUPS.assign(nationality=["A", None, *GROUPS["nationality"].iloc[2:]])
    audit = audit_groups(LISTED, LABELS, groups)
    nationality = audit[audit["attribute"] == "nationality"].set_index("group")
    assert nationality.loc["<NA>", "group_size"] == 1
    assert nationality.loc["<NA>", "fp"] == 1  # a2
    assert nationality["group_size"].sum() == 12
    assert nationality["ppr"].sum() == pytest.approx(1.0)


def test_age_band_rows_follow_band_order() -> None:
    groups = pd.DataFrame({"age_band": age_band(pd.Series([1950, 2001, 1980]), dt.date(2024, 1, 1))})
    audit = audit_groups([True, False, True], [True, None, False], groups)
    assert audit["group"].tolist() == ["<25", "35-44", "65+"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reference": {"nationality": "Z"}}, "does not occur"),
        ({"reference": {"religion": "X"}}, "not in groups"),
        ({"bounds": (1.2, 2.0)}, "bounds"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audit_groups(LISTED, LABELS, GROUPS, **kwargs)


def test_misaligned_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="different indexes"):
        audit_groups(LISTED.iloc[::-1], LABELS, GROUPS)
    with pytest.raises(ValueError, match="differ in length"):
        audit_groups(LISTED.iloc[1:], LABELS, GROUPS)


def test_flags_summary(audit: pd.DataFrame) -> None:
    lines = flags_summary(audit.reset_index())
    assert len(lines) == sum(len(f) for f in FLAGS.values()) == 12
    assert "nationality=B: fpr 3.00x the reference A (1 vs 0.33)" in lines
    assert "sex=M: pprev 1.50x the reference F (0.5 vs 0.33)" in lines
    assert not any(": ppr " in line for line in lines)  # ppr disparities are never flagged
    inf = flags_summary(audit_groups(LISTED, LABELS, GROUPS, reference={"sex": "M"}, min_support=1))
    assert "sex=F: precision above 0 where it is 0 for the reference M (0.5 vs 0)" in inf


@pytest.mark.parametrize(
    ("birth_year", "band"),
    [
        (2000, "<25"),
        (1999, "25-34"),
        (1990, "25-34"),
        (1989, "35-44"),
        (1980, "35-44"),
        (1979, "45-54"),
        (1970, "45-54"),
        (1969, "55-64"),
        (1960, "55-64"),
        (1959, "65+"),
        (1900, "65+"),
    ],
)
def test_age_band_boundaries(birth_year: int, band: str) -> None:
    # As of 2024 an age is 2024 - birth_year: 2000 -> 24, 1999 -> 25, 1959 -> 65.
    assert age_band(pd.Series([birth_year]), dt.date(2024, 6, 30)).iloc[0] == band


def test_age_band_per_row_dates_and_missing_years() -> None:
    births = pd.Series([2000, 2000, None], index=["p", "q", "r"], dtype="Int64")
    bands = age_band(births, pd.Series(pd.to_datetime(["2024-12-31", "2025-01-01", "2025-01-01"])))
    assert bands.tolist()[:2] == ["<25", "25-34"]
    assert pd.isna(bands.iloc[2])
    assert list(bands.index) == ["p", "q", "r"]
    assert bands.cat.ordered and tuple(bands.cat.categories) == AGE_BANDS


def _features(n: int, rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame({"x": rng.normal(size=n), "y": rng.integers(0, 5, n).astype(float)})
    frame.loc[rng.random(n) < 0.2, "x"] = np.nan
    frame["kind"] = pd.Categorical(rng.choice(["P", "Q", "R"], n))
    return frame


def test_proxy_auc_near_half_for_independent_features() -> None:
    rng = np.random.default_rng(0)
    nationality = pd.Series(rng.choice(["CHN", "RUS", "USA"], 2000, p=[0.5, 0.3, 0.2]))
    assert 0.4 < proxy_auc(_features(2000, rng), nationality, seed=0) < 0.6


@pytest.mark.parametrize("classes", [["CHN", "RUS", "USA"], ["F", "M"]])
def test_proxy_auc_high_for_a_feature_that_encodes_the_attribute(classes: list[str]) -> None:
    rng = np.random.default_rng(1)
    attribute = pd.Series(rng.choice(classes, 2000))
    features = _features(2000, rng)
    features["leak"] = attribute.map({c: i for i, c in enumerate(classes)}) + rng.normal(scale=0.2, size=2000)
    assert proxy_auc(features, attribute, seed=0) > 0.9


def test_proxy_auc_pools_rare_classes_and_needs_two() -> None:
    rng = np.random.default_rng(2)
    features = _features(600, rng)
    # Three nationalities of 2 cases each (under min_count) are pooled into OTHER, so no fold lacks a class.
    attribute = pd.Series(["CHN"] * 300 + ["RUS"] * 294 + ["AUS", "BRA", "CAN"] * 2)
    features["code"] = attribute.str[:1]  # text: used as a category
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "the least populated class in y has only 2 members"
        auc = proxy_auc(features, attribute, seed=0)
    assert 0.6 < auc <= 1.0
    assert math.isnan(proxy_auc(features, pd.Series(["CHN"] * 600), seed=0))


def test_small_groups_are_not_flagged() -> None:
    """With the default minimum support, a disparity between a handful of cases is not a flag."""
    audit = audit_groups(LISTED, LABELS, GROUPS).set_index(["attribute", "group"])
    flag_columns = [f"{m}_flag" for m in METRICS]
    assert not audit[flag_columns].to_numpy().any()
    assert audit.loc[("sex", "M"), "pprev_disparity"] == pytest.approx(1.5)  # still reported
