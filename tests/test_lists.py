"""The committed-list store: one list per request key, re-draws recorded, LIST rows checked against it."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.lists import (
    CASE_COLUMNS,
    COMMITTED,
    LISTS_DIR,
    SUPERSEDED,
    TEMPLATE_COLUMNS,
    UnknownListError,
    check_list_rows,
    commit_list,
    find_committed,
    list_outcomes,
    outcomes_template,
    read_list,
    read_lists,
    record_not_visited,
    supersede,
)
from models.listing import ExplorationDesign, draw_inspection_list

AS_OF = dt.date(2025, 6, 30)
SCOPE = {"district": "36", "permit_types": ["ITAS_WORK", "VISIT"]}
DESIGN = ExplorationDesign(share=0.2)  # k = 10: 8 model picks, 1 boundary draw (ranks 9-40), 1 uniform


def ranked(n: int = 200) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "score": np.linspace(0.9, 0.01, n),
            "rank": np.arange(1, n + 1) * 2,  # overall ranks differ from places among the eligible
            "percentile": np.linspace(100, 0.5, n),
            "district": ["3672"] * n,
            "permit_type": ["ITAS_WORK"] * n,
        },
        index=pd.Index([f"P{i:04d}" for i in range(n)], name="person_id"),
    )


def commit(data: Path, seed: int = 1, reason: str | None = None, **changes: object):  # type: ignore[no-untyped-def]
    table = ranked()
    draw = draw_inspection_list(table, 10, DESIGN, seed)
    fields: dict[str, object] = {
        "as_of": AS_OF,
        "scope": SCOPE,
        "k": 10,
        "model_version": "3",
        "design": DESIGN,
        "seed": seed,
        "redraw_reason": reason,
        "ranked": table,
        **changes,
    }
    return commit_list(data, draw, **fields)  # type: ignore[arg-type]


def test_a_committed_list_holds_every_eligible_case_and_its_draw(tmp_path: Path) -> None:
    committed = commit(tmp_path)
    assert re.fullmatch(r"L-2025-06-30-[0-9a-f]{8}", committed.list_id)
    assert committed.status == COMMITTED and committed.superseded_by is None
    assert (committed.k, committed.model_version, committed.seed) == (10, "3", 1)
    assert committed.design == DESIGN.to_dict() and committed.as_of == AS_OF
    cases = committed.cases
    assert list(cases.columns) == list(CASE_COLUMNS) and len(cases) == 200
    assert cases["inclusion_probability"].sum() == pytest.approx(10)
    listed = committed.listed
    assert listed["list_rank"].tolist() == list(range(1, 11))
    assert listed["selection"].tolist() == ["MODEL"] * 8 + ["EXPLORATION"] * 2
    assert listed["stratum"].tolist() == ["model"] * 8 + ["boundary", "uniform"]
    assert np.allclose(listed["inclusion_probability"], [1] * 8 + [1 / 32, 1 / 160])
    assert (cases.loc[~cases["listed"], "selection"] == "").all()
    assert cases["rank"].tolist() == list(range(2, 401, 2)) and cases["score"].iloc[0] == 0.9
    assert [s["name"] for s in committed.strata] == ["model", "boundary", "uniform"]
    assert (committed.n_model, committed.n_exploration, committed.n_eligible) == (8, 2, 200)


def test_the_same_request_returns_the_committed_list(tmp_path: Path) -> None:
    first = commit(tmp_path, seed=1)
    again = commit(tmp_path, seed=2)  # another draw for the same key: the committed list wins
    assert again.list_id == first.list_id and again.seed == 1
    assert again.listed["person_id"].tolist() == first.listed["person_id"].tolist()
    found = find_committed(
        tmp_path, AS_OF, {"permit_types": ["VISIT", "ITAS_WORK"], "district": "36"}, 10, DESIGN, "3"
    )
    assert found is not None and found.list_id == first.list_id  # scope order does not matter
    assert len(list((tmp_path / LISTS_DIR).glob("L-*.json"))) == 1
    for other in ({"k": 11}, {"model_version": "4"}, {"as_of": AS_OF + dt.timedelta(days=1)}):
        key = {"as_of": AS_OF, "scope": SCOPE, "k": 10, "design": DESIGN, "model_version": "3", **other}
        assert find_committed(tmp_path, **key) is None  # type: ignore[arg-type]
    assert find_committed(tmp_path, AS_OF, SCOPE, 10, ExplorationDesign.uniform(0.2), "3") is None


def test_a_redraw_with_a_reason_supersedes_and_keeps_the_earlier_list(tmp_path: Path) -> None:
    first = commit(tmp_path, seed=1)
    second = commit(tmp_path, seed=2, reason="district office closed for a week", created_by="analyst-1")
    assert second.list_id == f"{first.list_id}-r1" and second.replaces == first.list_id
    assert second.redraw_reason == "district office closed for a week" and second.created_by == "analyst-1"
    old = read_list(tmp_path, first.list_id)
    assert old.status == SUPERSEDED and old.superseded_by == second.list_id
    assert old.supersede_reason == "district office closed for a week"
    assert find_committed(tmp_path, AS_OF, SCOPE, 10, DESIGN, "3").list_id == second.list_id  # type: ignore[union-attr]
    assert [c.list_id for c in read_lists(tmp_path)] == [second.list_id]
    assert [c.list_id for c in read_lists(tmp_path, include_superseded=True)] == [
        first.list_id,
        second.list_id,
    ]
    third = commit(tmp_path, seed=3, reason="again")
    assert third.list_id == f"{first.list_id}-r2" and read_list(tmp_path, second.list_id).status == SUPERSEDED
    with pytest.raises(ValueError, match="reason"):
        commit(tmp_path, seed=4, reason="  ")


def test_supersede_without_a_replacement_is_recorded(tmp_path: Path) -> None:
    committed = commit(tmp_path)
    withdrawn = supersede(tmp_path, committed.list_id, reason="wrong data export")
    assert withdrawn.status == SUPERSEDED and withdrawn.supersede_reason == "wrong data export"
    assert find_committed(tmp_path, AS_OF, SCOPE, 10, DESIGN, "3") is None
    with pytest.raises(ValueError, match="already superseded"):
        supersede(tmp_path, committed.list_id, reason="twice")


def test_an_unknown_list_id_is_a_clear_error(tmp_path: Path) -> None:
    commit(tmp_path)
    for bad in ("L-2025-06-30-00000000", "../x", "nope"):
        with pytest.raises(UnknownListError, match="no committed list"):
            read_list(tmp_path, bad)


def test_the_draw_and_the_stated_design_or_seed_must_agree(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="design"):
        commit(tmp_path, design=ExplorationDesign.uniform(0.2))
    with pytest.raises(ValueError, match="seed"):
        commit_list(
            tmp_path, draw_inspection_list(ranked(), 10, DESIGN, 1), as_of=AS_OF, scope=SCOPE, k=10,
            model_version="3", design=DESIGN, seed=5,
        )  # fmt: skip


def list_rows(committed) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    listed = committed.listed
    frame = pd.DataFrame(
        {
            "inspection_id": [f"I{i}" for i in range(len(listed))],
            "person_id": listed["person_id"],
            "trigger": "LIST",
            "list_id": committed.list_id,
            "selection_propensity": listed["inclusion_probability"],
        }
    )
    return frame


def test_list_rows_that_match_their_list_pass(tmp_path: Path) -> None:
    committed = commit(tmp_path)
    rows = list_rows(committed)
    other = pd.DataFrame({"inspection_id": ["X"], "person_id": ["P0150"], "trigger": ["RANDOM"]})
    assert check_list_rows(tmp_path, pd.concat([rows, other], ignore_index=True)) == []


def test_list_rows_that_do_not_match_are_named(tmp_path: Path) -> None:
    committed = commit(tmp_path)
    rows = list_rows(committed)
    rows.loc[9, "selection_propensity"] = 0.5  # an exploration pick with the wrong propensity
    rows.loc[3, "person_id"] = "P0199"  # eligible but not listed (unless drawn)
    if "P0199" in committed.listed["person_id"].tolist():
        rows.loc[3, "person_id"] = "P0198"
    rows.loc[5, "list_id"] = "L-2025-06-30-deadbeef"
    rows.loc[6, "list_id"] = None
    issues = {i.rule: i for i in check_list_rows(tmp_path, rows)}
    assert set(issues) == {"list_propensity_mismatch", "not_on_list", "unknown_list", "missing_list_id"}
    assert issues["list_propensity_mismatch"].column == "selection_propensity"
    assert (
        issues["list_propensity_mismatch"].rows == (10,)
        and "0.5" in issues["list_propensity_mismatch"].message
    )
    assert (issues["not_on_list"].column, issues["not_on_list"].rows) == ("person_id", (4,))
    assert (issues["unknown_list"].column, issues["unknown_list"].rows) == ("list_id", (6,))
    assert issues["missing_list_id"].rows == (7,)
    assert all(i.table == "inspections" and i.severity == "error" for i in issues.values())


def test_rows_of_a_superseded_list_are_refused(tmp_path: Path) -> None:
    first = commit(tmp_path)
    commit(tmp_path, seed=2, reason="redo")
    issues = check_list_rows(tmp_path, list_rows(first))
    assert [i.rule for i in issues] == ["superseded_list"] and issues[0].count == 10


def test_not_visited_cases_are_recorded_once_and_must_be_on_the_list(tmp_path: Path) -> None:
    committed = commit(tmp_path)
    persons = committed.listed["person_id"].tolist()
    entries = pd.DataFrame({"person_id": persons[:2], "reason": ["moved away", "address not found"]})
    after = record_not_visited(tmp_path, committed.list_id, entries)
    assert after.not_visited[["person_id", "reason"]].values.tolist() == [
        [persons[0], "moved away"],
        [persons[1], "address not found"],
    ]
    events = (tmp_path / LISTS_DIR / "events.jsonl").read_text().splitlines()
    record_not_visited(tmp_path, committed.list_id, entries)  # idempotent: nothing new to record
    assert (tmp_path / LISTS_DIR / "events.jsonl").read_text().splitlines() == events
    assert json.loads(events[-1])["person_ids"] == persons[:2]
    with pytest.raises(ValueError, match="not_on_list"):
        record_not_visited(
            tmp_path, committed.list_id, pd.DataFrame({"person_id": ["P0197"], "reason": ["x"]})
        )


def test_outcomes_count_visits_findings_and_unvisited(tmp_path: Path) -> None:
    committed = commit(tmp_path)
    persons = committed.listed["person_id"].tolist()
    record_not_visited(
        tmp_path, committed.list_id, pd.DataFrame({"person_id": persons[-1:], "reason": ["gone"]})
    )
    inspections = list_rows(read_list(tmp_path, committed.list_id)).iloc[:4]
    inspections = inspections.assign(violation_found=[True, False, True, False])
    outcomes = list_outcomes(read_lists(tmp_path), inspections)
    assert outcomes.to_dict("records") == [
        {"list_id": committed.list_id, "listed": 10, "visited": 4, "found": 2, "not_visited": 1}
    ]


def test_the_outcomes_template_prefills_every_listed_case(tmp_path: Path) -> None:
    committed = commit(tmp_path)
    persons = committed.listed["person_id"].tolist()
    permits = pd.DataFrame(
        {
            "person_id": [persons[0], persons[0], persons[1]],
            "sponsor_id": ["S1", "S2", None],
            "issue_date": pd.to_datetime(["2024-01-01", "2025-01-01", "2025-01-01"]),
        }
    )
    template = outcomes_template(committed, permits)
    assert list(template.columns) == list(TEMPLATE_COLUMNS) and len(template) == 10
    assert template["inspection_id"].tolist() == [f"{committed.list_id}-{i:03d}" for i in range(1, 11)]
    assert template["person_id"].tolist() == persons
    assert template["sponsor_id"].iloc[0] == "S2" and pd.isna(template["sponsor_id"].iloc[1])
    assert (template["trigger"] == "LIST").all() and (template["list_id"] == committed.list_id).all()
    assert np.allclose(template["selection_propensity"], committed.listed["inclusion_probability"])
    assert template[["inspection_date", "violation_found", "visited"]].isna().all().all()
    assert outcomes_template(committed, permits).equals(template)  # deterministic


def test_concurrent_requests_for_one_key_commit_one_list(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        committed = list(pool.map(lambda seed: commit(tmp_path, seed=seed), range(8)))
    assert len({c.list_id for c in committed}) == 1 and len({c.seed for c in committed}) == 1
    assert len(list((tmp_path / LISTS_DIR).glob("L-*.json"))) == 1
    assert not list((tmp_path / LISTS_DIR).glob(".tmp-*"))  # no temporary file left behind
