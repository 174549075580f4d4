"""The randomised comparison with the office rule: seeded assignment, the rule's lists, the estimate."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.assignment import (
    ASSIGNMENTS_FILE,
    AssignmentError,
    arm_for,
    assign,
    draw_arms,
    read_assignments,
)
from features.contract import DISTRICTS
from features.filters import KnownFilters
from features.lists import LISTS_DIR, commit_list
from features.tables import Tables, empty_frame
from models.listing import ExplorationDesign, draw_inspection_list
from models.office_rule import office_rule_scores
from models.scoring import ScoredCases
from serving.engine import ScoringEngine, _ScoredDate, rank_for_arm
from serving.options import ServingSettings
from training.evidence import randomised_comparison

MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]
DESIGN = ExplorationDesign(share=0.2)  # k = 10: 8 model picks, 2 exploration draws


def test_the_assignment_is_seeded_balanced_and_logged(tmp_path: Path) -> None:
    made = assign(tmp_path, "month", MONTHS, seed=3, reason="pilot", created_by="ana")
    assert made.units == tuple(MONTHS) and sorted(made.arms).count("rule") == 6
    assert made.arms == draw_arms(MONTHS, 3)
    assert draw_arms(list(reversed(MONTHS)), 3) == tuple(reversed(made.arms))  # order named does not matter
    assert any(draw_arms(MONTHS, seed) != made.arms for seed in range(4, 10))
    assert read_assignments(tmp_path) == [made]
    logged = json.loads((tmp_path / LISTS_DIR / ASSIGNMENTS_FILE).read_text().splitlines()[0])
    assert logged["seed"] == 3 and logged["reason"] == "pilot" and logged["created_by"] == "ana"
    assert (
        logged["by"] == "month"
        and logged["units"] == MONTHS
        and logged["assignment_id"] == made.assignment_id
    )
    assert set(logged) >= {"arms", "created_at"}


def test_a_unit_is_assigned_once(tmp_path: Path) -> None:
    assign(tmp_path, "month", ["2026-07", "2026-08"], seed=1, reason="pilot")
    with pytest.raises(AssignmentError, match="2026-08"):
        assign(tmp_path, "month", ["2026-08", "2026-09"], seed=2, reason="again")
    assign(tmp_path, "district", ["36"], seed=1, reason="districts")
    with pytest.raises(AssignmentError, match="3671"):
        assign(tmp_path, "district", ["3671"], seed=1, reason="inside 36")
    assert len(read_assignments(tmp_path)) == 2


@pytest.mark.parametrize(
    ("by", "units", "message"),
    [
        ("month", ["2026-13"], "YYYY-MM"),
        ("month", ["2026-07", "2026-07"], "more than once"),
        ("district", ["36", "3671"], "overlap"),
        ("week", ["2026-07"], "month"),
        ("month", [], "at least one"),
    ],
)
def test_bad_units_are_refused(tmp_path: Path, by: str, units: list[str], message: str) -> None:
    with pytest.raises(AssignmentError, match=message):
        assign(tmp_path, by, units, seed=1, reason="x")  # type: ignore[arg-type]
    assert read_assignments(tmp_path) == []


def test_arm_for_finds_the_month_and_the_district_prefix(tmp_path: Path) -> None:
    months = assign(tmp_path, "month", ["2026-07", "2026-08"], seed=1, reason="months")
    districts = assign(tmp_path, "district", ["36", "51"], seed=1, reason="districts")
    assert arm_for(tmp_path, dt.date(2026, 7, 31), None) == months.arm_of()["2026-07"]
    assert arm_for(tmp_path, dt.date(2026, 8, 1), "5171") == months.arm_of()["2026-08"]  # months first
    assert arm_for(tmp_path, dt.date(2026, 9, 1), "3671") == districts.arm_of()["36"]
    assert arm_for(tmp_path, dt.date(2026, 9, 1), "51") == districts.arm_of()["51"]
    assert arm_for(tmp_path, dt.date(2026, 9, 1), "12") is None
    assert arm_for(tmp_path, dt.date(2026, 9, 1), None) is None
    assert arm_for(tmp_path / "none", dt.date(2026, 9, 1), None) is None


# The estimate


def _ranked(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "score": np.linspace(0.9, 0.01, n),
            "rank": np.arange(1, n + 1),
            "percentile": np.linspace(100, 1, n),
            "district": ["3672"] * n,
            "permit_type": ["ITAS_WORK"] * n,
        },
        index=pd.Index([f"P{i:04d}" for i in range(n)], name="person_id"),
    )


def _inspections(rows: list[dict[str, object]]) -> Tables:
    frame = pd.DataFrame(rows, columns=["person_id", "trigger", "list_id", "violation_found"])
    return Tables(*(pd.DataFrame() for _ in range(7)), inspections=frame)  # type: ignore[arg-type]


def _commit_lists(data: Path, precisions: dict[str, list[float]]) -> Tables:
    """One list a day per arm and precision; every listed case visited, hits among the model picks."""
    rows: list[dict[str, object]] = []
    day = dt.date(2026, 1, 1)
    for arm, values in precisions.items():
        for precision in values:
            table = _ranked()
            draw = draw_inspection_list(table, 10, DESIGN, 1)
            committed = commit_list(
                data, draw, as_of=day, scope={"district": None}, k=10, model_version="1",
                design=DESIGN, seed=1, ranked=table, extra={"arm": arm},
            )  # fmt: skip
            day += dt.timedelta(days=1)
            listed = committed.listed
            hits = round(precision * committed.n_model)
            for i, case in enumerate(listed.itertuples()):
                model_pick = case.selection == "MODEL"
                found = (i < hits) if model_pick else True  # exploration hits must not count
                rows.append(
                    {"person_id": case.person_id, "trigger": "LIST", "list_id": committed.list_id,
                     "violation_found": found}
                )  # fmt: skip
    return _inspections(rows)


def test_the_randomised_comparison_recovers_the_difference(tmp_path: Path) -> None:
    model = [0.5, 0.5, 0.625, 0.5, 0.375, 0.5]  # of 8 model picks: mean 0.5
    rule = [0.25, 0.25, 0.375, 0.125, 0.25, 0.25]  # mean 0.25
    tables = _commit_lists(tmp_path, {"model": model, "rule": rule})
    evidence = randomised_comparison(tmp_path, tables)
    assert evidence is not None
    assert evidence.estimate == pytest.approx(0.25)
    assert evidence.values == pytest.approx({"model": 0.5, "rule": 0.25})
    assert evidence.low < 0.25 < evidence.high and evidence.width <= 0.2
    assert evidence.sufficient and evidence.n_clusters == 12 and evidence.source == "randomised"
    assert evidence.comparison == "model - office rule (randomised)"
    assert "model - office rule (randomised) = +0.250" in evidence.describe()


def test_too_few_lists_are_insufficient_evidence(tmp_path: Path) -> None:
    tables = _commit_lists(tmp_path, {"model": [0.5, 0.75], "rule": [0.25, 0.5]})
    evidence = randomised_comparison(tmp_path, tables)
    assert evidence is not None and not evidence.sufficient
    assert evidence.estimate == pytest.approx(0.25)
    assert "at least 5 lists" in evidence.note and "insufficient evidence" in evidence.describe()


def test_no_lists_with_an_arm_and_outcomes_give_no_estimate(tmp_path: Path) -> None:
    assert randomised_comparison(tmp_path, _inspections([])) is None
    one_arm = _commit_lists(tmp_path, {"model": [0.5]})
    evidence = randomised_comparison(tmp_path, one_arm)
    assert evidence is not None and not evidence.sufficient and "both arms" in evidence.note


# Lists of the rule's units


def _scored(as_of: dt.date, n: int = 80) -> ScoredCases:
    rng = np.random.default_rng(0)
    index = pd.Index([f"P{i:04d}" for i in range(n)], name="person_id")
    features = pd.DataFrame(
        {
            "overstay_now": rng.random(n) < 0.2,
            "person_reports_90d": rng.integers(0, 3, n),
            "days_to_expiry": rng.integers(-30, 400, n).astype(float),
        },
        index=index,
    )
    score = rng.random(n)
    order = np.argsort(-score, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    table = pd.DataFrame(
        {
            "score": score,
            "rank": rank,
            "percentile": 100.0 * (1 - (rank - 1) / n),
            "district": np.where(np.arange(n) % 2, "3671", "5171"),
            "permit_type": "ITAS_WORK",
        },
        index=index,
    ).iloc[order]
    return ScoredCases(as_of, "1", features, table, np.zeros((n, 3)))


def _engine(data: Path, scored: ScoredCases) -> ScoringEngine:
    """An engine serving one scored date, without a model (the rule's lists need none)."""
    engine = ScoringEngine.__new__(ScoringEngine)
    engine.data_dir, engine.version = data, "1"
    engine.first_date = engine.last_date = scored.as_of
    engine._cached_dates, engine._lock, engine._date_locks = 4, threading.Lock(), {}
    engine.settings = ServingSettings()
    engine._cache = OrderedDict({scored.as_of: _ScoredDate.of(scored)})
    engine.known_filters = KnownFilters.of(
        empty_frame(DISTRICTS), scored.table["district"].dropna().astype(str)
    )
    return engine


def test_a_list_in_a_rule_month_is_ranked_by_the_office_rule(tmp_path: Path) -> None:
    as_of = dt.date(2026, 7, 15)
    scored = _scored(as_of)
    assert rank_for_arm(scored, None) is scored.table and rank_for_arm(scored, "model") is scored.table
    made = assign(tmp_path, "month", ["2026-07", "2026-08"], seed=1, reason="pilot")
    assert made.arm_of()["2026-07"] == "rule", "seed 1 puts July in the rule's arm"
    result = _engine(tmp_path, scored).inspection_list(as_of, k=10, exploration_share=0.2, seed=5)
    committed = result.committed
    assert committed.extra == {"arm": "rule"}
    rule = pd.Series(office_rule_scores(scored.features), index=scored.features.index)
    picks = committed.listed[committed.listed["selection"] == "MODEL"]
    best = rule.sort_values(ascending=False, kind="stable")
    assert rule[picks["person_id"]].min() >= best.iloc[len(picks) - 1]  # the rule's top picks
    assert picks["score"].to_numpy() == pytest.approx(rule[picks["person_id"]].to_numpy())
    assert committed.cases["inclusion_probability"].sum() == pytest.approx(10)  # exact propensities
    assert [row.propensity for row in result.response.rows[: len(picks)]] == [1.0] * len(picks)
