"""The API's face: `/docs.json` names Timpora, its versions, the bearer key and the refusals.

Against the real server (`live_service`) for what a partner sees, and in process
for the rewrite itself (a pure function) and for the model version read per request.
"""

from __future__ import annotations

import asyncio
import copy
import json
from importlib import metadata
from typing import Any

import httpx
from conftest import LiveService

from serving.access import allowed_roles
from serving.index import IndexPage, Message
from serving.openapi import timpora_openapi

REFUSALS = {"401", "403", "404"}
BODY_REFUSALS = {"413", "415"}


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def test_docs_json_is_timporas_with_versions_bearer_auth_and_refusals(live_service: LiveService) -> None:
    spec = httpx.get(live_service.url + "/docs.json", timeout=10).json()
    info = spec["info"]
    assert info["title"] == "Timpora scoring API"
    assert info["version"] == f"{metadata.version('timpora')} (model v{live_service.model_version})"
    assert "Bearer" in info["description"] and "contact" not in info
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and set(error["properties"]) == {"error", "field"}
    assert error["properties"]["field"]["nullable"] is True

    protected = [(p, m, op) for p, m, op in _operations(spec) if allowed_roles(p) is not None]
    public = [(p, m, op) for p, m, op in _operations(spec) if allowed_roles(p) is None]
    assert {p for p, _, _ in protected} >= {
        "/score",
        "/explain",
        "/inspection_list",
        "/lists/{list_id}",
        "/lists/{list_id}/outcomes_template",
        "/list_options",
        "/model",
    }
    assert {p for p, _, _ in public} >= {"/healthz", "/readyz", "/metrics"}
    for path, method, op in protected:
        assert op["security"] == [{"bearerAuth": []}], (path, method)
        wanted = REFUSALS | (BODY_REFUSALS if method == "post" else set())
        assert wanted <= set(op["responses"]), (path, method, sorted(op["responses"]))
        if method != "post":
            assert not BODY_REFUSALS & set(op["responses"]), (path, method)
        for status in wanted:
            answer = op["responses"][status]
            assert answer["description"]
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
    for path, method, op in public:
        assert "security" not in op and not REFUSALS & set(op["responses"]), (path, method)
    assert "security" not in spec  # no document-wide requirement: health stays public

    # what it documents is what the service answers: a 401 and a 403 in that error shape
    refused = httpx.post(live_service.url + "/score", json={"person_ids": ["P1"]}, timeout=10)
    assert refused.status_code == 401 and isinstance(refused.json()["error"], str)
    wrong_role = httpx.get(
        live_service.url + "/model",
        headers={"Authorization": f"Bearer {live_service.keys['supervisor']}"},
        timeout=10,
    )
    assert wrong_role.status_code == 403 and isinstance(wrong_role.json()["error"], str)


BENTOML_LIKE: dict[str, Any] = {
    "openapi": "3.0.2",
    "info": {"title": "timpora-inspection-priority", "version": "None", "contact": {"name": "BentoML"}},
    "paths": {
        "/healthz": {"get": {"responses": {"200": {"description": "ok"}}}},
        "/score": {"post": {"responses": {200: {"description": "ok"}, 404: {"description": "Not Found"}}}},
        "/lists/{list_id}": {"get": {"responses": {"200": {"description": "ok"}}}},
    },
    "components": {"schemas": {}},
}


def test_rewrite_is_pure_and_replaces_bentomls_int_keyed_refusals() -> None:
    given = copy.deepcopy(BENTOML_LIKE)
    spec = timpora_openapi(given, "9.9.9 (model v4)")
    assert given == BENTOML_LIKE  # the document given is left as it was
    assert spec["info"] == {
        "title": "Timpora scoring API",
        "version": "9.9.9 (model v4)",
        "description": spec["info"]["description"],
    }
    score = spec["paths"]["/score"]["post"]
    assert set(score["responses"]) == {200, "401", "403", "404", "413", "415"}  # BentoML's int 404 gone
    detail = spec["paths"]["/lists/{list_id}"]["get"]
    assert set(detail["responses"]) == {"200", "401", "403", "404"}
    assert detail["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/healthz"]["get"] == BENTOML_LIKE["paths"]["/healthz"]["get"]
    json.dumps(spec)  # still serialisable as it is served


def test_docs_json_names_the_model_version_served_at_request_time() -> None:
    served = ["3"]
    body = json.dumps(BENTOML_LIKE | {"paths": {}}).encode()

    async def bentoml_app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})
        await send({"type": "http.response.body", "body": body})

    page = IndexPage(bentoml_app, model_version=lambda: served[0])

    def fetch() -> dict[str, Any]:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        scope = {"type": "http", "method": "GET", "path": "/docs.json", "headers": []}
        asyncio.run(page(scope, receive, send))
        payload = sent[1]["body"]
        assert dict(sent[0]["headers"])[b"content-length"] == str(len(payload)).encode()
        result: dict[str, Any] = json.loads(payload)
        return result

    assert fetch()["info"]["version"].endswith("(model v3)")
    served[0] = "4"  # the champion moved while the service runs
    assert fetch()["info"]["version"].endswith("(model v4)")
