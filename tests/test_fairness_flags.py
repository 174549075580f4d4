"""Fairness flags and blocks on simulated lists: noise raises (almost) nothing, planted disparities do.

A world of 20,000 cases in which 15% are high-risk (violation probability 0.8) and the rest
low-risk (0.03); a list is the top 10% of a noisy score. "False tips" push some non-violators
of one nationality (RUS) into the list, which raises that group's false discovery rate. The
unbiased evidence inspects every case of the champion's list (inclusion probability 1) and an
exploration share of the others, weighted by 1 / probability.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from training.bias import (
    Block,
    FairnessSettings,
    Flag,
    RateSums,
    audit_views,
    band_p_value,
    benjamini_hochberg,
    count_flags,
    fairness_blocks,
    fairness_comparison,
    fcr_level,
    flags_from_table,
    new_or_worse,
    ratio_interval,
)

NATIONS = ["CHN", "RUS", "USA", "AUS", "KOR", "IND", "JPN", "NLD", "GBR", "FRA"]
SHARES = [0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]
N = 20_000


class World:
    """Cases, their groups, the hidden truth and a score that finds it."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.index = pd.MultiIndex.from_arrays(
            [np.char.add("P", np.arange(N).astype(str)), np.full(N, "2024-06-30")],
            names=["person_id", "as_of"],
        )
        self.groups = pd.DataFrame(
            {
                "nationality": self.rng.choice(NATIONS, N, p=SHARES),
                "sex": self.rng.choice(["F", "M"], N),
                "age_band": self.rng.choice(["<25", "25-34", "35-44", "45-54"], N),
            },
            index=self.index,
        )
        risk = np.where(self.rng.random(N) < 0.15, 0.8, 0.03)
        self.truth = self.rng.random(N) < risk
        self.signal = np.log(risk / (1 - risk)) + self.rng.normal(scale=1.0, size=N)

    def false_tips(self, share: float, nation: str = "RUS") -> np.ndarray:
        """A score boost for a random `share` of the nation's non-violators."""
        chosen = (self.groups["nationality"].to_numpy() == nation) & ~self.truth
        return np.where(chosen & (self.rng.random(N) < share), 4.0, 0.0)

    def top_list(self, boost: np.ndarray | float = 0.0) -> pd.Series:
        """The top 10% of the signal plus a seed's own noise (what a retrain changes)."""
        score = self.signal + boost + self.rng.normal(scale=0.3, size=N)
        return pd.Series(score >= np.quantile(score, 0.9), index=self.index)

    def evidence(self, listed: pd.Series, explore: float) -> pd.DataFrame:
        probability = np.where(listed.to_numpy(), 1.0, explore)
        seen = self.rng.random(N) < probability
        return pd.DataFrame(
            {
                "label": pd.array(np.where(seen, self.truth, None), dtype="boolean"),
                "weight": np.where(seen, 1 / probability, 0.0),
            },
            index=self.index,
        )

    def audit(self, listed: pd.Series, unbiased: pd.DataFrame) -> tuple[pd.DataFrame, list[Flag]]:
        return audit_views(listed, self.groups, {"labelled": unbiased["label"]}, unbiased=unbiased)


@pytest.fixture(scope="module")
def planted() -> tuple[World, pd.Series, pd.DataFrame, np.ndarray]:
    """A champion whose list holds false tips about RUS (its FDR about 0.42 against 0.2)."""
    world = World(seed=0)
    tips = world.false_tips(0.12)
    champion = world.top_list(tips)
    return world, champion, world.evidence(champion, explore=0.3), tips


def test_a_seed_only_pair_raises_almost_no_flags_and_no_block() -> None:
    world = World(seed=1)
    champion, challenger = world.top_list(), world.top_list()
    assert 0.8 < (champion == challenger).mean() < 1.0  # different lists, mostly the same cases
    unbiased = world.evidence(champion, explore=0.05)
    _, champion_flags = world.audit(champion, unbiased)
    challenger_table, challenger_flags = world.audit(challenger, unbiased)
    assert challenger_table["tested"].sum() > 60  # enough keys were tested for noise to show
    assert len(champion_flags) <= 1 and len(challenger_flags) <= 1
    assert len(new_or_worse(challenger_flags, champion_flags)) <= 1
    assert fairness_blocks(world.groups, challenger, champion, unbiased) == []


def test_a_planted_fdr_disparity_is_flagged_with_a_sensible_interval(
    planted: tuple[World, pd.Series, pd.DataFrame, np.ndarray],
) -> None:
    world, champion, unbiased, _ = planted
    _, flags = world.audit(champion, unbiased)
    by_key = {flag.key: flag for flag in flags}
    flag = by_key[("unbiased", "nationality", "RUS", "fdr")]
    rus = world.groups["nationality"].to_numpy() == "RUS"
    listed = champion.to_numpy()
    true_ratio = (1 - world.truth[listed & rus].mean()) / (1 - world.truth[listed & ~rus].mean())
    assert 1.7 < true_ratio < 2.5
    assert 1.25 < flag.low < true_ratio < flag.high < 3.5
    assert flag.above and not flag.biased and flag.reference == "rest"
    assert 0.95 <= flag.level < 1  # false-coverage adjusted: at least the unadjusted level
    assert flag.p_value < 1e-4 and flag.numerator_count >= 10 and flag.group_count >= 30
    assert "false discovery rate" in flag.text and "RUS" in flag.text
    # The planted disparity is the only one about nationality outside the list view.
    assert {key for key in by_key if key.view != "list" and key.attribute != "nationality"} == set()


def test_labelled_view_error_rate_flags_are_marked_biased(
    planted: tuple[World, pd.Series, pd.DataFrame, np.ndarray],
) -> None:
    world, champion, unbiased, _ = planted
    table, flags = world.audit(champion, unbiased)
    labelled = [flag for flag in flags if flag.view == "labelled"]
    assert labelled and all(flag.biased for flag in labelled)
    assert all("selection-biased" in flag.text for flag in labelled)
    assert not any(flag.biased for flag in flags if flag.view != "labelled")
    assert table.loc[table["view"] == "labelled", "biased"].all()
    assert not table.loc[table["view"] != "labelled", "biased"].any()


def test_selection_rate_stands_beside_the_estimated_violation_rate(
    planted: tuple[World, pd.Series, pd.DataFrame, np.ndarray],
) -> None:
    world, _, _, tips = planted
    tipped = world.top_list(tips + world.false_tips(0.3))  # many more RUS cases listed
    table, flags = world.audit(tipped, world.evidence(tipped, explore=0.3))
    pprev = {flag.group: flag for flag in flags if flag.metric == "pprev"}
    assert "RUS" in pprev and pprev["RUS"].view == "list" and pprev["RUS"].ratio > 1.5
    # The same base rate in truth: its estimate is near 1, so the base rate does not explain the disparity.
    assert pprev["RUS"].base_rate_ratio is not None and 0.7 < pprev["RUS"].base_rate_ratio < 1.3
    assert "estimated violation rate" in pprev["RUS"].text
    rates = table[(table["view"] == "list") & (table["attribute"] == "nationality")]
    assert rates["base_rate"].between(0.05, 0.3).all() and (rates["base_rate_source"] == "unbiased").all()


def test_no_unbiased_evidence_means_no_unbiased_view() -> None:
    world = World(seed=2)
    listed = world.top_list()
    inspected = world.evidence(listed, explore=0.05)["label"]
    table, flags = audit_views(listed, world.groups, {"labelled": inspected}, base_rate_view=None)
    assert set(table["view"]) == {"list", "labelled"}
    assert table["base_rate"].isna().all()
    assert all("violation rate unknown" in flag.text for flag in flags if flag.metric == "pprev")


def test_identical_runs_give_identical_keys_and_nothing_new(
    planted: tuple[World, pd.Series, pd.DataFrame, np.ndarray],
) -> None:
    world, champion, unbiased, _ = planted
    first_table, first = world.audit(champion, unbiased)
    _, second = world.audit(champion, unbiased)
    assert first == second and len(first) >= 4
    assert new_or_worse(second, first) == []
    # One count everywhere: the records, the table and the CSV written from it.
    from_csv = pd.read_csv(io.StringIO(first_table.to_csv(index=False)))
    assert count_flags(first) == count_flags(first_table) == count_flags(from_csv) == len(first)
    assert flags_from_table(from_csv) == first


def test_new_or_worse_is_decided_by_key_and_value(
    planted: tuple[World, pd.Series, pd.DataFrame, np.ndarray],
) -> None:
    world, champion, unbiased, _ = planted
    _, flags = world.audit(champion, unbiased)
    flag = next(f for f in flags if f.key == ("unbiased", "nationality", "RUS", "fdr"))
    inside = Flag(
        **{**flag.__dict__, "ratio": (flag.ratio + flag.high) / 2}
    )  # within the champion's interval
    beyond = Flag(**{**flag.__dict__, "ratio": flag.high * 1.1})
    flipped = Flag(**{**flag.__dict__, "ratio": 0.5, "low": 0.4, "high": 0.6})
    other_group = Flag(**{**flag.__dict__, "group": "USA"})
    assert new_or_worse([inside], [flag]) == []
    assert new_or_worse([beyond, flipped, other_group], [flag]) == [beyond, flipped, other_group]
    biased = Flag(**{**flag.__dict__, "view": "labelled", "biased": True})
    assert new_or_worse([biased], [], include_biased=False) == []


def test_flag_and_block_records_round_trip_through_json(
    planted: tuple[World, pd.Series, pd.DataFrame, np.ndarray],
) -> None:
    world, champion, unbiased, _ = planted
    _, flags = world.audit(champion, unbiased)
    for flag in flags:
        assert Flag.from_dict(json.loads(json.dumps(flag.to_dict(), allow_nan=False))) == flag
    block = Block("unbiased", "sex", "F", "fdr", 2.0, 1.5, 0.1, 0.5, 0.99, 0.001, 0.1, 120, 40)
    assert Block.from_dict(json.loads(json.dumps(block.to_dict(), allow_nan=False))) == block
    odd = Flag("list", "sex", "F", "pprev", 2.0, 1.5, math.inf, 0.975, 0.01, 0.2, 0.1, 50, 60, 10)
    assert odd.to_dict()["high"] is None and math.isnan(Flag.from_dict(odd.to_dict()).high)


def test_a_challenger_that_worsens_the_planted_disparity_is_blocked(
    planted: tuple[World, pd.Series, pd.DataFrame, np.ndarray],
) -> None:
    world, champion, unbiased, tips = planted
    worse = world.top_list(tips + world.false_tips(0.25))
    blocks = fairness_blocks(world.groups, worse, champion, unbiased)
    by_key = {block.key: block for block in blocks}
    assert set(by_key) <= {("unbiased", "nationality", "RUS", m) for m in ("fdr", "fpr")}
    block = by_key[("unbiased", "nationality", "RUS", "fdr")]
    assert block.challenger_ratio > block.champion_ratio > 1.25
    assert math.log(1.1) < block.low < math.log(block.challenger_ratio / block.champion_ratio) < block.high
    assert "challenger" in block.text and "RUS" in block.text


def test_a_challenger_that_keeps_the_planted_disparity_is_not_blocked(
    planted: tuple[World, pd.Series, pd.DataFrame, np.ndarray],
) -> None:
    world, champion, unbiased, _ = planted
    same = world.top_list(world.false_tips(0.12))  # as many tips, other cases, another seed
    table = fairness_comparison(world.groups, same, champion, unbiased)
    rus = table.set_index(["attribute", "group", "metric"]).loc[("nationality", "RUS", "fdr")]
    assert rus["tested"] and rus["challenger_ratio"] > 1.25 and rus["champion_ratio"] > 1.25
    assert rus["low"] < math.log(1.1)
    assert not table["blocks"].any()
    assert fairness_blocks(world.groups, champion, champion, unbiased) == []  # the same list


def test_selection_rates_block_only_when_asked(
    planted: tuple[World, pd.Series, pd.DataFrame, np.ndarray],
) -> None:
    world, _, _, tips = planted
    neutral = world.top_list()
    unbiased = world.evidence(neutral, explore=0.3)
    tipped = world.top_list(tips + world.false_tips(0.3))
    by_default = fairness_blocks(world.groups, tipped, neutral, unbiased, replicates=300)
    assert all(block.metric in ("fdr", "fpr") for block in by_default)
    blocks = fairness_blocks(world.groups, tipped, neutral, unbiased, metrics=("pprev",), replicates=300)
    assert {block.key for block in blocks} == {("list", "nationality", "RUS", "pprev")}


def test_benjamini_hochberg_controls_false_flags_at_the_band_edge() -> None:
    """Counts drawn for 50 keys x 400 worlds (vectorised): 40 keys sit exactly on the
    band's upper bound (the hardest null), 10 lie well outside. The share of false flags among
    flags stays near q or below; false coverage of the adjusted bounds too."""
    rng = np.random.default_rng(7)
    worlds, nulls, alternatives, q = 400, 40, 10, 0.05
    n_group, n_rest, p_rest = 300, 3000, 0.2
    ratio = np.r_[np.full(nulls, 1.25), np.full(alternatives, 2.0)]
    a = rng.binomial(n_group, p_rest * ratio, size=(worlds, nulls + alternatives))
    c = rng.binomial(n_rest, p_rest, size=(worlds, nulls + alternatives))
    sums = RateSums.of_counts(a, n_group, c, n_rest)
    p = band_p_value(sums, (0.8, 1.25))
    flagged = np.array([benjamini_hochberg(row, q) for row in p])
    false_share = flagged[:, :nulls].sum(axis=1) / np.maximum(flagged.sum(axis=1), 1)
    assert false_share.mean() < q + 0.02  # the false discovery rate, with Monte-Carlo slack
    assert flagged[:, nulls:].mean() > 0.9  # and the real disparities are found
    # False coverage: flagged keys whose one-sided lower bound at the adjusted level misses the true ratio.
    levels = np.array([fcr_level(int(row.sum()), len(row), q) for row in flagged])
    low, _ = ratio_interval(sums, levels[:, None])
    missed = flagged & (low > ratio)
    assert (missed.sum(axis=1) / np.maximum(flagged.sum(axis=1), 1)).mean() < q + 0.01
    # No disparity at all (every ratio 1): flags are rare.
    a0 = rng.binomial(n_group, p_rest, size=(worlds, 50))
    c0 = rng.binomial(n_rest, p_rest, size=(worlds, 50))
    p0 = band_p_value(RateSums.of_counts(a0, n_group, c0, n_rest), (0.8, 1.25))
    assert np.mean([benjamini_hochberg(row, q).any() for row in p0]) < 0.01


def test_settings_change_the_test() -> None:
    world = World(seed=3)
    tips = world.false_tips(0.12)
    listed = world.top_list(tips)
    unbiased = world.evidence(listed, explore=0.3)
    strict = FairnessSettings(min_group_support=10**6)
    table, flags = audit_views(listed, world.groups, {}, unbiased=unbiased, settings=strict)
    assert not table["tested"].any() and flags == []
    wide = FairnessSettings(bounds=(0.2, 5.0))
    _, flags = audit_views(listed, world.groups, {}, unbiased=unbiased, settings=wide)
    assert all(flag.ratio > 5.0 or flag.ratio < 0.2 for flag in flags)


def test_the_bootstrap_resamples_persons_not_cases(
    planted: tuple[World, pd.Series, pd.DataFrame, np.ndarray],
) -> None:
    """Every person seen on two dates with the same outcome: no new information, so the
    person-level standard error stays; counted as independent cases it would shrink by sqrt(2)."""
    world, champion, unbiased, tips = planted
    challenger = world.top_list(tips + world.false_tips(0.25))

    def doubled(frame: pd.DataFrame | pd.Series, as_of: str = "2024-07-31") -> pd.DataFrame | pd.Series:
        later = frame.copy()
        later.index = later.index.set_levels([as_of], level="as_of")
        return pd.concat([frame, later])

    def se(groups: pd.DataFrame, lists: tuple[pd.Series, pd.Series], evidence: pd.DataFrame) -> float:
        table = fairness_comparison(groups, *lists, evidence, metrics=("fdr",), replicates=400)
        return float(table.set_index(["attribute", "group"]).loc[("nationality", "RUS"), "se"])

    once = se(world.groups, (challenger, champion), unbiased)
    twice = se(doubled(world.groups), (doubled(challenger), doubled(champion)), doubled(unbiased))
    assert twice == pytest.approx(once, rel=0.15)
    as_cases = doubled(world.groups).reset_index(drop=True)  # no person_id: every case its own unit
    apart = se(
        as_cases,
        (doubled(challenger).reset_index(drop=True), doubled(champion).reset_index(drop=True)),
        doubled(unbiased).reset_index(drop=True),
    )
    assert apart == pytest.approx(once / math.sqrt(2), rel=0.15)
