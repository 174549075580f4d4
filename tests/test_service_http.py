"""The scoring service over real HTTP: a `timpora serve` subprocess (fixture `live_service`) and httpx.

Every endpoint, every role, every class of bad input; the service's scores
equal `timpora rank`'s for the same model and date; the audit log records each
scoring call without readable person ids.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import LiveService

from serving.keys import KeyStore
from serving.schemas import ExplainResponse, InspectionListResponse, ListOptions, ModelInfo, ScoreResponse

pytestmark = pytest.mark.slow

ENDPOINTS = {  # path -> (method, a valid body)
    "/score": ("POST", {"person_ids": ["P0000001"]}),
    "/explain": ("POST", {"person_id": "P0000001"}),
    "/inspection_list": ("POST", {"k": 5}),
    "/list_options": ("GET", None),
    "/model": ("GET", None),
}
ALLOWED = {
    "system": {"/score", "/explain"},
    "supervisor": {"/explain", "/inspection_list", "/list_options"},
    "analyst": set(ENDPOINTS),
}


def call(
    service: LiveService, path: str, body: object = None, role: str | None = "analyst", **kw: object
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {service.keys[role]}"} if role else {}
    method = "GET" if path.startswith("/lists/") else ENDPOINTS.get(path, ("POST", None))[0]
    if method == "GET":
        return httpx.get(service.url + path, headers=headers, timeout=60)
    return httpx.post(service.url + path, json=body, headers=headers, timeout=60, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ranked(live_service: LiveService) -> pd.DataFrame:
    """The whole ranked list of the latest date as the service sees it (reasons off)."""
    options = ListOptions.model_validate(call(live_service, "/list_options").json())
    listing = call(live_service, "/inspection_list", {"k": 1000, "exploration_share": 0})
    rows = InspectionListResponse.model_validate(listing.json()).rows
    assert options.model_version == live_service.model_version
    return pd.DataFrame([r.model_dump() for r in rows])


def some_case(ranked: pd.DataFrame, i: int = 0) -> str:
    return str(ranked["person_id"].iloc[i])


def test_health_metrics_and_openapi_stay_public(live_service: LiveService) -> None:
    for path in ("/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/ui/"):
        assert httpx.get(live_service.url + path, timeout=10).status_code == 200, path
    paths = httpx.get(live_service.url + "/docs.json", timeout=10).json()["paths"]
    assert set(ENDPOINTS) <= set(paths)


def valid_body(path: str, ranked: pd.DataFrame) -> object:
    return {"/score": {"person_ids": [some_case(ranked)]}, "/explain": {"person_id": some_case(ranked)}}.get(
        path, ENDPOINTS[path][1]
    )


@pytest.mark.parametrize("role", ["system", "supervisor", "analyst"])
def test_each_role_reaches_exactly_its_endpoints(live_service: LiveService, ranked, role: str) -> None:  # type: ignore[no-untyped-def]
    for path in ENDPOINTS:
        response = call(live_service, path, valid_body(path, ranked), role=role)
        expected = 200 if path in ALLOWED[role] else 403
        assert response.status_code == expected, (role, path, response.text)
        if expected == 403:
            assert role in response.json()["error"]


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_no_key_or_a_wrong_key_is_401(live_service: LiveService, path: str) -> None:
    method, body = ENDPOINTS[path]
    for headers in ({}, {"Authorization": "Bearer tpk_00000000_nope"}, {"Authorization": "Basic abc"}):
        response = httpx.request(method, live_service.url + path, json=body, headers=headers, timeout=30)
        assert response.status_code == 401, (path, headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "key" in response.json()["error"]


def test_a_revoked_key_is_refused_without_a_restart(live_service: LiveService, ranked) -> None:  # type: ignore[no-untyped-def]
    store = KeyStore(live_service.keys_path)
    record, token = store.create("system", "to-revoke")
    body = {"person_ids": [some_case(ranked)]}
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.post(live_service.url + "/score", json=body, headers=headers, timeout=30).status_code == 200
    store.revoke(record.key_id)
    assert httpx.post(live_service.url + "/score", json=body, headers=headers, timeout=30).status_code == 401


def test_score_reports_each_id_in_request_order(live_service: LiveService, ranked) -> None:  # type: ignore[no-untyped-def]
    persons = pd.read_parquet(live_service.data_dir / "persons.parquet")["person_id"].astype(str).tolist()
    sweep = call(live_service, "/score", {"person_ids": persons[:3000], "reasons": False}).json()["results"]
    not_a_case = next(r["person_id"] for r in sweep if r["status"] == "not_a_case")
    ids = [some_case(ranked, 3), "NOBODY-123", not_a_case, some_case(ranked, 0)]
    response = call(live_service, "/score", {"person_ids": ids}, role="system")
    assert response.status_code == 200, response.text
    result = ScoreResponse.model_validate(response.json())
    assert [r.person_id for r in result.results] == ids
    assert [r.status.value for r in result.results] == ["scored", "unknown_person", "not_a_case", "scored"]
    assert result.model_version == live_service.model_version
    assert (result.scored, result.not_scored) == (2, 2)
    top = result.results[3]
    assert top.rank == 1 and top.percentile == 100.0 and top.reasons
    assert all(r.contribution > 0 and r.en and r.id for r in top.reasons)
    assert result.results[1].score is None and result.results[1].reasons == []


def test_score_takes_10000_ids_in_one_request(live_service: LiveService) -> None:
    persons = pd.read_parquet(live_service.data_dir / "persons.parquet")["person_id"].astype(str).tolist()
    ids = (persons * 2)[:10_000]
    response = call(live_service, "/score", {"person_ids": ids, "reasons": False}, role="system")
    assert response.status_code == 200, response.text[:500]
    result = ScoreResponse.model_validate(response.json())
    assert len(result.results) == 10_000 and result.scored > 1_000
    scored = [r for r in result.results if r.status.value == "scored"]
    assert all(r.score is not None and 0 < r.score < 1 and r.rank is not None for r in scored)
    assert all(r.reasons == [] for r in result.results)  # reasons off


def test_explain_groups_every_model_feature_by_family(live_service: LiveService, ranked) -> None:  # type: ignore[no-untyped-def]
    person = some_case(ranked, 2)
    response = call(live_service, "/explain", {"person_id": person}, role="supervisor")
    assert response.status_code == 200, response.text
    result = ExplainResponse.model_validate(response.json())
    features = [f for family in result.families for f in family.features]
    info = ModelInfo.model_validate(call(live_service, "/model").json())
    assert len(features) == len({f.name for f in features}) > 20
    assert {f.name for f in features} >= {r.feature for r in result.reasons}
    for family in result.families:
        assert family.contribution == pytest.approx(sum(f.contribution for f in family.features))
        assert family.en and family.id
    # SHAP additivity: base value plus every contribution is the model's margin for this case
    margin = result.base_value + sum(f.contribution for f in features)
    assert result.score == pytest.approx(_calibrated(live_service, margin), abs=1e-9)
    assert result.rank == ranked.set_index("person_id").loc[person, "rank"]
    assert info.version == result.model_version


def _calibrated(service: LiveService, margin: float) -> float:
    """The served score from a margin, through the served model's own calibration."""
    code = (
        "from models.mlflow_store import load_risk_model; from serving.settings import load_service_settings;"
        "import numpy as np; m, _ = load_risk_model(load_service_settings().tracking);"
        f"print(repr(float(m.probability(np.array([{margin!r}]))[0])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=service.env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def test_explain_unknown_person_is_404_naming_the_field(live_service: LiveService) -> None:
    response = call(live_service, "/explain", {"person_id": "NOBODY"}, role="system")
    assert response.status_code == 404
    assert response.json()["field"] == "person_id" and "NOBODY" in response.json()["error"]


def test_inspection_list_mixes_model_picks_and_boundary_exploration_draws(
    live_service: LiveService, ranked: pd.DataFrame
) -> None:
    body = {"k": 50, "exploration_share": 0.2}
    first = InspectionListResponse.model_validate(
        call(live_service, "/inspection_list", body, "supervisor").json()
    )
    again = InspectionListResponse.model_validate(
        call(live_service, "/inspection_list", body, "analyst").json()
    )
    assert (first.n_model, first.n_exploration) == (40, 10)
    assert again.list_id == first.list_id and again.exploration_seed == first.exploration_seed  # committed
    assert [r.person_id for r in first.rows] == [r.person_id for r in again.rows]
    assert first.status == "committed" and first.exploration_design["kind"] == "boundary"
    assert re.fullmatch(r"L-\d{4}-\d{2}-\d{2}-[0-9a-f]{8}", first.list_id)
    model_rows = first.rows[:40]
    assert [r.rank for r in model_rows] == list(range(1, 41))
    assert all(r.selection.value == "MODEL" and r.propensity == 1.0 for r in model_rows)
    strata = {s.name: s for s in first.strata}
    assert (strata["boundary"].first_rank, strata["boundary"].last_rank) == (41, 200)
    assert strata["boundary"].draws + strata["uniform"].draws == 10
    for row in first.rows[40:]:
        assert row.selection.value == "EXPLORATION" and row.rank > 40
        assert row.propensity == pytest.approx(strata[row.stratum].probability)
    assert all(r.reasons for r in first.rows if r.score > 0.05)
    uniform = InspectionListResponse.model_validate(
        call(live_service, "/inspection_list", {**body, "exploration_design": "uniform"}, "supervisor").json()
    )
    assert uniform.list_id != first.list_id and [s.name for s in uniform.strata] == ["model", "uniform"]
    assert all(r.propensity == pytest.approx(10 / (uniform.cases_eligible - 40)) for r in uniform.rows[40:])


def test_inspection_list_filters_by_district_and_permit_type(live_service: LiveService, ranked) -> None:  # type: ignore[no-untyped-def]
    district = str(ranked["district"].dropna().iloc[0])
    permit = str(ranked["permit_type"].dropna().iloc[0])
    body = {"k": 30, "district": district[:2], "permit_types": [permit], "exploration_share": 0}
    result = InspectionListResponse.model_validate(
        call(live_service, "/inspection_list", body, "supervisor").json()
    )
    assert result.rows and result.cases_eligible < len(ranked) * 10
    assert all(
        r.district and r.district.startswith(district[:2]) and r.permit_type == permit for r in result.rows
    )
    assert result.filters.district == district[:2] and result.filters.permit_types == [permit]
    assert [r.rank for r in result.rows] == sorted(r.rank for r in result.rows)


def test_model_info_names_the_version_alias_and_metrics(live_service: LiveService) -> None:
    info = ModelInfo.model_validate(call(live_service, "/model").json())
    assert info.version == live_service.model_version and info.alias == "champion"
    assert "champion" in info.aliases
    assert info.metrics and all(isinstance(v, float) for v in info.metrics.values())
    assert set(info.trained_on) >= {"train_first", "train_last", "test_date"}
    assert info.horizon_days == 90 and info.cases_latest > 0


def test_every_answer_carries_the_security_headers(live_service: LiveService) -> None:
    """The page, a scoring answer and a refusal: CSP from this origin only, no framing, no sniffing,
    no referrer; answers outside the page's static files are never cached (they carry person data)."""
    page = httpx.get(f"{live_service.url}/ui/", timeout=30)
    scored = call(live_service, "/score", {"person_ids": ["P0000001"]}, "system")
    refused = call(live_service, "/score", {"person_ids": ["P0000001"]}, None)
    assert (page.status_code, scored.status_code, refused.status_code) == (200, 200, 401)
    for response in (page, scored, refused):
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "http" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert scored.headers["cache-control"] == "no-store" and refused.headers["cache-control"] == "no-store"
    assert page.headers.get("cache-control") != "no-store"  # the page's own files may be cached


def test_cli_and_api_refuse_the_same_date(live_service: LiveService) -> None:
    """One rule for an as-of date: after the data's last date, `timpora rank` exits 2 and /score is a 400,
    both with the same sentence."""
    info = ModelInfo.model_validate(call(live_service, "/model", {}, "analyst").json())
    after = (dt.date.fromisoformat(info.data_last_date) + dt.timedelta(days=200)).isoformat()
    timpora = str(Path(sys.executable).parent / "timpora")
    done = subprocess.run(
        [timpora, "rank", str(live_service.data_dir), "--as-of", after],
        env=live_service.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout[-500:] + done.stderr[-1500:]
    refused = call(live_service, "/score", {"person_ids": ["P0000001"], "as_of": after}, "system")
    assert refused.status_code == 400 and refused.json()["field"] == "as_of"
    sentence = refused.json()["error"]
    assert sentence in " ".join(done.stderr.split())


def test_service_scores_equal_timpora_rank(live_service: LiveService, ranked, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "rank.csv"
    command = [
        str(Path(sys.executable).parent / "timpora"),
        "rank",
        str(live_service.data_dir),
        "--top",
        "50",
    ]
    subprocess.run([*command, "--out", str(out)], env=live_service.env, check=True, capture_output=True)
    with out.open() as handle:
        batch = list(csv.DictReader(handle))
    ids = [row["person_id"] for row in batch]
    served = ScoreResponse.model_validate(call(live_service, "/score", {"person_ids": ids}, "system").json())
    for row, case in zip(batch, served.results, strict=True):
        assert case.person_id == row["person_id"]
        assert case.score == pytest.approx(float(row["score"]), rel=1e-9)
        assert case.rank == int(row["rank"])
        assert row["reasons_en"] == "; ".join(r.en for r in case.reasons)
        assert row["model_version"] == served.model_version
    assert ids == ranked["person_id"].head(50).tolist()


BAD_INPUT = [
    ("/score", {}, "person_ids"),
    ("/score", {"person_ids": "P0000001"}, "person_ids"),
    ("/score", {"person_ids": []}, "person_ids"),
    ("/score", {"person_ids": [""]}, "person_ids"),
    ("/score", {"person_ids": [1, 2]}, "person_ids"),
    ("/score", {"person_ids": ["P1"] * 10_001}, "person_ids"),
    ("/score", {"person_ids": ["P1"], "as_of": "30/06/2026"}, "as_of"),
    ("/score", {"person_ids": ["P1"], "as_of": "2026-02-30"}, "as_of"),
    ("/score", {"person_ids": ["P1"], "as_of": 20260630}, "as_of"),
    ("/score", {"person_ids": ["P1"], "reasons": "maybe"}, "reasons"),
    ("/explain", {"person_id": None}, "person_id"),
    ("/explain", {"person_id": "x" * 65}, "person_id"),
    ("/inspection_list", {"k": -5}, "k"),
    ("/inspection_list", {"k": 0}, "k"),
    ("/inspection_list", {"k": 10**9}, "k"),
    ("/inspection_list", {"k": "fifty"}, "k"),
    ("/inspection_list", {"exploration_share": 0.9}, "exploration_share"),
    ("/inspection_list", {"exploration_share": -0.1}, "exploration_share"),
    ("/inspection_list", {"permit_types": "ITAS_WORK"}, "permit_types"),
    ("/inspection_list", {"seed": -1}, "seed"),
    ("/inspection_list", {"district": ""}, "district"),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD_INPUT)
def test_bad_input_is_400_naming_the_field(
    live_service: LiveService, path: str, body: object, field: str
) -> None:
    response = call(live_service, path, body)
    assert response.status_code == 400, response.text[:300]
    assert field in {str(part) for error in response.json()["detail"] for part in error["loc"]}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/score", {"person_ids": ["P1"], "as_of": "1990-01-01"}),
        ("/inspection_list", {"as_of": "2099-01-01"}),
    ],
)
def test_a_date_outside_the_data_is_400_naming_as_of(
    live_service: LiveService, path: str, body: object
) -> None:
    response = call(live_service, path, body)
    assert response.status_code == 400
    assert response.json()["field"] == "as_of" and "between" in response.json()["error"]


@pytest.mark.parametrize(
    "content", [b"not json", b"[1, 2]", b'{"person_ids": ["a"', b"\xff\xfe", b"null", b'"text"']
)
def test_non_json_bodies_are_400(live_service: LiveService, content: bytes) -> None:
    headers = {"Authorization": f"Bearer {live_service.keys['analyst']}", "Content-Type": "application/json"}
    response = httpx.post(live_service.url + "/score", content=content, headers=headers, timeout=30)
    assert response.status_code == 400, response.text


def test_oversize_body_is_413_and_the_server_keeps_serving(live_service: LiveService, ranked) -> None:  # type: ignore[no-untyped-def]
    big = json.dumps({"person_ids": ["P" * 60] * 40_000}).encode()  # about 2.6 MB
    headers = {"Authorization": f"Bearer {live_service.keys['system']}", "Content-Type": "application/json"}
    response = httpx.post(live_service.url + "/score", content=big, headers=headers, timeout=60)
    assert response.status_code == 413 and "larger than" in response.json()["error"]
    ok = call(live_service, "/score", {"person_ids": [some_case(ranked)]}, role="system")
    assert ok.status_code == 200


def test_audit_log_records_every_scoring_call_without_readable_ids(live_service: LiveService, ranked) -> None:  # type: ignore[no-untyped-def]
    def records() -> list[dict[str, object]]:
        return [json.loads(line) for line in live_service.audit_path.read_text().split("\n") if line]

    before = len(records())
    ids = [some_case(ranked, i) for i in range(7)]
    call(live_service, "/score", {"person_ids": ids}, role="system")
    call(live_service, "/explain", {"person_id": ids[0]}, role="supervisor")
    listing = call(live_service, "/inspection_list", {"k": 10}, role="supervisor").json()
    new = records()[before:]
    assert [r["endpoint"] for r in new] == ["/score", "/explain", "/inspection_list"]
    assert [r["role"] for r in new] == ["system", "supervisor", "supervisor"]
    assert [r["key_label"] for r in new] == ["test-system", "test-supervisor", "test-supervisor"]
    assert all(r["model_version"] == live_service.model_version and r["status"] == 200 for r in new)
    assert new[0]["n_requested"] == 7 and new[0]["n_cases"] == 7
    assert new[2]["list_id"] == listing["list_id"]
    exploration = new[2]["exploration"]
    assert isinstance(exploration, dict) and exploration["seed"] == listing["exploration_seed"]
    assert exploration["n_drawn"] == 1 and exploration["kind"] == "boundary"
    text = live_service.audit_path.read_text()
    assert not any(person in text for person in ids)  # counts and hashes only


def test_timpora_audit_tail_shows_the_calls(live_service: LiveService) -> None:
    timpora = str(Path(sys.executable).parent / "timpora")
    out = subprocess.run(
        [timpora, "audit", "tail", "-n", "5", "--audit-log", str(live_service.audit_path)],
        env=live_service.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "/score" in out.stdout or "/inspection_list" in out.stdout


# Committed lists: one list per request, re-drawn only by an analyst with a reason, with their outcomes.


def test_a_seed_is_refused_unless_an_analyst_redraws_with_a_reason(live_service: LiveService) -> None:
    refused = [
        ("supervisor", {"k": 12, "seed": 3}, "seed"),
        ("supervisor", {"k": 12, "seed": 3, "redraw_reason": "want another list"}, "seed"),
        ("supervisor", {"k": 12, "redraw_reason": "want another list"}, "redraw_reason"),
        ("analyst", {"k": 12, "seed": 3}, "redraw_reason"),
    ]
    for role, body, field in refused:
        response = call(live_service, "/inspection_list", body, role)
        assert response.status_code == 400, (role, body, response.text)
        assert response.json()["field"] == field and "re-draw" in response.json()["error"]


def test_an_analyst_redraw_supersedes_the_list_and_is_recorded(live_service: LiveService) -> None:
    body = {"k": 37, "exploration_share": 0.3}
    first = call(live_service, "/inspection_list", body, "supervisor").json()
    reason = "team reassigned to the port this week"
    redrawn = call(live_service, "/inspection_list", {**body, "seed": 99, "redraw_reason": reason}, "analyst")
    assert redrawn.status_code == 200, redrawn.text
    second = InspectionListResponse.model_validate(redrawn.json())
    assert second.list_id == first["list_id"] + "-r1" and second.replaces == first["list_id"]
    assert second.exploration_seed == 99 and second.redraw_reason == reason
    old = call(live_service, f"/lists/{first['list_id']}", role="supervisor").json()
    assert old["status"] == "superseded" and old["superseded_by"] == second.list_id
    current = call(live_service, "/inspection_list", body, "supervisor").json()
    assert current["list_id"] == second.list_id  # the request now returns the re-drawn list
    records = [json.loads(line) for line in live_service.audit_path.read_text().splitlines() if line]
    [audit] = [r for r in records if r.get("list_id") == second.list_id and r.get("redraw")]
    assert audit["redraw"] == {"reason": reason, "replaces": first["list_id"]} and audit["role"] == "analyst"


def test_a_committed_list_is_shown_with_its_outcomes_and_template(live_service: LiveService) -> None:
    listed = call(live_service, "/inspection_list", {"k": 8}, "supervisor").json()
    path = f"/lists/{listed['list_id']}"
    shown = call(live_service, path, role="supervisor")
    assert shown.status_code == 200, shown.text
    result = InspectionListResponse.model_validate(shown.json())
    assert [r.person_id for r in result.rows] == [r["person_id"] for r in listed["rows"]]
    assert result.outcomes is not None and result.outcomes.listed == 8
    assert (result.outcomes.visited, result.outcomes.found, result.outcomes.not_visited) == (0, 0, 0)
    assert call(live_service, path, role="system").status_code == 403
    assert httpx.get(live_service.url + path, timeout=30).status_code == 401
    missing = call(live_service, "/lists/L-2020-01-01-00000000", role="analyst")
    assert missing.status_code == 404 and missing.json()["field"] == "list_id"
    template = call(live_service, path + "/outcomes_template", role="supervisor")
    assert template.status_code == 200 and template.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(template.text.splitlines()))
    assert [r["person_id"] for r in rows] == [r.person_id for r in result.rows]
    assert {r["trigger"] for r in rows} == {"LIST"} and {r["list_id"] for r in rows} == {result.list_id}
    assert [float(r["selection_propensity"]) for r in rows] == [r.propensity for r in result.rows]
