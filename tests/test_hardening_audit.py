"""Issue 13, privacy and security of the audit trail: keyed id digests, private files, refusals logged
(rate-limited), no error details to anonymous callers, no control characters in key labels."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import LiveService

from features.transaction import append_log, log_path
from serving.access import KEY_STORE_UNAVAILABLE, AccessMiddleware
from serving.keys import KeyStore, Role
from serving.request_log import (
    AuditLog,
    AuditSecretError,
    RefusalLimiter,
    hash_ids,
    load_or_create_secret,
    read_secret,
)
from serving.settings import ServiceSettings

# -- 1. the ids in the log are keyed digests ------------------------------------------------------------


def test_id_digest_is_keyed_not_a_plain_sha256(tmp_path: Path) -> None:
    secret = load_or_create_secret(tmp_path / "serving" / "audit.secret")
    other = load_or_create_secret(tmp_path / "other.secret")
    digest = hash_ids(["P0004132"], secret)
    assert digest != hashlib.sha256(b"P0004132").hexdigest()  # not reversible by trying every id
    assert digest == hash_ids(["P0004132"], read_secret(tmp_path / "serving" / "audit.secret"))
    assert digest != hash_ids(["P0004132"], other) and secret != other


def test_secret_file_is_private_stable_and_hex(tmp_path: Path) -> None:
    path = tmp_path / "serving" / "audit.secret"
    old_umask = os.umask(0)  # the mode comes from the code, not from a strict umask
    try:
        secret = load_or_create_secret(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secret) == 32 and path.read_text().strip() == secret.hex()
    assert load_or_create_secret(path) == secret  # created once, then read
    assert [p.name for p in path.parent.iterdir()] == ["audit.secret"]  # no temporary left behind


def test_malformed_secret_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.secret"
    path.write_text("not hex\n")
    with pytest.raises(AuditSecretError, match=str(path)):
        load_or_create_secret(path)


def test_secret_path_is_beside_the_keys_file_unless_set(tmp_path: Path) -> None:
    keys = tmp_path / "k" / "keys.json"
    assert ServiceSettings(home=tmp_path).audit_secret_path == tmp_path.resolve() / "serving" / "audit.secret"
    assert ServiceSettings(keys_file=keys).audit_secret_path == keys.parent / "audit.secret"
    named = tmp_path / "elsewhere.secret"
    assert ServiceSettings(keys_file=keys, audit_secret=named).audit_secret_path == named


def test_live_service_logs_keyed_digests_an_auditor_can_recompute(live_service: LiveService) -> None:
    secret_path = live_service.keys_path.parent / "audit.secret"
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    headers = {"Authorization": f"Bearer {live_service.keys['supervisor']}"}
    listing = httpx.post(live_service.url + "/inspection_list", json={"k": 5}, headers=headers, timeout=60)
    assert listing.status_code == 200, listing.text
    rows = listing.json()["rows"]
    records = [json.loads(line) for line in live_service.audit_path.read_text().splitlines() if line]
    [record] = [r for r in records if r.get("list_id") == listing.json()["list_id"]][-1:]
    assert "ids_sha256" not in record
    ids = [row["person_id"] for row in rows]
    assert record["ids_hmac"] == hash_ids(ids, read_secret(secret_path))
    assert record["ids_hmac"] != hashlib.sha256("\n".join(ids).encode()).hexdigest()
    assert stat.S_IMODE(live_service.audit_path.stat().st_mode) == 0o600


# -- 2. the audit log and the ingest log are private ------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


def test_audit_log_is_created_0600(tmp_path: Path, open_umask: None) -> None:
    log = AuditLog(tmp_path / "serving" / "audit.jsonl")
    log.append({"status": 200})
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_an_older_world_readable_audit_log_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"old": true}\n')
    path.chmod(0o644)
    AuditLog(path).append({"new": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().splitlines()) == 2


def test_ingest_log_is_created_0600(tmp_path: Path, open_umask: None) -> None:
    append_log(tmp_path, '{"event": "ingest"}')
    assert stat.S_IMODE(log_path(tmp_path).stat().st_mode) == 0o600


# -- 3. refused requests are logged, rate-limited per source ------------------------------------------


def _client(source: str) -> httpx.Client:
    """A client whose requests come from another loopback address: its own refusal budget."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30)


def _from(live_service: LiveService, source: str) -> list[dict[str, object]]:
    lines = live_service.audit_path.read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("source") == source]


def test_each_refusal_leaves_one_audit_line(live_service: LiveService) -> None:
    source = "127.0.0.2"
    supervisor = live_service.keys["supervisor"]
    bad_token = "tpk_0123abcd_" + "s3cr3t" * 7
    url = live_service.url
    with _client(source) as client:
        statuses = [
            client.post(url + "/score", json={"person_ids": ["P1"]}).status_code,
            client.post(url + "/score", json={"person_ids": ["P1"]}, headers=_bearer(bad_token)).status_code,
            client.get(url + "/model", headers=_bearer(supervisor)).status_code,
            client.post(
                url + "/explain",
                content=b'{"person_id": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                headers={**_bearer(supervisor), "Content-Type": "application/json"},
            ).status_code,
            client.post(
                url + "/explain", content=b"P1", headers={**_bearer(supervisor), "Content-Type": "text/plain"}
            ).status_code,
        ]
    assert statuses == [401, 401, 403, 413, 415]
    records = _from(live_service, source)
    assert [r["status"] for r in records] == statuses
    assert all(r["event"] == "refused" and r["reason"] for r in records)
    assert [r["endpoint"] for r in records] == ["/score", "/score", "/model", "/explain", "/explain"]
    no_key, bad_key, wrong_role, too_big, not_json = records
    assert no_key["key_id"] is None and no_key["reason"] == "no API key"
    assert bad_key["key_id"] == "k_0123abcd" and bad_key["reason"] == "invalid API key"
    assert wrong_role["role"] == "supervisor" and wrong_role["key_label"] == "test-supervisor"
    assert "larger than" in str(too_big["reason"]) and "JSON" in str(not_json["reason"])
    text = live_service.audit_path.read_text()
    assert "s3cr3t" not in text and supervisor.split("_")[-1] not in text  # no token, ever


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_flood_of_bad_keys_writes_at_most_the_limit_plus_one(live_service: LiveService) -> None:
    source = "127.0.0.3"
    with _client(source) as client:
        for i in range(200):
            response = client.get(live_service.url + "/model", headers=_bearer(f"tpk_{i:08x}_nope"))
            assert response.status_code == 401
    records = _from(live_service, source)
    assert len(records) == 20 + 1
    assert [r["event"] for r in records] == ["refused"] * 20 + ["refusals_suppressed"]


def test_limiter_reports_what_it_left_out_in_the_next_window() -> None:
    now = [0.0]
    limiter = RefusalLimiter(limit=2, window_s=60, clock=lambda: now[0])
    verdicts = [limiter.admit("a") for _ in range(6)]
    assert verdicts == [("log", 0), ("log", 0), ("notice", 0), ("drop", 0), ("drop", 0), ("drop", 0)]
    assert limiter.admit("b") == ("log", 0)  # per source
    now[0] = 61.0
    assert limiter.admit("a") == ("log", 3)  # the three dropped ones are counted, once
    assert limiter.admit("a") == ("log", 0)


def test_limiter_memory_is_bounded() -> None:
    now = [0.0]
    limiter = RefusalLimiter(limit=1, window_s=60, max_sources=3, clock=lambda: now[0])
    assert [limiter.admit(f"s{i}")[0] for i in range(5)] == ["log", "log", "log", "log", "notice"]
    now[0] = 100.0  # the old sources' windows are over: forgotten to make room
    assert limiter.admit("new")[0] == "log"
    assert len(limiter._buckets) <= 3


# -- 4. no error detail to anonymous callers ---------------------------------------------------------


async def _ok_app(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _get(app: AccessMiddleware, path: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


def test_corrupt_keys_file_answers_a_generic_503_and_logs_the_detail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys_file = tmp_path / "secret-place" / "keys.json"
    token = KeyStore(keys_file).create(Role.ANALYST, "a")[1]
    keys_file.write_text('{"version": 1, "keys": [')
    audit = tmp_path / "audit.jsonl"
    app = AccessMiddleware(_ok_app, keys_file=keys_file, max_body_bytes=1000, audit_log=audit)
    with caplog.at_level(logging.ERROR, logger="timpora.serving.access"):
        response = asyncio.run(_get(app, "/model", _bearer(token)))
    assert response.status_code == 503
    assert response.json() == {"error": KEY_STORE_UNAVAILABLE}
    assert "secret-place" not in response.text and "Expecting" not in response.text
    assert str(keys_file) in caplog.text and "corrupt" in caplog.text
    [record] = AuditLog(audit).tail()
    assert record["status"] == 503 and record["reason"] == "key store unreadable"
    assert "secret-place" not in audit.read_text()
