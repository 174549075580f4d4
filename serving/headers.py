"""Security headers on every answer: the page and the API, refusals included.

- `Content-Security-Policy`: scripts, styles, data and frames from this origin only (the page
  loads nothing from elsewhere; the icon is a `data:` URL), no framing, no other form targets;
- `X-Frame-Options: DENY` and `X-Content-Type-Options: nosniff` for older browsers;
- `Referrer-Policy: no-referrer`: list and case URLs never leave in a Referer header;
- `Cache-Control: no-store` on every answer outside the page's static files: scores, lists and
  explanations carry person data and must not sit in a browser's or a proxy's cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
STATIC_PREFIX = "/ui"
_ALWAYS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class SecurityHeaders:
    """ASGI middleware that adds the headers above to every HTTP response (replacing any already set)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        static = path == STATIC_PREFIX or path.startswith(STATIC_PREFIX + "/")
        added = _ALWAYS if static else (*_ALWAYS, (b"cache-control", b"no-store"))
        names = {name for name, _ in added}

        async def send_with_headers(message: Message) -> None:
            if message.get("type") == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = [*kept, *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)
