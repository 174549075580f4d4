"""Off-policy estimates: hand-computed values, and a seeded simulation of a list design with known
inclusion probabilities (Horvitz-Thompson and doubly robust unbiased, interval coverage, the labelled
view's bias)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.decisions import (
    DecisionSettings,
    promotion_decision,
    registration_decision,
)
from training.offpolicy import (
    Evidence,
    EvidenceSettings,
    Sample,
    horizon_inclusion,
    labelled_difference,
    paired_difference,
    policy_value,
    top_k,
)


def _sample(inclusion: list[float], observed: list[bool], found: list[bool], k: int, m=None) -> Sample:
    n = len(inclusion)
    return Sample(
        name="s",
        k=k,
        person_id=np.array([f"P{i:03d}" for i in range(n)]),
        inclusion=np.array(inclusion, dtype=float),
        observed=np.array(observed),
        found=np.array(found),
        outcome=None if m is None else np.array(m, dtype=float),
    )


def test_policy_value_matches_hand_computed_estimates() -> None:
    # Six cases; the scorer's top 3 are cases 0, 1, 2.
    sample = _sample(
        inclusion=[1.0, 0.5, 0.25, 0.25, 0.1, 0.1],
        observed=[True, True, True, False, True, False],
        found=[True, False, True, False, True, False],
        k=3,
        m=[0.5, 0.2, 0.4, 0.3, 0.1, 0.1],
    )
    scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    value = policy_value([sample], [scores])
    # HT: (1/1 + 0 + 1/0.25) / 3 = 5/3
    assert value.ht == pytest.approx(5 / 3)
    # SN: weighted hit rate of observed top-3 cases: (1 + 4) / (1 + 2 + 4)
    assert value.sn == pytest.approx(5 / 7)
    # DR: sum m over top 3 + sum over observed (y - m)/p, / 3
    dr = (0.5 + 0.2 + 0.4) + (1 - 0.5) / 1.0 + (0 - 0.2) / 0.5 + (1 - 0.4) / 0.25
    assert value.dr == pytest.approx(dr / 3)
    # Kish effective n of weights (1, 2, 4): 49 / 21
    assert value.n_effective == pytest.approx(49 / 21)
    assert value.support == 1.0


def test_paired_difference_matches_hand_computed_estimate_and_flags_insufficiency() -> None:
    sample = _sample(
        inclusion=[1.0, 1.0, 0.5, 0.5],
        observed=[True, True, True, False],
        found=[True, False, True, False],
        k=2,
    )
    a = np.array([4.0, 3.0, 2.0, 1.0])  # top 2: cases 0, 1 -> HT hits 1 -> precision 0.5
    b = np.array([4.0, 1.0, 3.0, 2.0])  # top 2: cases 0, 2 -> HT hits 1 + 2 = 3 -> precision 1.5
    evidence = paired_difference([sample], [a], [b], "a - b", EvidenceSettings(bootstrap=200))
    assert evidence.estimator == "ht"  # no outcome model: Horvitz-Thompson decides
    assert evidence.estimate == pytest.approx(0.5 - 1.5)
    assert evidence.low <= evidence.estimate <= evidence.high
    assert not evidence.sufficient
    assert "effective n" in evidence.note
    assert "insufficient evidence" in evidence.describe()


def test_ties_are_broken_by_person_id_and_observed_cases_need_a_probability() -> None:
    sample = _sample([1.0, 1.0, 1.0], [True, True, True], [True, False, False], k=2)
    assert top_k(np.zeros(3), sample).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="inclusion probability 0"):
        _sample([0.0, 1.0], [True, True], [False, False], k=1)
    with pytest.raises(ValueError, match="not observed"):
        _sample([0.5, 1.0], [False, True], [True, False], k=1)


def test_horizon_inclusion_combines_daily_draws() -> None:
    assert horizon_inclusion([0.1, 0.2]) == pytest.approx(1 - 0.9 * 0.8)
    assert horizon_inclusion([]) == 0.0


def test_no_evidence_is_said_in_words_not_nan() -> None:
    evidence = paired_difference([], [], [], "challenger - champion")
    assert not evidence.sufficient
    assert "no inspection with a known selection probability" in evidence.describe()
    assert Evidence.from_dict(evidence.to_dict()).note == evidence.note


def _design(
    rng: np.random.Generator, draws: int, n: int, k: int, boundary: tuple[int, int], uniform: int
) -> tuple[np.ndarray, np.ndarray]:
    """Selection matrix (draws x n) of a committed list over cases ranked 0..n-1 by the champion,
    and each case's exact inclusion probability: the top k always, `boundary[1]` draws from ranks
    k..boundary[0], `uniform` draws from the rest."""
    depth, m_boundary = boundary
    strata = [(0, k, k), (k, depth, m_boundary), (depth, n, uniform)]
    selected = np.zeros((draws, n), dtype=bool)
    inclusion = np.zeros(n)
    for lo, hi, m in strata:
        size = hi - lo
        keys = rng.random((draws, size))
        threshold = np.partition(keys, m - 1, axis=1)[:, m - 1 : m]
        selected[:, lo:hi] = keys <= threshold
        inclusion[lo:hi] = m / size
    return selected, inclusion


def test_estimators_recover_a_known_policy_value_by_simulation() -> None:
    """500 draws of a list design with known inclusion probabilities: HT and DR unbiased (within 3
    Monte-Carlo standard errors), interval coverage >= 90% where >= 30 known-propensity hits are
    expected, and the labelled view biased."""
    rng = np.random.default_rng(2026)
    n, k, draws = 3_000, 200, 500
    risk = np.sort(rng.beta(1.2, 4.0, n))[::-1]  # the champion ranks by risk: case 0 first
    y = rng.random(n) < risk  # one fixed world: the outcome an inspection would find
    champion = -np.arange(n, dtype=float)
    challenger = np.log(risk) + rng.normal(0, 0.6, n)  # a different, noisier ranking
    m = np.clip(risk + rng.normal(0, 0.05, n), 0, 1)  # an outcome model that is not the scorer
    selected, inclusion = _design(rng, draws, n, k, boundary=(900, 350), uniform=150)
    ids = np.array([f"P{i:05d}" for i in range(n)])

    in_a = np.zeros(n, dtype=bool)
    in_a[np.argsort(-challenger, kind="stable")[:k]] = True
    in_b = np.zeros(n, dtype=bool)
    in_b[:k] = True
    true_a, true_b = y[in_a].mean(), y[in_b].mean()
    true_difference = true_a - true_b

    # Vectorised estimates of a's precision over all draws.
    w = selected / inclusion
    ht = (w * (in_a * y)).sum(axis=1) / k
    dr = ((in_a * m).sum() + (w * (in_a * (y - m))).sum(axis=1)) / k
    sn = (w * (in_a * y)).sum(axis=1) / (w * in_a).sum(axis=1)
    labelled = (selected * (in_a * y)).sum(axis=1) / (selected * in_a).sum(axis=1)
    for name, estimates in (("HT", ht), ("DR", dr)):
        error = abs(estimates.mean() - true_a)
        assert error < 3 * estimates.std(ddof=1) / math.sqrt(draws), f"{name} biased by {error:.4f}"
    sn_bias = sn.mean() - true_a
    labelled_bias = labelled.mean() - true_a
    print(f"self-normalised bias {sn_bias:+.4f}; labelled-view bias {labelled_bias:+.4f}")
    assert abs(labelled_bias) > 5 * labelled.std(ddof=1) / math.sqrt(draws)  # the labelled view is biased
    assert abs(labelled_bias) > 3 * abs(sn_bias)

    # Interval coverage of the paired difference, through the module's own function.
    differ = in_a != in_b
    expected_hits = float((inclusion[differ] * y[differ]).sum())
    assert expected_hits >= 30, "the design must expect at least 30 known-propensity hits"
    settings = EvidenceSettings(bootstrap=200, min_ess=0, max_width=1.0)
    covered = estimates_ok = 0
    dr_estimates = []
    for r in range(draws):
        sample = Sample("list", k, ids, inclusion, selected[r], selected[r] & y, m)
        evidence = paired_difference([sample], [challenger], [champion], "a - b", settings)
        covered += evidence.low <= true_difference <= evidence.high
        estimates_ok += evidence.estimator == "dr"
        dr_estimates.append(evidence.estimate)
    assert estimates_ok == draws
    assert covered / draws >= 0.90, f"coverage {covered / draws:.2%}"
    dr_mean = float(np.mean(dr_estimates))
    assert abs(dr_mean - true_difference) < 3 * np.std(dr_estimates, ddof=1) / math.sqrt(draws)


def test_labelled_difference_is_marked_biased() -> None:
    label = pd.Series(pd.array([True, False, None, True, None, False], dtype="boolean"))
    ids = np.array([f"P{i}" for i in range(6)])
    a = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    b = a[::-1].copy()
    evidence = labelled_difference([label], [ids], [a], [b], 3, "a - b", EvidenceSettings(bootstrap=100))
    # a's top 3 holds labelled (True, False) -> 0.5; b's top 3 holds (True, False) -> 0.5
    assert evidence.estimate == pytest.approx(0.0)
    assert evidence.biased and evidence.source == "labelled view"


def _evidence(estimate: float, low: float, high: float, sufficient: bool = True) -> Evidence:
    return Evidence(
        comparison="x",
        source="off-policy",
        estimator="dr",
        estimate=estimate,
        low=low,
        high=high,
        n_effective=100.0,
        n_clusters=12,
        bootstrap_over="persons",
        k=150,
        sufficient=sufficient,
        biased=False,
    )


def test_registration_goes_ahead_unless_the_evidence_shows_harm() -> None:
    settings = DecisionSettings(delta=0.02)
    beats_random = _evidence(0.2, 0.1, 0.3)
    # Behind the rule but the interval reaches above -delta: registered, comparison unproven.
    unproven = registration_decision(beats_random, _evidence(-0.03, -0.2, 0.1, sufficient=False), settings)
    assert unproven.go and "unproven (insufficient evidence)" in unproven.sentence
    # The whole interval below -delta: refused because of the rule.
    refused = registration_decision(beats_random, _evidence(-0.1, -0.15, -0.05), settings)
    assert not refused.go and "office rule" in refused.sentence
    # Not shown better than random (shuffled labels): refused.
    shuffled = registration_decision(_evidence(0.0, -0.05, 0.05), _evidence(0.0, -0.1, 0.1), settings)
    assert not shuffled.go and "random" in shuffled.sentence
    assert "NOT REGISTERED" in shuffled.render()


def test_promotion_refuses_only_on_shown_harm_or_a_fairness_block() -> None:
    settings = DecisionSettings(delta=0.02)
    assert promotion_decision(_evidence(-0.01, -0.3, 0.2, sufficient=False), "3", (), settings).go
    worse = promotion_decision(_evidence(-0.1, -0.16, -0.04), "3", (), settings)
    assert not worse.go and "below -0.02" in worse.sentence
    blocked = promotion_decision(_evidence(0.0, -0.01, 0.01), "3", ("fdr worse for X",), settings)
    assert not blocked.go and blocked.objections == ["fairness: fdr worse for X"]
    assert promotion_decision(None, None).go


def test_a_random_list_is_judged_by_its_expected_value() -> None:
    sample = _sample(
        inclusion=[1.0, 0.5, 0.25, 0.25],
        observed=[True, True, True, False],
        found=[True, False, True, False],
        k=2,
    )
    value = policy_value([sample], None)
    # HT of the mean over all cases: (1/1 + 1/0.25) / 4
    assert value.ht == pytest.approx(5 / 4)
    evidence = paired_difference([sample], [np.array([4.0, 3.0, 2.0, 1.0])], None, "a - random")
    # a's top 2 (cases 0, 1): HT hits 1 -> 0.5; minus 5/4
    assert evidence.estimate == pytest.approx(0.5 - 5 / 4)
