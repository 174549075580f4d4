"""Bias audit on a hand-built list of 12 cases (code tests), age bands, and the proxy check."""

from __future__ import annotations

import datetime as dt
import math
import warnings
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_world import tiny_tables

from training.bias import (
    AGE_BANDS,
    FairnessSettings,
    RateSums,
    age_band,
    audit_groups,
    band_p_value,
    benjamini_hochberg,
    proxy_auc,
    ratio_interval,
)
from training.bias_audit import run_bias_audit

# case: listed, label (None = not inspected), nationality, sex
CASES = [
    ("a1", True, True, "A", "F"),  # tp
    ("a2", True, False, "A", "M"),  # fp
    ("a3", False, True, "A", "F"),  # fn
    ("a4", False, False, "A", "M"),  # tn
    ("a5", False, False, "A", "F"),  # tn
    ("a6", True, None, "A", "M"),  # listed, unlabelled: in pprev only
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
# Every metric tested, with no minimum support: the hand-built groups are tiny.
OPEN = FairnessSettings(
    min_group_support=1,
    min_numerator_support=1,
    tested_metrics=("pprev", "precision", "fdr", "fpr", "fnr", "recall"),
)

# Worked by hand. Each group against the rest of the cases (its complement):
# A: size 6, listed 3, tp 1 fp 1 fn 1 tn 2; rest (B, C): size 6, listed 2, tp 0 fp 2 fn 1 tn 1.
# B: size 4, listed 2, tp 0 fp 2 fn 1 tn 0; rest (A, C): size 8, listed 3, tp 1 fp 1 fn 1 tn 3.
# C: size 2, listed 0, tn 1;                rest (A, B): size 10, listed 5, tp 1 fp 3 fn 2 tn 2.
# F: size 6, listed 2, tp 1 fp 1 fn 1 tn 1; M (its rest): size 6, listed 3, tp 0 fp 2 fn 1 tn 2.
EXPECTED = {
    # (attribute, group, metric): (numerator count, group count, value, reference value)
    ("nationality", "A", "pprev"): (3, 6, 3 / 6, 2 / 6),
    ("nationality", "A", "fdr"): (1, 2, 1 / 2, 2 / 2),
    ("nationality", "A", "fpr"): (1, 3, 1 / 3, 2 / 3),
    ("nationality", "A", "fnr"): (1, 2, 1 / 2, 1 / 1),
    ("nationality", "A", "precision"): (1, 2, 1 / 2, 0 / 2),
    ("nationality", "A", "recall"): (1, 2, 1 / 2, 0 / 1),
    ("nationality", "B", "pprev"): (2, 4, 2 / 4, 3 / 8),
    ("nationality", "B", "fdr"): (2, 2, 1.0, 1 / 2),
    ("nationality", "B", "fpr"): (2, 2, 1.0, 1 / 4),
    ("nationality", "B", "fnr"): (1, 1, 1.0, 1 / 2),
    ("nationality", "C", "pprev"): (0, 2, 0.0, 5 / 10),
    ("nationality", "C", "fdr"): (0, 0, NAN, 3 / 4),  # nothing listed: undefined
    ("nationality", "C", "fpr"): (0, 1, 0.0, 3 / 5),
    ("sex", "F", "pprev"): (2, 6, 2 / 6, 3 / 6),
    ("sex", "F", "fdr"): (1, 2, 1 / 2, 2 / 2),
    ("sex", "F", "fpr"): (1, 2, 1 / 2, 2 / 4),
    ("sex", "M", "pprev"): (3, 6, 3 / 6, 2 / 6),
    ("sex", "M", "fdr"): (2, 2, 1.0, 1 / 2),
    ("sex", "M", "fnr"): (1, 1, 1.0, 1 / 2),
}


def _katz(a: float, n1: float, c: float, n2: float) -> tuple[float, float]:
    """log(a/n1 / c/n2) and its standard error, by the textbook formula."""
    return math.log((a / n1) / (c / n2)), math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)


@pytest.fixture(scope="module")
def audit() -> pd.DataFrame:
    return audit_groups(LISTED, LABELS, GROUPS, settings=OPEN).set_index(["attribute", "group", "metric"])


@pytest.mark.parametrize("row", list(EXPECTED))
def test_group_metrics_against_the_rest_by_hand(audit: pd.DataFrame, row: tuple[str, str, str]) -> None:
    numerator, size, value, reference_value = EXPECTED[row]
    got = audit.loc[row]
    assert (got["numerator_count"], got["group_count"]) == (numerator, size)
    assert [got["value"], got["reference_value"]] == pytest.approx([value, reference_value], nan_ok=True)
    assert got["reference"] == "rest"
    if value > 0 and reference_value > 0:  # no zero count, so no continuity correction
        assert got["ratio"] == pytest.approx(value / reference_value)


def test_group_and_rest_partition_the_cases(audit: pd.DataFrame) -> None:
    pprev = audit.xs("pprev", level="metric")
    assert (pprev["group_count"] + pprev["reference_count"] == 12).all()
    assert (pprev["numerator_count"] + pprev["reference_numerator_count"] == 5).all()  # 5 cases listed


def test_katz_standard_error_and_score_p_value_by_hand(audit: pd.DataFrame) -> None:
    got = audit.loc[("sex", "M", "fdr")]  # 2 of 2 against 1 of 2
    theta, se = _katz(2, 2, 1, 2)
    assert (got["log_ratio"], got["se"]) == pytest.approx((math.log(2), math.sqrt(0.5)))
    assert (theta, se) == pytest.approx((got["log_ratio"], got["se"]))
    # Score test at the upper bound 1.25: the restricted rates solve 5 p^2 - 7.75 p + 3 = 0,
    # p = 0.75 for the rest and 1.25 * 0.75 = 0.9375 for M.
    var_upper = 2 * 0.9375 * 0.0625 / 2**2 + 1.25**2 * 2 * 0.75 * 0.25 / 2**2
    z_upper = (1 - 1.25 * 0.5) / math.sqrt(var_upper)
    # The far tail (ratio below 0.8), with the Katz standard error.
    phi = NormalDist().cdf
    far = phi(-z_upper - math.log(1.25 / 0.8) / se)
    assert got["p_value"] == pytest.approx(1 - phi(z_upper) + far)
    assert got["p_value"] == pytest.approx(0.249, abs=1e-3)


def test_a_zero_count_gets_half_a_case(audit: pd.DataFrame) -> None:
    # B's precision: 0 of 2 against 1 of 2 -> (0.5 / 3) / (1.5 / 3) with the Haldane correction.
    got = audit.loc[("nationality", "B", "precision")]
    assert got["value"] == 0.0 and got["ratio"] == pytest.approx(1 / 3)
    assert got["se"] == pytest.approx(math.sqrt(1 / 0.5 - 1 / 3 + 1 / 1.5 - 1 / 3))
    assert audit.loc[("nationality", "C", "fdr"), ["ratio", "p_value"]].isna().all()
    assert not audit.loc[("nationality", "C", "fdr"), "tested"]


def test_weighted_rates_and_linearised_variance_by_hand() -> None:
    # X: a hit of weight 1 and a false positive of weight 3 -> fdr 3/4; Y: weights 2 and 2 -> 1/2.
    groups = pd.DataFrame({"g": ["X", "X", "Y", "Y", "Y"]})
    labels = pd.array([True, False, True, False, True], dtype="boolean")
    weights = [1.0, 3.0, 2.0, 2.0, 0.0]  # weight 0: not in the unbiased evidence
    table = audit_groups([True] * 5, labels, groups, weights=weights, metrics=["fdr"], settings=OPEN)
    x = table.set_index("group").loc["X"]
    assert (x["value"], x["reference_value"], x["ratio"]) == pytest.approx((0.75, 0.5, 1.5))
    assert (x["group_count"], x["reference_count"], x["numerator_count"]) == (2, 2, 1)
    # Sum of w^2 (y - p)^2 / (sum w)^2 / p^2 per side: X (1 + 1) / 16 = 0.125, Y (4 + 4) / 16 = 0.5.
    assert x["se"] == pytest.approx(math.sqrt(0.125 + 0.5))
    assert x["effective_count"] == pytest.approx(16 / 10)  # Kish: (1 + 3)^2 / (1 + 9)


def test_unit_weights_are_the_unweighted_audit() -> None:
    plain = audit_groups(LISTED, LABELS, GROUPS, settings=OPEN)
    weighted = audit_groups(LISTED, LABELS, GROUPS, weights=np.ones(12), settings=OPEN)
    pd.testing.assert_frame_equal(plain, weighted)


def test_largest_group_or_a_named_reference() -> None:
    audit = audit_groups(LISTED, LABELS, GROUPS, reference="largest", settings=OPEN).set_index(
        ["attribute", "group", "metric"]
    )
    b = audit.loc[("nationality", "B", "fpr")]
    assert b["reference"] == "A"
    assert (b["value"], b["reference_value"], b["ratio"]) == pytest.approx((1.0, 1 / 3, 3.0))
    assert audit.loc[("nationality", "A", "fpr"), "ratio"] == 1.0
    assert not audit.loc[("nationality", "A", "fpr"), "tested"]  # the reference is not tested against itself
    named = audit_groups(LISTED, LABELS, GROUPS, reference={"sex": "M"}, settings=OPEN).set_index(
        ["attribute", "group", "metric"]
    )
    assert named.loc[("sex", "F", "pprev"), "ratio"] == pytest.approx((2 / 6) / (3 / 6))
    assert named.loc[("nationality", "B", "pprev"), "reference"] == "rest"  # attributes not named


def test_tiny_groups_are_reported_not_tested() -> None:
    audit = audit_groups(LISTED, LABELS, GROUPS)  # default support: 30 cases, 10 events
    assert not audit["tested"].any() and not audit["flagged"].any()
    assert audit["ratio"].notna().any()  # still reported


def test_precision_and_recall_are_reported_not_tested_by_default() -> None:
    settings = FairnessSettings(min_group_support=1, min_numerator_support=1)
    audit = audit_groups(LISTED, LABELS, GROUPS, settings=settings)
    assert set(audit.loc[audit["tested"], "metric"]) <= {"pprev", "fdr", "fpr", "fnr"}


def test_band_p_value_at_and_inside_the_bounds() -> None:
    # Group rates 0.25, 0.2, 0.2 / 1.5 and 0 against 0.2 in the rest.
    sums = RateSums.of_counts([25_000, 20_000, 2_000, 0], [100_000, 100_000, 15_000, 100], 20_000, 100_000)
    p = band_p_value(sums, (0.8, 1.25))
    assert p[0] == pytest.approx(0.5, abs=0.01)  # at the bound: half the time beyond it
    assert p[1] == 1.0  # the band's middle
    assert p[2] < 1e-9  # far below the band
    assert p[3] < 1e-4  # a zero count needs no correction in the score test
    assert math.isnan(band_p_value(RateSums.of_counts([1], [0], [1], [5]))[0])  # undefined rate


def test_ratio_interval_inverts_the_score_test() -> None:
    sums = RateSums.of_counts([30, 0], [100, 50], [200, 200], [1000, 1000])
    low, high = ratio_interval(sums, 0.5)  # the 50% bounds meet at the estimate
    assert low[0] == pytest.approx(1.5, rel=1e-6) and high[0] == pytest.approx(1.5, rel=1e-6)
    low, high = ratio_interval(sums, 0.975)
    katz_low, katz_high = (
        math.exp(math.log(1.5) + sign * 1.96 * _katz(30, 100, 200, 1000)[1]) for sign in (-1, 1)
    )
    assert (low[0], high[0]) == pytest.approx((katz_low, katz_high), rel=0.08)  # close to Katz
    assert low[1] == 0.0 and 0 < high[1] < 0.5  # no event in the group: only an upper bound


def test_benjamini_hochberg_by_hand() -> None:
    # m = 5, q = 0.05: thresholds 0.01, 0.02, 0.03, 0.04, 0.05; the largest p(k) <= kq/m is p(3) = 0.03.
    p = [0.03, 0.001, 0.2, 0.025, math.nan, 0.045]
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True, False, True, False, False]
    assert not benjamini_hochberg([0.02, 0.03], 0.01).any()


def test_missing_attribute_values_form_their_own_group() -> None:
    groups = GROUPS.assign(nationality=["A", None, *GROUPS["nationality"].iloc[2:]])
    audit = audit_groups(LISTED, LABELS, groups, settings=OPEN)
    nationality = audit[(audit["attribute"] == "nationality") & (audit["metric"] == "fdr")].set_index("group")
    assert nationality.loc["(missing)", "group_count"] == 1
    assert nationality.loc["(missing)", "numerator_count"] == 1  # a2, a false positive
    pprev = audit[(audit["attribute"] == "nationality") & (audit["metric"] == "pprev")]
    assert pprev["group_count"].sum() == 12


def test_age_band_rows_follow_band_order() -> None:
    groups = pd.DataFrame({"age_band": age_band(pd.Series([1950, 2001, 1980]), dt.date(2024, 1, 1))})
    audit = audit_groups([True, False, True], [True, None, False], groups, metrics=["pprev"])
    assert audit["group"].tolist() == ["<25", "35-44", "65+"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reference": {"nationality": "Z"}}, "does not occur"),
        ({"reference": {"religion": "X"}}, "not in groups"),
        ({"reference": "biggest"}, "reference must be"),
        ({"metrics": ["ppv"]}, "unknown metrics"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audit_groups(LISTED, LABELS, GROUPS, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"bounds": (1.2, 2.0)}, "bounds"), ({"q": 0.0}, "q must"), ({"reference": "all"}, "reference")],
)
def test_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FairnessSettings(**kwargs)


def test_error_rates_need_labels() -> None:
    with pytest.raises(ValueError, match="need labels"):
        audit_groups(LISTED, None, GROUPS, metrics=["fdr"])


def test_misaligned_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="different indexes"):
        audit_groups(LISTED.iloc[::-1], LABELS, GROUPS)
    with pytest.raises(ValueError, match="differ in length"):
        audit_groups(LISTED.iloc[1:], LABELS, GROUPS)


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


def test_run_bias_audit_wires_the_persons_table_and_every_view() -> None:
    tables = tiny_tables()
    persons = ["P1", "P2", "P3", "P4", "P6"]
    index = pd.MultiIndex.from_arrays(
        [persons, pd.to_datetime(["2024-06-30"] * 5)], names=["person_id", "as_of"]
    )
    labels = pd.DataFrame(
        {
            "label": pd.array([True, False, None, True, False], dtype="boolean"),
            "random_label": pd.array([None, False, None, None, None], dtype="boolean"),
        },
        index=index,
    )
    unbiased = pd.DataFrame({"label": labels["label"], "weight": [1.0, 2.0, 0.0, 1.0, np.nan]}, index=index)
    truth = pd.Series([True, False, False, True, False], index=index)
    table, flags = run_bias_audit(
        tables, np.array([0.9, 0.8, 0.1, 0.7, 0.2]), labels, truth, "3", unbiased=unbiased
    )
    assert set(table["view"]) == {"list", "labelled", "random_sample", "unbiased", "truth"}
    assert flags == []  # five cases: nothing is tested
    pprev = table[(table["view"] == "list") & (table["attribute"] == "nationality")].set_index("group")
    assert pprev.loc["RUS", "value"] == 1.0 and pprev.loc["KOR", "value"] == 0.0  # P2 listed, P3 not
    assert set(table.loc[table["attribute"] == "sex", "group"]) == {"F", "M", "X"}
    unbiased_fdr = table[(table["view"] == "unbiased") & (table["metric"] == "fdr")]
    assert unbiased_fdr.groupby("attribute")["group_count"].sum().eq(3).all()  # P1, P2, P4 weigh > 0


@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([True, False, None]), st.booleans()),
        min_size=40,
        max_size=200,
    )
)
@settings(max_examples=30, deadline=None)
def test_two_groups_mirror_each_other(cases: list[tuple[bool, bool | None, bool]]) -> None:
    """With two groups, each is the other's rest: ratios are reciprocal and the tests agree,
    because the band is symmetric on the log scale (0.8 = 1 / 1.25)."""
    listed = [c[0] for c in cases]
    labels = pd.array([c[1] for c in cases], dtype="boolean")
    groups = pd.DataFrame({"sex": ["F" if c[2] else "M" for c in cases]})
    audit = audit_groups(listed, labels, groups, settings=OPEN)
    if audit["group"].nunique() < 2:
        return
    by_group = audit.set_index(["metric", "group"])
    for metric in audit["metric"].unique():
        f, m = by_group.loc[(metric, "F")], by_group.loc[(metric, "M")]
        if np.isnan(f["ratio"]):  # an empty denominator on one side: undefined both ways
            assert np.isnan(m["ratio"])
            continue
        assert f["ratio"] * m["ratio"] == pytest.approx(1.0)
        assert f["p_value"] == pytest.approx(m["p_value"], rel=1e-6, abs=1e-9, nan_ok=True)
        if f["low"] == 0 or np.isnan(f["low"]):
            assert m["high"] == math.inf or (np.isnan(f["low"]) and np.isnan(m["high"]))
        elif f["level"] == m["level"]:
            assert f["low"] * m["high"] == pytest.approx(1.0, rel=1e-6)
        else:  # a tested key's level is adjusted for the flags of its view, an untested one's is not:
            # the bound at the higher level lies further out than the mirror of the other's
            wider, narrower = (
                (f["low"], 1 / m["high"]) if f["level"] > m["level"] else (1 / m["high"], f["low"])
            )
            assert wider <= narrower * (1 + 1e-9)
        if f["tested"] and 0 < f["value"] and 0 < f["reference_value"]:
            assert f["low"] <= f["ratio"] <= f["high"]
