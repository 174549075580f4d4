"""Who may call what: API keys by role, checked before a request reaches an endpoint.

An ASGI middleware in front of the BentoML app. For the protected paths it
reads `Authorization: Bearer <key>`, answers 401 without a valid key and 403
when the key's role may not call the path, and otherwise puts the key in the
request state (`request.state.api_key`) for the audit log. It also bounds the
request body (413) and accepts only JSON bodies (415), so an oversize or
multipart body never reaches BentoML's parsers. Health,
metrics, the OpenAPI document and the page's static files stay public; the page
holds no data until a key unlocks the endpoints.

Every refusal (401, 403, 413, 415, and 503 when the keys file cannot be read)
is written to the audit log, if one is given: the key id when the token names
one (never the token), endpoint, status, reason and the caller's address, at
most `refusal_limit` lines per address a minute (`serving.request_log.RefusalLimiter`).
An unreadable keys file answers a generic 503; its path and the parse error go
to the service log only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from serving.keys import ApiKey, KeyStore, KeyStoreError, Role, token_key_id
from serving.request_log import AuditLog, RefusalLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ENDPOINT_ROLES: dict[str, frozenset[Role]] = {
    "/score": frozenset({Role.SYSTEM, Role.ANALYST}),
    "/explain": frozenset({Role.SYSTEM, Role.SUPERVISOR, Role.ANALYST}),
    "/inspection_list": frozenset({Role.SUPERVISOR, Role.ANALYST}),
    "/list_options": frozenset({Role.SUPERVISOR, Role.ANALYST}),
    "/model": frozenset({Role.ANALYST}),
}
PREFIX_ROLES: dict[str, frozenset[Role]] = {  # paths under a prefix, e.g. /lists/<list_id>
    "/lists/": frozenset({Role.SUPERVISOR, Role.ANALYST}),
}
STATE_KEY = "api_key"
REFUSAL_LIMIT = 20  # refusal lines per caller address a minute, then one "suppressed" line
KEY_STORE_UNAVAILABLE = "the service cannot check API keys at the moment; try again later"
logger = logging.getLogger("timpora.serving.access")


def allowed_roles(path: str) -> frozenset[Role] | None:
    """The roles that may call a protected path; None for a public one."""
    exact = ENDPOINT_ROLES.get(path)
    if exact is not None:
        return exact
    return next((roles for prefix, roles in PREFIX_ROLES.items() if path.startswith(prefix)), None)


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    return None


def content_type(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The media type of the Content-Type header without parameters, lower case; None if absent."""
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower() or None
    return None


async def _send_json(
    send: Send, status: int, body: dict[str, object], extra: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class AccessMiddleware:
    """Authenticate, authorise by role, and bound the body of requests to the protected endpoints."""

    def __init__(
        self,
        app: ASGIApp,
        keys_file: Path,
        max_body_bytes: int,
        audit_log: Path | None = None,
        refusal_limit: int = REFUSAL_LIMIT,
    ) -> None:
        self.app = app
        self.keys = KeyStore(keys_file)
        self.max_body_bytes = max_body_bytes
        self.audit = AuditLog(audit_log) if audit_log is not None else None
        self.limiter = RefusalLimiter(limit=refusal_limit)

    def _refused(
        self, scope: Scope, status: int, reason: str, token: str | None, key: ApiKey | None = None
    ) -> None:
        """Write one refusal line to the audit log, unless the caller's address is over its limit."""
        if self.audit is None:
            return
        client = scope.get("client")
        source = str(client[0]) if client else "unknown"
        verdict, suppressed = self.limiter.admit(source)
        if verdict == "drop":
            return
        record: dict[str, object] = {
            "event": "refused" if verdict == "log" else "refusals_suppressed",
            "key_id": key.key_id if key else (token_key_id(token) if token else None),
            "key_label": key.label if key else None,
            "role": key.role.value if key else None,
            "endpoint": str(scope.get("path", ""))[:200],
            "status": status,
            "reason": reason,
            "source": source,
        }
        if verdict == "notice":
            record["reason"] = (
                f"more than {self.limiter.limit} refusals from this source within "
                f"{self.limiter.window_s:g} s: further ones are not logged until the window ends"
            )
        elif suppressed:
            record["suppressed_before"] = suppressed
        try:
            self.audit.append(record)
        except OSError:  # the refusal is answered whether or not it could be logged
            logger.exception("cannot write a refusal to the audit log %s", self.audit.path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed = allowed_roles(scope.get("path", "")) if scope["type"] == "http" else None
        if allowed is None:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope.get("headers", []))
        try:
            key: ApiKey | None = self.keys.authenticate(token) if token else None
        except KeyStoreError as error:  # fail closed; the detail (path, parse error) to the log only
            logger.error("refusing %s: %s", scope.get("path", ""), error)
            self._refused(scope, 503, "key store unreadable", token)
            await _send_json(send, 503, {"error": KEY_STORE_UNAVAILABLE}, [])
            return
        if key is None:
            message = (
                "an API key is required: send 'Authorization: Bearer <key>'"
                if not token
                else "invalid API key"
            )
            self._refused(scope, 401, "no API key" if not token else "invalid API key", token)
            await _send_json(
                send, 401, {"error": message}, [(b"www-authenticate", b'Bearer realm="timpora"')]
            )
            return
        if key.role not in allowed:
            roles = ", ".join(sorted(role.value for role in allowed))
            self._refused(scope, 403, f"role {key.role.value} may not call this endpoint", token, key)
            await _send_json(
                send,
                403,
                {"error": f"role {key.role.value!r} may not call {scope['path']} (allowed: {roles})"},
                [],
            )
            return
        scope.setdefault("state", {})[STATE_KEY] = key
        if scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        media_type = content_type(scope.get("headers", []))
        if media_type not in (None, "application/json"):
            wrong = f"send the body as JSON (Content-Type: application/json), not {media_type}"
            self._refused(scope, 415, "body not JSON", token, key)
            await _send_json(send, 415, {"error": wrong}, [])
            return
        body = await self._read_body(receive)
        if body is None:
            self._refused(scope, 413, f"body larger than {self.max_body_bytes} bytes", token, key)
            await _send_json(
                send, 413, {"error": f"request body larger than {self.max_body_bytes:,} bytes"}, []
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: disconnect notices pass through
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (the rest is not read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)
