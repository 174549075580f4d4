"""No noise: no progress bars in logs and pipes, no warning on every training about empty features."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest
from tiny_world import AS_OF, tiny_tables

from features.catalog import FEATURE_NAMES, FEATURES_BY_NAME
from features.pipeline import build_features
from training.baselines import fit_logistic, logistic_scores


def test_no_progress_bar_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    t = dt.date.fromisoformat(AS_OF)
    dates = [t - dt.timedelta(days=30 * i) for i in range(3)]
    built = build_features(tiny_tables(), dates, progress=True)
    assert len(built.index.get_level_values("as_of").unique()) == 3
    captured = capsys.readouterr()  # pytest's capture is not a terminal, like a log file or a pipe
    assert "features" not in captured.err and "it/s" not in captured.err and "date/s" not in captured.err


def _cases(n: int, seed: int) -> pd.DataFrame:
    """Random feature rows with the catalog's columns; one numeric feature never observed."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for name in FEATURE_NAMES:
        spec = FEATURES_BY_NAME[name]
        if spec.is_categorical:
            data[name] = pd.Categorical(rng.choice(["A", "B"], n))
        else:
            data[name] = rng.normal(size=n)
    empty = next(n for n in FEATURE_NAMES if not FEATURES_BY_NAME[n].is_categorical)
    data[empty] = np.full(n, np.nan)
    return pd.DataFrame(data)


def test_a_feature_no_case_has_is_not_a_warning_on_every_training() -> None:
    features = _cases(200, seed=1)
    label = (np.random.default_rng(2).random(200) < 0.3).astype(np.int64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fit_logistic(features, label, np.ones(200))
        scores = logistic_scores(model, features)
    assert not [w for w in caught if "without any observed values" in str(w.message)]
    assert scores.shape == (200,) and np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()
