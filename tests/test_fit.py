"""Fitting: both objectives learn a planted signal; query groups and class balance are as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import FEATURE_NAMES, FEATURES_BY_NAME
from training.fit import MAX_QUERY_SIZE, FitConfig, LabelledCases, _query_groups, balanced, fit_ranker
from training.metrics import roc_auc
from training.settings import TrainingSettings


def _cases(n: int, seed: int, dates: int = 4) -> LabelledCases:
    """Random features; the label follows `sponsor_labour_findings_365d` (plus noise)."""
    rng = np.random.default_rng(seed)
    data = {}
    for name in FEATURE_NAMES:
        spec = FEATURES_BY_NAME[name]
        if spec.categories is not None:
            codes = rng.integers(0, len(spec.categories), n)
            data[name] = pd.Categorical.from_codes(codes, categories=pd.Index(spec.categories))
        else:
            data[name] = rng.normal(size=n)
    features = pd.DataFrame(data)
    signal = features["sponsor_labour_findings_365d"].to_numpy()
    label = (signal + rng.normal(scale=0.7, size=n) > 0.8).astype(np.int64)
    as_of = pd.to_datetime("2024-01-01") + pd.to_timedelta(30 * rng.integers(0, dates, n), unit="D")
    features.index = pd.MultiIndex.from_arrays(
        [[f"P{i}" for i in range(n)], as_of], names=["person_id", "as_of"]
    )
    return LabelledCases(features, label, np.ones(n))


@pytest.mark.parametrize("objective", ["binary", "lambdarank"])
def test_both_objectives_learn_the_signal(objective: str) -> None:
    train, validation, test = _cases(3_000, 1), _cases(800, 2), _cases(800, 3)
    model = fit_ranker(train, validation, FitConfig(objective=objective, max_rounds=200), horizon_days=90)  # type: ignore[arg-type]
    scores = model.score(test.features)
    assert roc_auc(scores, pd.Series(test.label.astype(bool), dtype="boolean")) > 0.8
    assert np.all((scores > 0) & (scores < 1))  # calibrated probabilities for both objectives
    assert model.objective == objective and model.info["best_iteration"] >= 1


def test_query_groups_hold_one_date_each_and_are_capped() -> None:
    as_of = np.array(["2024-01-01"] * 450 + ["2024-02-01"] * 30, dtype="datetime64[D]")
    order, sizes = _query_groups(as_of, seed=0)
    assert sizes == [MAX_QUERY_SIZE, MAX_QUERY_SIZE, 50, 30]
    assert sorted(order) == list(range(len(as_of)))
    assert (as_of[order][:450] == np.datetime64("2024-01-01")).all()


def test_balanced_weights_give_both_classes_equal_weight() -> None:
    cases = _cases(10, 0)
    cases.label = np.array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    cases.weight = np.array([1.0, 1, 1, 1, 1, 3, 1, 1, 1, 2])
    out = balanced(cases)
    # positives weigh 1 + 3 = 4, negatives 9: positives scaled by 9/4
    assert out.weight[0] == pytest.approx(9 / 4) and out.weight[5] == pytest.approx(27 / 4)
    assert out.weight[out.label == 1].sum() == pytest.approx(out.weight[out.label == 0].sum())


def test_one_class_training_data_is_refused() -> None:
    cases = _cases(200, 0)
    cases.label = np.zeros(200, dtype=np.int64)
    with pytest.raises(ValueError, match="both outcomes"):
        fit_ranker(cases, _cases(100, 1), FitConfig(), horizon_days=90)


def test_a_model_on_a_subset_of_the_allow_list_uses_only_those_features() -> None:
    train, validation, test = _cases(1_500, 1), _cases(400, 2), _cases(400, 3)
    without_signal = tuple(n for n in FEATURE_NAMES if n != "sponsor_labour_findings_365d")[::2]
    config = FitConfig(max_rounds=30, features=without_signal)
    model = fit_ranker(train, validation, config, horizon_days=90)
    assert model.feature_names == without_signal
    assert model.booster.feature_name() == list(without_signal)
    assert model.contributions(test.features).shape == (400, len(without_signal) + 1)
    label = pd.Series(test.label.astype(bool), dtype="boolean")
    assert roc_auc(model.score(test.features), label) < 0.65  # the planted signal is not among them
    with pytest.raises(ValueError, match="not in the allow-list"):
        _ = FitConfig(features=("nationality",)).feature_names


def test_seed_and_threads_default_to_the_training_settings_and_reach_lightgbm() -> None:
    params = FitConfig().lightgbm_params()
    assert (params["seed"], params["num_threads"]) == (TrainingSettings.seed, TrainingSettings.num_threads)
    other = FitConfig(seed=3, num_threads=1).lightgbm_params()
    assert (other["seed"], other["num_threads"]) == (3, 1)
