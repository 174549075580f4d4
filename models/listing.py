"""An inspection list for a capacity: the model's top picks plus a random exploration share.

Only RANDOM inspections give unbiased labels (principle 5). So a list of k slots
takes the top k - m cases by rank (selection MODEL, propensity 1) and draws the
other m = round(k * share) uniformly, without replacement, from the eligible
cases below them (selection EXPLORATION, propensity m / pool). Inspections of
the drawn cases are logged with that propensity, so later training can weight
them and evaluation can use them as an unbiased sample. The draw is seeded and
the seed is returned, so any list can be reproduced and audited.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MODEL = "MODEL"
EXPLORATION = "EXPLORATION"


@dataclass(frozen=True)
class ListDraw:
    """The chosen rows in list order (model picks by rank, then exploration draws by rank)."""

    rows: pd.DataFrame  # rows of the ranked table plus `selection` and `propensity`
    seed: int
    n_model: int
    n_exploration: int
    pool_size: int  # eligible cases the exploration slots were drawn from
    drawn_ranks: list[int]  # overall ranks of the exploration rows, for the audit log


def exploration_slots(k: int, eligible: int, share: float) -> tuple[int, int]:
    """(model slots, exploration slots) for a list of k out of `eligible` cases."""
    k = min(k, eligible)
    wanted = round(k * share)
    if wanted == 0 or eligible <= k:
        return k, 0  # every eligible case fits: nothing is left to explore
    return k - wanted, wanted


def draw_inspection_list(ranked: pd.DataFrame, k: int, share: float, seed: int) -> ListDraw:
    """Draw a list of up to k cases from `ranked` (eligible cases in rank order, a `rank` column)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"exploration share must be within [0, 1], got {share}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n_model, n_explore = exploration_slots(k, len(ranked), share)
    pool = len(ranked) - n_model
    rng = np.random.default_rng(seed)
    drawn = (
        np.sort(rng.choice(pool, size=n_explore, replace=False)) + n_model if n_explore else np.empty(0, int)
    )
    positions = np.concatenate([np.arange(n_model), drawn]).astype(np.int64)
    rows = ranked.iloc[positions].copy()
    rows["selection"] = [MODEL] * n_model + [EXPLORATION] * n_explore
    rows["propensity"] = np.concatenate([np.ones(n_model), np.full(n_explore, n_explore / max(pool, 1))])
    return ListDraw(
        rows=rows,
        seed=seed,
        n_model=n_model,
        n_exploration=n_explore,
        pool_size=pool if n_explore else 0,
        drawn_ranks=[int(r) for r in rows["rank"].to_numpy()[n_model:]],
    )
