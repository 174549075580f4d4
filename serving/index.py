"""The service's index page at `/`: what the API is, where the page and the schema are.

BentoML's own index page embeds a third-party tag manager and links to the
internet, and its OpenAPI document's description is a row of badge images from
third-party sites. This middleware answers `GET /` (and `HEAD /`) with a page of
our own (`serving/page/api.html`) that loads only files of this service: Swagger
UI from BentoML's bundled copy, with no validator badge and no "try it out"
console. It answers `/docs.json` with BentoML's document rewritten as Timpora's
(`serving.openapi`: title, package and model version, description, the bearer key
scheme and the refusals), the model version read per request, since it can change
while the service runs. Every other request passes through.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from serving.openapi import api_version, package_version, timpora_openapi

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

INDEX_HTML = Path(__file__).resolve().parent / "page" / "api.html"
OPENAPI_PATH = "/docs.json"


class IndexPage:
    """ASGI middleware: `/` is Timpora's own self-contained API page, not BentoML's."""

    def __init__(
        self, app: App, page: Path = INDEX_HTML, model_version: Callable[[], str | None] | None = None
    ) -> None:
        self.app = app
        self.body = page.read_bytes()
        self.model_version = model_version  # the version served now, None before the model is loaded
        self.package_version = package_version()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope.get("type") == "http" else None
        if path == OPENAPI_PATH:
            await self._openapi(scope, receive, send)
            return
        if path != "/":
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await _send(
                send, 405, b"method not allowed\n", b"text/plain; charset=utf-8", [(b"allow", b"GET, HEAD")]
            )
            return
        body = self.body if scope.get("method") == "GET" else b""
        await _send(send, 200, body, b"text/html; charset=utf-8", [], length=len(self.body))

    async def _openapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """BentoML's OpenAPI document as Timpora's, with the version of the model served now."""
        model = self.model_version() if self.model_version is not None else None
        version = api_version(self.package_version, model)
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await _finish(send, start, b"".join(chunks), version)
            else:
                await send(message)

        await self.app(scope, receive, capture)


async def _finish(send: Send, start: Message, body: bytes, version: str) -> None:
    if start.get("status") == 200:
        with contextlib.suppress(ValueError, AttributeError):  # not the document expected: pass it on
            body = json.dumps(timpora_openapi(json.loads(body), version)).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send(
    send: Send,
    status: int,
    body: bytes,
    media_type: bytes,
    extra: list[tuple[bytes, bytes]],
    length: int | None = None,
) -> None:
    headers = [
        (b"content-type", media_type),
        (b"content-length", str(len(body) if length is None else length).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
