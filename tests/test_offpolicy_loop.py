"""The off-policy estimators recover a known policy value from loop outcomes.

A loop world's cases as of its first month are ranked by the office rule; 300
committed-list draws (boundary exploration, exact inclusion probabilities from
`models.listing`) are inspected by the loop's own inspection model (visit days in
the month, the simulator's detection rates, `simulator.outcomes.assess`). From each
draw's outcomes the estimators judge another policy's top k. The policy's true value
is known by inspecting its own top k many times with the same inspection model.

Coverage is pooled over three worlds (seeds 1-3, not chosen): one world's coverage
moves by several points with small changes to the world (measured on seeds 1-8
at k = 400: 88.7% to 95.3%, pooled 93.6%; at k = 250, with about 23 findings a draw
where the lists differ, 80% to 96%, so below the issue's 30 expected hits the
interval under-covers on some worlds). Here about 25 findings a draw fall where the
lists differ; the issue asks for coverage of at least 90% from 30 on.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.pipeline import features_from_timeline
from features.timeline import build_timeline
from loop.world import LoopState, prepare_loop_world, state_tables, to_date
from models.listing import ExplorationDesign, draw_inspection_list
from models.office_rule import office_rule_scores
from models.order import rank_order
from simulator.outcomes import assess
from simulator.period import uniform_days
from simulator.selection import Picks
from simulator.world import WorldConfig
from training.offpolicy import EvidenceSettings, Sample, paired_difference, policy_value

pytestmark = pytest.mark.slow

DRAWS = 200  # committed-list draws per world
K = 400
REPEATS = 400
SEEDS = (1, 2, 3)


def test_estimators_recover_a_known_policy_value_from_loop_outcomes() -> None:
    covered, hits = 0, []
    for seed in SEEDS:
        world_covered, world_hits = _judge_one_world(seed)
        covered += world_covered
        hits += world_hits
    print(
        f"known-propensity hits where the lists differ: {np.mean(hits):.1f} a draw; "
        f"coverage {covered / (DRAWS * len(SEEDS)):.1%}"
    )
    assert covered / (DRAWS * len(SEEDS)) >= 0.90, f"coverage {covered / (DRAWS * len(SEEDS)):.1%}"


def _judge_one_world(seed: int) -> tuple[int, list[int]]:
    """Estimates from one world's draws: HT and DR checked against the known value here; the number
    of draws whose interval covers the known difference, and the hits a draw, returned."""
    world = prepare_loop_world(WorldConfig(persons=8_000, seed=seed), months=1, horizon_days=90)
    first, last = world.months[0]
    as_of = to_date(first)
    state = LoopState.start(world, 0)
    tables = state_tables(world, state, world.office_frame())
    features = features_from_timeline(build_timeline(tables), [as_of]).droplevel("as_of")
    ids = features.index.to_numpy(dtype=str)
    codes = pd.Index(world.drawn.person_ids.astype(str)).get_indexer(ids)
    assert (codes >= 0).all()
    truth = world.drawn.truth
    live_end = np.minimum(state.end, state.removed[truth.person] - 1)
    rng = np.random.default_rng(11)

    def inspect(who: np.ndarray) -> np.ndarray:
        """Findings of visits to these cases (positions into `ids`) on uniform days of the month."""
        day = uniform_days(rng, first + 1, last, len(who))
        picks = Picks(codes[who], day, np.full(len(who), -1, dtype=np.int64))
        trigger = np.zeros(len(who), dtype=np.int64)
        done = assess(picks, trigger, np.full(len(who), np.nan), truth, live_end, rng)
        return np.asarray(done.found, dtype=bool)

    rule = office_rule_scores(features)  # the policy in service: its lists are drawn
    challenger = np.log1p(features["person_reports_total"].fillna(0).to_numpy(dtype=float)) + rng.normal(
        0, 0.5, len(ids)
    )  # another policy, judged from the rule's lists
    order = rank_order(rule, ids)
    ranked = pd.DataFrame({"rank": np.arange(1, len(ids) + 1)}, index=pd.Index(ids[order], name="person_id"))
    position = pd.Series(np.arange(len(ids)), index=ids)

    # The known values: each policy's own top k, inspected REPEATS times over.
    def known(scores: np.ndarray) -> float:
        top = rank_order(scores, ids)[:K]
        return float(inspect(np.tile(top, REPEATS)).mean())

    value_challenger, value_rule = known(challenger), known(rule)

    design = ExplorationDesign(kind="boundary", share=0.4)
    settings = EvidenceSettings(bootstrap=200, min_ess=0, max_width=1.0)
    ht, dr, covered, hits = [], [], 0, []
    m = np.full(len(ids), float(np.mean(inspect(np.arange(len(ids))))))  # a crude outcome model
    for r in range(DRAWS):
        draw = draw_inspection_list(ranked, K, design, seed=r)
        inclusion = np.zeros(len(ids))
        eligible = draw.inclusion
        inclusion[position[eligible["person_id"].astype(str)].to_numpy()] = eligible["inclusion_probability"]
        listed = position[draw.rows.index.astype(str)].to_numpy()
        observed = np.zeros(len(ids), dtype=bool)
        found = np.zeros(len(ids), dtype=bool)
        observed[listed] = True
        found[listed] = inspect(listed)
        sample = Sample(f"list {r}", K, ids, inclusion, observed, found, m)
        value = policy_value([sample], [challenger])
        ht.append(value.ht)
        dr.append(value.dr)
        evidence = paired_difference([sample], [challenger], [rule], "challenger - rule", settings)
        in_a = np.zeros(len(ids), dtype=bool)
        in_a[rank_order(challenger, ids)[:K]] = True
        in_b = np.zeros(len(ids), dtype=bool)
        in_b[rank_order(rule, ids)[:K]] = True
        hits.append(int((found & (in_a != in_b)).sum()))
        covered += evidence.low <= value_challenger - value_rule <= evidence.high
    for name, estimates in (("Horvitz-Thompson", np.array(ht)), ("doubly robust", np.array(dr))):
        error = abs(estimates.mean() - value_challenger)
        known_se = math.sqrt(value_challenger * (1 - value_challenger) / (REPEATS * K))
        monte_carlo_se = math.hypot(estimates.std(ddof=1) / math.sqrt(DRAWS), known_se)
        assert error < 3 * monte_carlo_se, (
            f"world {seed}: {name} off by {error:.3f} (3 SE = {3 * monte_carlo_se:.3f})"
        )
    return int(covered), hits
