"""The inspection-list draw: model picks by rank, plus an exploration share with a known propensity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.listing import EXPLORATION, MODEL, draw_inspection_list, exploration_slots


def ranked(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"rank": np.arange(1, n + 1), "score": np.linspace(0.9, 0.1, n)}, index=[f"P{i}" for i in range(n)]
    )


def test_top_by_rank_then_drawn_rows_with_their_propensity() -> None:
    draw = draw_inspection_list(ranked(1_000), k=50, share=0.1, seed=3)
    assert (draw.n_model, draw.n_exploration, draw.pool_size) == (45, 5, 955)
    rows = draw.rows
    assert rows["selection"].tolist() == [MODEL] * 45 + [EXPLORATION] * 5
    assert rows["rank"].tolist()[:45] == list(range(1, 46))
    assert (rows["rank"].iloc[45:] > 45).all() and rows["rank"].iloc[45:].is_monotonic_increasing
    assert (rows["propensity"].iloc[:45] == 1.0).all()
    assert np.allclose(rows["propensity"].iloc[45:], 5 / 955)
    assert draw.drawn_ranks == rows["rank"].iloc[45:].tolist()
    assert rows.index.is_unique


def test_the_same_seed_gives_the_same_list_and_another_seed_another() -> None:
    table = ranked(500)
    first, again = (
        draw_inspection_list(table, 40, 0.25, seed=11),
        draw_inspection_list(table, 40, 0.25, seed=11),
    )
    other = draw_inspection_list(table, 40, 0.25, seed=12)
    assert first.rows.index.tolist() == again.rows.index.tolist()
    assert first.drawn_ranks != other.drawn_ranks


def test_each_case_below_the_cut_is_drawn_with_the_stated_propensity() -> None:
    table = ranked(60)
    hits = np.zeros(61)
    trials = 4_000
    for seed in range(trials):
        draw = draw_inspection_list(table, k=10, share=0.3, seed=seed)
        hits[draw.drawn_ranks] += 1
    rate = hits[8:] / trials  # ranks 8..60 form the pool of 53
    expected = 3 / 53
    assert draw.rows["propensity"].iloc[-1] == pytest.approx(expected)
    assert np.abs(rate - expected).max() < 0.02  # binomial sd about 0.004
    assert hits[:8].sum() == 0


@pytest.mark.parametrize(
    ("k", "eligible", "share", "slots"),
    [
        (10, 5, 0.5, (5, 0)),
        (10, 10, 0.5, (10, 0)),
        (1, 100, 0.1, (1, 0)),
        (20, 100, 0.0, (20, 0)),
        (20, 100, 0.5, (10, 10)),
    ],
)
def test_slots(k: int, eligible: int, share: float, slots: tuple[int, int]) -> None:
    assert exploration_slots(k, eligible, share) == slots


def test_a_list_of_everything_eligible_has_no_exploration() -> None:
    draw = draw_inspection_list(ranked(7), k=50, share=0.2, seed=1)
    assert draw.n_model == 7 and draw.n_exploration == 0 and (draw.rows["propensity"] == 1.0).all()


def test_empty_table_gives_an_empty_list() -> None:
    draw = draw_inspection_list(ranked(0), k=5, share=0.2, seed=1)
    assert len(draw.rows) == 0


@pytest.mark.parametrize(("k", "share"), [(0, 0.1), (5, -0.1), (5, 1.5)])
def test_bad_arguments_are_refused(k: int, share: float) -> None:
    with pytest.raises(ValueError):
        draw_inspection_list(ranked(10), k, share, seed=1)
