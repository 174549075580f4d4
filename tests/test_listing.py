"""The inspection-list draw: model picks by rank, plus an exploration share with a known propensity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.listing import (
    EXPLORATION,
    INCLUSION_COLUMNS,
    MODEL,
    ExplorationDesign,
    draw_inspection_list,
    draw_positions,
    exploration_slots,
)


def ranked(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"rank": np.arange(1, n + 1), "score": np.linspace(0.9, 0.1, n)}, index=[f"P{i}" for i in range(n)]
    )


def test_top_by_rank_then_drawn_rows_with_their_propensity() -> None:
    draw = draw_inspection_list(ranked(1_000), k=50, design=0.1, seed=3)
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
    draw = draw_inspection_list(ranked(7), k=50, design=0.2, seed=1)
    assert draw.n_model == 7 and draw.n_exploration == 0 and (draw.rows["propensity"] == 1.0).all()


def test_empty_table_gives_an_empty_list() -> None:
    draw = draw_inspection_list(ranked(0), k=5, design=0.2, seed=1)
    assert len(draw.rows) == 0


@pytest.mark.parametrize(("k", "share"), [(0, 0.1), (5, -0.1), (5, 1.5)])
def test_bad_arguments_are_refused(k: int, share: float) -> None:
    with pytest.raises(ValueError):
        draw_inspection_list(ranked(10), k, share, seed=1)


# Designs with strata: exact propensities, checked by simulating the draw over many seeds.


BOUNDARY = ExplorationDesign(share=0.25)  # k = 20: 15 model picks, 3 draws from ranks 16-80, 2 from 81-300


def test_the_boundary_design_splits_the_draws_between_the_strata() -> None:
    draw = draw_inspection_list(ranked(300), k=20, design=BOUNDARY, seed=5)
    assert [(s.name, s.first, s.last, s.draws) for s in draw.strata] == [
        ("model", 1, 15, 15),
        ("boundary", 16, 80, 3),
        ("uniform", 81, 300, 2),
    ]
    rows = draw.rows
    assert rows["stratum"].tolist() == ["model"] * 15 + ["boundary"] * 3 + ["uniform"] * 2
    assert np.allclose(rows["propensity"], [1.0] * 15 + [3 / 65] * 3 + [2 / 220] * 2)
    assert rows["rank"].iloc[15:18].between(16, 80).all() and (rows["rank"].iloc[18:] > 80).all()
    inclusion = draw.inclusion
    assert list(inclusion.columns) == list(INCLUSION_COLUMNS) and len(inclusion) == 300
    assert inclusion["inclusion_probability"].sum() == pytest.approx(20)  # expected list size is k
    listed = inclusion.set_index("person_id").loc[rows.index]
    assert np.allclose(listed["inclusion_probability"], rows["propensity"])
    assert (inclusion["inclusion_probability"] > 0).all()


@pytest.mark.parametrize(
    ("design", "k", "eligible"),
    [
        (BOUNDARY, 20, 300),
        (ExplorationDesign(share=0.1), 50, 120),  # the boundary stratum reaches the end: no uniform layer
        (ExplorationDesign(share=0.2, boundary_share=0.5, boundary_depth=2.0), 10, 90),
        (ExplorationDesign.uniform(0.3), 10, 60),
    ],
)
def test_each_case_is_drawn_with_its_stated_inclusion_probability(
    design: ExplorationDesign, k: int, eligible: int
) -> None:
    table = ranked(eligible)
    stated = draw_inspection_list(table, k, design, seed=0)
    trials = 4_000
    drawn = np.concatenate([draw_positions(stated.strata, seed) for seed in range(trials)])
    rate = np.bincount(drawn, minlength=eligible) / trials
    p = stated.inclusion["inclusion_probability"].to_numpy()
    sd = np.sqrt(p * (1 - p) / trials)
    assert np.all(rate[p == 1.0] == 1.0) and np.all(rate[p == 0.0] == 0.0)
    inside = (p > 0) & (p < 1)
    z = np.abs(rate[inside] - p[inside]) / sd[inside]
    assert z.max() < 5.0, z.max()  # Monte-Carlo error: about 3.5 sd is the largest of a few hundred cases
    for stratum in stated.strata:  # each stratum gets exactly its draws in every trial
        in_stratum = (drawn >= stratum.first - 1) & (drawn < stratum.last)
        assert in_stratum.sum() == stratum.draws * trials
    for seed in (1, 2, 3):  # the list itself is this draw
        draw = draw_inspection_list(table, k, design, seed)
        assert (draw.rows["rank"].to_numpy() - 1).tolist() == draw_positions(stated.strata, seed).tolist()


def test_a_float_share_is_the_uniform_design_of_earlier_lists() -> None:
    table = ranked(400)
    old = draw_inspection_list(table, 30, 0.2, seed=9)
    new = draw_inspection_list(table, 30, ExplorationDesign.uniform(0.2), seed=9)
    assert old.rows.index.tolist() == new.rows.index.tolist() and old.design == new.design
    assert [s.name for s in old.strata] == ["model", "uniform"]


def test_a_stratum_without_draws_has_probability_zero() -> None:
    draw = draw_inspection_list(ranked(300), k=20, design=ExplorationDesign(share=0.05), seed=1)
    assert [(s.name, s.draws) for s in draw.strata] == [("model", 19), ("boundary", 1), ("uniform", 0)]
    uniform = draw.inclusion[draw.inclusion["stratum"] == "uniform"]
    assert len(uniform) == 220 and (uniform["inclusion_probability"] == 0).all()


def test_designs_round_trip_through_their_canonical_dict() -> None:
    for design in (BOUNDARY, ExplorationDesign.uniform(0.1), ExplorationDesign(boundary_depth=3)):
        assert ExplorationDesign.from_dict(design.to_dict()) == design
    assert ExplorationDesign.uniform(0.1).to_dict() == {"kind": "uniform", "share": 0.1}


@pytest.mark.parametrize(
    "fields",
    [{"share": 1.5}, {"boundary_share": -0.1}, {"boundary_depth": 0.5}, {"kind": "stratified"}],
)
def test_bad_designs_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ExplorationDesign(**fields)  # type: ignore[arg-type]
