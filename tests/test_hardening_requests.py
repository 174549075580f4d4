"""Issue 13, the request path of the running service: strict JSON bodies, answers and logs without
values, every refused or failed request audited once, and a bounded `/metrics` that an operator can close.

Against the shared `live_service` (a real `timpora serve`) where the behaviour is the server's, and
against `AccessMiddleware` with tiny ASGI apps for what the live service cannot be made to do honestly
(a 500, a caller from another host).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, get_args, get_type_hints

import httpx
import pytest
from conftest import LiveService
from pydantic import BaseModel, ValidationError

from serving.access import ENDPOINT_ROLES, PREFIX_ROLES, AccessMiddleware, MetricsAccess, mark_audited
from serving.keys import KeyStore, Role
from serving.metrics_paths import PREFIX_LABELS, UNMATCHED, path_label
from serving.options import ServingSettings
from serving.request_check import check_body
from serving.request_log import AuditLog
from serving.service_log import WITHHELD, RedactValues

SOURCE = "127.0.0.5"  # this module's requests to the live service: their own refusal budget
AUDITED_SOURCE = "127.0.0.6"  # the audit tests' few requests: well under the refusal limit
SECRET_ID = "P0004132XQ"  # a recognisable person id that must appear in no answer and no log


def _client(source: str = SOURCE) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60)


def _post(
    service: LiveService, path: str, content: bytes, role: str = "analyst", source: str = SOURCE
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {service.keys[role]}", "Content-Type": "application/json"}
    with _client(source) as client:
        return client.post(service.url + path, content=content, headers=headers)


def _audit_lines(service: LiveService) -> list[dict[str, Any]]:
    return [json.loads(line) for line in service.audit_path.read_text().splitlines()]


# -- 1. strict input: no coercion, no duplicate keys, no unknown fields ------------------------------------

LOOSE = [  # (path, raw body, the field the answer must name)
    ("/inspection_list", b'{"k": true}', "k"),
    ("/inspection_list", b'{"k": "5"}', "k"),
    ("/inspection_list", b'{"k": 5.0}', "k"),
    ("/inspection_list", b'{"k": 5, "k": 7}', "k"),
    ("/inspection_list", b'{"k": 5, "capacity": 7}', "capacity"),
    ("/inspection_list", b'{"k": 5, "exploration_share": "0.1"}', "exploration_share"),
    ("/inspection_list", b'{"k": 5, "seed": true, "redraw_reason": "because"}', "seed"),
    ("/score", b'{"person_ids": ["P1"], "reasons": 1}', "reasons"),
    ("/score", b'{"person_ids": ["P1"], "reasons": "false"}', "reasons"),
    ("/score", b'{"person_ids": ["P1"], "person_ids": ["P2"]}', "person_ids"),
    ("/score", b'{"person_ids": [1]}', "person_ids"),
    ("/explain", b'{"person_id": "P1", "reasons": true}', "reasons"),
    ("/explain", b'{"person_id": 4132}', "person_id"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("path", "content", "field"), LOOSE)
def test_loose_input_is_a_400_naming_the_field(
    live_service: LiveService, path: str, content: bytes, field: str
) -> None:
    response = _post(live_service, path, content)
    assert response.status_code == 400, response.text[:300]
    answer = response.json()
    assert answer["field"] == field and answer["error"]
    assert "pydantic.dev" not in response.text and "input" not in json.dumps(answer.get("detail", []))


@pytest.mark.slow
@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'"text"', b"null", b'{"k": NaN}', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_a_400(live_service: LiveService, content: bytes) -> None:
    response = _post(live_service, "/inspection_list", content)
    assert response.status_code == 400
    assert response.json()["field"] is None and "JSON" in response.json()["error"]


@pytest.mark.slow
def test_strict_bodies_still_work(live_service: LiveService) -> None:
    """Whole numbers for a float, an empty body for all defaults: what a client sends in good faith."""
    listed = _post(live_service, "/inspection_list", b'{"k": 3, "exploration_share": 0}', role="supervisor")
    assert listed.status_code == 200, listed.text[:300]
    assert _post(live_service, "/inspection_list", b"", role="supervisor").status_code == 200
    person = listed.json()["rows"][0]["person_id"]
    scored = _post(live_service, "/score", json.dumps({"person_ids": [person], "reasons": False}).encode())
    assert scored.status_code == 200 and scored.json()["results"][0].get("reasons", []) == []


@pytest.mark.slow
def test_the_accepted_fields_are_the_endpoints_declared_parameters(live_service: LiveService) -> None:
    """Derived, not listed twice: every field of the OpenAPI request schema is accepted by the check
    (a wrong type names that field, not an unknown one), and a field outside it is unknown."""
    spec = httpx.get(live_service.url + "/docs.json", timeout=10).json()
    posted = {path for path, ops in spec["paths"].items() if "post" in ops and path in ENDPOINT_ROLES}
    assert posted == {"/score", "/explain", "/inspection_list"}
    for path in sorted(posted):
        schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        assert schema.get("additionalProperties") is False, path  # the document says what is enforced
        for name in schema["properties"]:
            answer = _post(live_service, path, json.dumps({name: {"an": "object"}}).encode()).json()
            assert "unknown" not in answer["error"], (path, name, answer)
        unknown = _post(live_service, path, b'{"not_a_field": 1}').json()
        assert unknown["field"] == "not_a_field" and "unknown field" in unknown["error"]


# -- 2 and 3. answers and the server log carry no values and no third-party links -----------------------


@pytest.mark.slow
def test_a_refused_person_id_is_in_neither_the_answer_nor_the_server_log(live_service: LiveService) -> None:
    source = "127.0.0.7"  # its own refusal budget: every refusal below is audited
    log_start = live_service.log_path.stat().st_size
    bodies = [
        ("/explain", {"person_id": [SECRET_ID]}),
        ("/score", {"person_ids": [SECRET_ID, 7]}),
        ("/score", {"person_ids": [SECRET_ID], "as_of": SECRET_ID}),
        ("/score", {"person_ids": [SECRET_ID] * 10_001, "reasons": False}),  # over the limit of ids
    ]
    for path, body in bodies:
        response = _post(live_service, path, json.dumps(body).encode(), source=source)
        assert response.status_code == 400, response.text[:300]
        assert SECRET_ID not in response.text and "pydantic.dev" not in response.text
        assert "input_value" not in response.text
    for content in (b'{"person_id": "P1", "%s": 1}', b'{"person_id": "P1", "x": {"%s": 1, "%s": 2}}'):
        response = _post(live_service, "/explain", content.replace(b"%s", SECRET_ID.encode()), source=source)
        assert response.status_code == 400 and response.json()["field"] == SECRET_ID  # the caller's own key
    with live_service.log_path.open("rb") as f:
        f.seek(log_start)
        log = f.read().decode(errors="replace")
    assert SECRET_ID not in log and "input_value" not in log and "Traceback" not in log
    assert len(re.findall(r"\[INFO\].* refused /(score|explain): 400, schema: ", log)) == len(bodies) + 2
    assert "refused /explain: 400, schema: field person_id" in log  # one line naming the field
    audited = [r for r in _audit_lines(live_service) if r.get("source") == source]
    assert [r["status"] for r in audited] == [400] * (len(bodies) + 2)
    assert SECRET_ID not in live_service.audit_path.read_text()


# -- 4. every refused or failed request is audited once ----------------------------------------------------


@pytest.mark.slow
def test_a_schema_refusal_writes_one_audit_line_with_the_field(live_service: LiveService) -> None:
    before = len(_audit_lines(live_service))
    response = _post(
        live_service, "/inspection_list", b'{"k": true}', role="supervisor", source=AUDITED_SOURCE
    )
    assert response.status_code == 400
    [record] = _audit_lines(live_service)[before:]
    assert record["status"] == 400 and record["reason"] == "schema: field k"
    assert record["endpoint"] == "/inspection_list" and record["role"] == "supervisor"
    assert record["key_id"] and record["event"] == "refused" and record["source"] == AUDITED_SOURCE


@pytest.mark.slow
def test_a_refusal_the_endpoint_audits_is_not_audited_twice(live_service: LiveService) -> None:
    before = len(_audit_lines(live_service))
    response = _post(live_service, "/explain", b'{"person_id": "P-NOBODY"}', source=AUDITED_SOURCE)
    assert response.status_code == 404
    [record] = _audit_lines(live_service)[before:]
    assert record["status"] == 404 and record.get("error_field") == "person_id"


def _app_answering(status: int) -> Callable[..., Awaitable[None]]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def _raising_app(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("boom " + SECRET_ID)


async def _auditing_app(scope: Any, receive: Any, send: Any) -> None:
    mark_audited()  # what serving.service's _audit_key does
    await send({"type": "http.response.start", "status": 422, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


class _Input(BaseModel):
    person_id: str


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    keys_file = tmp_path / "keys.json"
    yield keys_file, KeyStore(keys_file).create(Role.ANALYST, "unit")[1]


def _middleware(app: Any, keys_file: Path, audit: Path, **options: Any) -> AccessMiddleware:
    return AccessMiddleware(
        app,
        keys_file=keys_file,
        max_body_bytes=10_000,
        audit_log=audit,
        input_models={"/explain": _Input},
        **options,
    )


async def _call(
    app: Any, method: str, path: str, token: str | None, client: str = "127.0.0.1"
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(client, 5000))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client_:
        if method == "POST":
            return await client_.post(path, json={"person_id": "P1"}, headers=headers)
        return await client_.get(path, headers=headers)


def test_a_500_or_an_exception_is_audited_once_without_its_message(
    tmp_path: Path, keyed: tuple[Path, str]
) -> None:
    keys_file, token = keyed
    audit = tmp_path / "audit.jsonl"
    answered = asyncio.run(
        _call(_middleware(_app_answering(500), keys_file, audit), "POST", "/explain", token)
    )
    raised = asyncio.run(_call(_middleware(_raising_app, keys_file, audit), "POST", "/explain", token))
    assert answered.status_code == 500 and raised.status_code == 500
    records = AuditLog(audit).tail()
    assert [(r["event"], r["status"], r["reason"], r["endpoint"]) for r in records] == [
        ("failed", 500, "server error", "/explain")
    ] * 2
    assert all(r["role"] == "analyst" and r["key_label"] == "unit" for r in records)
    assert SECRET_ID not in audit.read_text()


def test_an_error_the_endpoint_audited_gets_no_second_line(tmp_path: Path, keyed: tuple[Path, str]) -> None:
    keys_file, token = keyed
    audit = tmp_path / "audit.jsonl"
    response = asyncio.run(_call(_middleware(_auditing_app, keys_file, audit), "GET", "/model", token))
    assert response.status_code == 422
    assert AuditLog(audit).tail() == []
    other = asyncio.run(_call(_middleware(_app_answering(422), keys_file, audit), "GET", "/model", token))
    assert other.status_code == 422
    assert [r["reason"] for r in AuditLog(audit).tail()] == ["answered 422 by the service"]


def test_bentomls_own_failure_log_keeps_the_traceback_but_no_values(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactValues())
    try:
        _Input.model_validate({"person_id": [SECRET_ID]})
    except ValidationError:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.error("Exception on %s [%s]", "/explain", "POST", exc_info=True)
    try:
        dict[str, int]()[SECRET_ID]
    except KeyError:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.error("Exception on %s [%s]", "/score", "POST", exc_info=True)
    refused, failed = caplog.records
    assert refused.levelno == logging.INFO and "person_id" in refused.getMessage() and not refused.exc_info
    assert failed.levelno == logging.ERROR
    text = caplog.text
    assert SECRET_ID not in text and "input_value" not in text
    assert "Traceback" in text and "KeyError " + WITHHELD in text and Path(__file__).name in text


# -- 5. /metrics: bounded labels, access chosen by the operator -------------------------------------------


@pytest.mark.slow
def test_random_paths_do_not_grow_metrics(live_service: LiveService) -> None:
    """200 random 404 paths share one label: /metrics grows by a few series at most, none of them named."""
    url = live_service.url
    with _client() as client:
        client.get(url + f"/probe-{secrets.token_hex(6)}")  # the unmatched label's series exist from here on
        before = client.get(url + "/metrics")
        paths = [f"/probe-{secrets.token_hex(6)}/{i}" for i in range(200)]
        assert all(client.get(url + path).status_code == 404 for path in paths)
        after = client.get(url + "/metrics")
    assert before.status_code == after.status_code == 200
    assert len(after.content) - len(before.content) < 2_000  # counts change, series do not
    assert not any(path in after.text for path in paths)
    assert UNMATCHED in after.text


def test_every_protected_prefix_has_a_metrics_label() -> None:
    assert set(PREFIX_ROLES) <= set(PREFIX_LABELS)
    assert path_label("/lists/L-2026-06-30-1a2b") == "/lists/{list_id}"
    assert path_label("/lists/L-2026-06-30-1a2b/outcomes_template") == "/lists/{list_id}/outcomes_template"
    assert path_label("/score") == "/score" and path_label("/../../etc/passwd") == UNMATCHED


def test_metrics_access_loopback_or_analyst(tmp_path: Path, keyed: tuple[Path, str]) -> None:
    keys_file, token = keyed
    audit = tmp_path / "audit.jsonl"
    app = _app_answering(200)
    loopback = _middleware(app, keys_file, audit)  # the default
    assert asyncio.run(_call(loopback, "GET", "/metrics", None)).status_code == 200
    assert asyncio.run(_call(loopback, "GET", "/metrics", None, client="10.1.2.3")).status_code == 403
    analyst = _middleware(app, keys_file, audit, metrics_access="analyst")
    assert asyncio.run(_call(analyst, "GET", "/metrics", None)).status_code == 401
    assert asyncio.run(_call(analyst, "GET", "/metrics", token, client="10.1.2.3")).status_code == 200
    public = _middleware(app, keys_file, audit, metrics_access="public")
    assert asyncio.run(_call(public, "GET", "/metrics", None, client="10.1.2.3")).status_code == 200
    with pytest.raises(ValueError, match="metrics_access"):
        _middleware(app, keys_file, audit, metrics_access="everyone")
    setting = get_type_hints(ServingSettings)["metrics_access"]
    assert get_args(setting) == get_args(MetricsAccess) and ServingSettings().metrics_access == "loopback"


def test_check_body_reads_an_empty_body_as_no_fields() -> None:
    class Optional_(BaseModel):
        k: int = 5

    assert check_body(b"", Optional_) is None
    refusal = check_body(b'{"k": 1, "k": 2}', Optional_)
    assert refusal is not None and refusal.reason == "schema: duplicate key k"
