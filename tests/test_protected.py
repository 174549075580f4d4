"""Protected attributes (nationality, sex, birth year) never reach the feature matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tiny_world import AS_OF, tiny_tables

from features.catalog import FEATURE_NAMES, FEATURES
from features.contract import PROTECTED_COLUMNS
from features.pipeline import build_features


def test_protected_columns_are_the_contracts() -> None:
    assert PROTECTED_COLUMNS == {"nationality", "sex", "birth_year"}


def test_allow_list_names_no_protected_attribute() -> None:
    banned = ("nationality", "citizen", "country", "sex", "gender", "birth", "person_age")
    for feature in FEATURES:
        assert feature.name not in PROTECTED_COLUMNS
        assert not any(word in feature.name for word in banned), feature.name
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) >= 30


def test_matrix_columns_are_exactly_the_allow_list() -> None:
    tables = tiny_tables()
    # A column outside the contract (as a careless export might add) must not slip in.
    persons = tables.persons.assign(passport_country=["CHN"] * len(tables.persons))
    matrix = build_features(
        type(tables)(**{**dict(tables.items()), "persons": persons}),  # bypass coercion on purpose
        [AS_OF],
    )
    assert list(matrix.columns) == list(FEATURE_NAMES)


def test_features_do_not_depend_on_protected_values() -> None:
    """Replacing every protected value leaves every feature unchanged: nothing is derived from them."""
    tables = tiny_tables()
    rng = np.random.default_rng(0)
    n = len(tables.persons)
    scrambled = tables.persons.assign(
        nationality=rng.choice(["IDN", "USA", "ZZZ"], n),
        sex=rng.choice(["F", "M", "X"], n),
        birth_year=rng.integers(1900, 2010, n),
    )
    before = build_features(tables, [AS_OF])
    after = build_features(tables.replace(persons=scrambled), [AS_OF])
    pd.testing.assert_frame_equal(before, after)
