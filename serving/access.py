"""Who may call what: API keys by role, checked before a request reaches an endpoint.

An ASGI middleware in front of the BentoML app. For the protected paths it
reads `Authorization: Bearer <key>`, answers 401 without a valid key and 403
when the key's role may not call the path, and otherwise puts the key in the
request state (`request.state.api_key`) for the audit log. It also bounds the
request body (413) and accepts only JSON bodies (415), so an oversize or
multipart body never reaches BentoML's parsers. Health,
metrics, the OpenAPI document and the page's static files stay public; the page
holds no data until a key unlocks the endpoints.

The JSON body of a protected POST is checked strictly against the endpoint's
input model (`serving.request_check`: not JSON, not an object, a key given twice,
an unknown field, a value of the wrong type) and refused with 400, the field and
a message, before BentoML parses it; the service log gets one INFO line with the
endpoint and the field, never a value.

Every refusal (400 from that check, 401, 403, 413, 415, and 503 when the keys
file cannot be read) is written to the audit log, if one is given: the key id
when the token names one (never the token), endpoint, status, reason and the
caller's address, at most `refusal_limit` lines per address a minute
(`serving.request_log.RefusalLimiter`). So is any other answer of 400 or more
to a protected path that the endpoint did not audit itself (`mark_audited`):
BentoML's own refusals and 500s. An unreadable keys file answers a generic 503;
its path and the parse error go to the service log only.

`/metrics` is public, for analysts' keys only, or for loopback callers only
(`metrics_access`, from `ServingSettings.metrics_access`).
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel

from serving.keys import ApiKey, KeyStore, KeyStoreError, Role, token_key_id
from serving.request_check import check_body
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
METRICS_PATH = "/metrics"
MetricsAccess = Literal["public", "analyst", "loopback"]  # as ServingSettings.metrics_access declares
STATE_KEY = "api_key"
REFUSAL_LIMIT = 20  # refusal lines per caller address a minute, then one "suppressed" line
KEY_STORE_UNAVAILABLE = "the service cannot check API keys at the moment; try again later"
logger = logging.getLogger("timpora.serving.access")
_AUDITED: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("timpora_audited", default=None)


def mark_audited() -> None:
    """Record that the endpoint wrote the request's audit line (the middleware then writes none).

    The flag lives in a context variable the middleware sets per request; worker threads
    that run the endpoint copy the context, and share the flag's list.
    """
    flag = _AUDITED.get()
    if flag is not None:
        flag[0] = True


def is_loopback(scope: Scope) -> bool:
    """True if the caller's address is a loopback address (127.0.0.0/8, ::1)."""
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:  # not an IP address (e.g. a Unix socket peer name)
        return False


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
        input_models: Mapping[str, type[BaseModel]] | None = None,
        metrics_access: MetricsAccess = "loopback",
    ) -> None:
        self.app = app
        self.keys = KeyStore(keys_file)
        self.max_body_bytes = max_body_bytes
        self.audit = AuditLog(audit_log) if audit_log is not None else None
        self.limiter = RefusalLimiter(limit=refusal_limit)
        self.input_models = dict(input_models or {})  # path -> the endpoint's input model
        if metrics_access not in get_args(MetricsAccess):
            choices = ", ".join(get_args(MetricsAccess))
            raise ValueError(f"metrics_access must be one of {choices}, not {metrics_access!r}")
        self.metrics_access = metrics_access

    def roles_for(self, scope: Scope) -> frozenset[Role] | None:
        """The roles that may call the request's path; None if it is public to this caller."""
        path = str(scope.get("path", ""))
        if path == METRICS_PATH and self.metrics_access == "analyst":
            return frozenset({Role.ANALYST})
        return allowed_roles(path)

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
        event = "refused" if status < 500 else "failed"
        record: dict[str, object] = {
            "event": event if verdict == "log" else "refusals_suppressed",
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
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") == METRICS_PATH and self.metrics_access == "loopback" and not is_loopback(scope):
            self._refused(scope, 403, "metrics from a non-loopback address", None)
            await _send_json(send, 403, {"error": "/metrics answers loopback callers only"}, [])
            return
        allowed = self.roles_for(scope)
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
            await self._audited_call(scope, receive, send, token, key)
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
        model = self.input_models.get(str(scope.get("path", "")))
        refusal = check_body(body, model) if model is not None else None
        if refusal is not None:
            logger.info("refused %s: 400, %s", scope.get("path", ""), refusal.reason)
            self._refused(scope, 400, refusal.reason, token, key)
            await _send_json(send, 400, refusal.answer(), [])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: disconnect notices pass through
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._audited_call(scope, replay, send, token, key)

    async def _audited_call(
        self, scope: Scope, receive: Receive, send: Send, token: str | None, key: ApiKey
    ) -> None:
        """Call the app; audit an answer of 400 or more (or an exception) the endpoint did not audit."""
        status = [0]
        flag = [False]

        async def send_status(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status[0] = int(message.get("status", 0))
            await send(message)

        reset = _AUDITED.set(flag)
        try:
            await self.app(scope, receive, send_status)
        except Exception:
            if not flag[0]:
                self._refused(scope, 500, "server error", token, key)
            raise
        finally:
            _AUDITED.reset(reset)
        if status[0] >= 400 and not flag[0]:
            reason = "server error" if status[0] == 500 else f"answered {status[0]} by the service"
            self._refused(scope, status[0], reason, token, key)

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
