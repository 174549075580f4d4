"""/score answers: the small-batch (json module) and large-batch (pandas) writers give the same JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from serving.engine import ScoreBatch
from serving.schemas import ScoreResponse


def batch(n: int, reasons: bool) -> ScoreBatch:
    rng = np.random.default_rng(5)
    rank = rng.integers(1, 10_000, n)
    rank[::7] = -1  # not scored
    status = np.where(rank >= 0, "scored", "unknown_person").astype(object)
    status[::14] = "not_a_case"  # some of the ids that are not scored
    why = [
        [{"feature": "f", "contribution": 0.25, "en": 'Réason "q"', "id": "Alasan"}] if r >= 0 else []
        for r in rank
    ]
    return ScoreBatch(
        as_of="2026-06-30",
        model_version="7",
        cases_total=10_000,
        person_ids=[f"P{i:07d}" for i in range(n)],
        status=status,
        score=np.where(rank >= 0, rng.random(n), np.nan),
        rank=rank,
        percentile=np.where(rank >= 0, rng.random(n) * 100, np.nan),
        reasons=why if reasons else None,
        scored=int((rank >= 0).sum()),
    )


@pytest.mark.parametrize("reasons", [True, False])
def test_both_writers_agree_and_match_the_schema(reasons: bool) -> None:
    answer = batch(300, reasons)
    small, large = json.loads(answer._results_small()), json.loads(answer._results_large())
    assert len(small) == len(large) == 300
    for a, b in zip(small, large, strict=True):
        assert a.keys() == b.keys()
        assert a["person_id"] == b["person_id"] and a["status"] == b["status"] and a["rank"] == b["rank"]
        for key in ("score", "percentile"):
            assert (a[key] is None and b[key] is None) or a[key] == pytest.approx(b[key], abs=1e-9)
        assert a.get("reasons") == b.get("reasons")
    parsed = ScoreResponse.model_validate_json(answer.to_json())
    assert parsed.scored + parsed.not_scored == 300
    assert all((r.score is None) == (r.status.value != "scored") for r in parsed.results)
    assert {r.status.value for r in parsed.results} == {"scored", "unknown_person", "not_a_case"}


def test_to_json_picks_the_writer_by_size_and_keeps_request_order() -> None:
    for n in (5, 1_000):
        parsed = ScoreResponse.model_validate_json(batch(n, True).to_json())
        assert [r.person_id for r in parsed.results] == [f"P{i:07d}" for i in range(n)]
