"""Bounded `/metrics`: the `endpoint` label of BentoML's request metrics takes a fixed set of values.

BentoML labels its request counters and histograms with the raw request path, so
every random path a scanner tries adds series to `/metrics` for as long as the
service runs (3,000 such paths grew it from 1 MB to 16 MB). `path_label` maps a
path to one of the service's routes, `/lists/{list_id}` or `/ui/*` for the paths
under a prefix, and `UNMATCHED` for everything else.

BentoML offers no option for this, and its metrics middleware runs before any
middleware a service adds, so `install()` replaces the class BentoML builds it
from with `GroupedPathMetrics`, a subclass that shows it the label and hands the
real path on to the rest of the app unchanged. Call `install()` before the app is
built (serving/service.py does, at import).
"""

from __future__ import annotations

from typing import Any

from bentoml._internal.server.http import instruments

from serving.access import ENDPOINT_ROLES, Receive, Scope, Send

UNMATCHED = "/(unmatched)"
PUBLIC_PATHS = frozenset(
    {"/", "/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/schema.json", "/ui", "/docs"}
)
PREFIX_LABELS = {  # paths under a prefix share one label
    "/lists/": "/lists/{list_id}",
    "/ui/": "/ui/*",
    "/assets/": "/assets/*",  # BentoML's own index page assets
}
KNOWN_PATHS = frozenset(ENDPOINT_ROLES) | PUBLIC_PATHS
ORIGINAL_PATH = "timpora.original_path"  # scope key: the path before it was replaced by its label


def path_label(path: str) -> str:
    """The metrics label of a request path: the path of a known route, its prefix's label, or UNMATCHED."""
    if path in KNOWN_PATHS:
        return path
    if path.startswith("/lists/") and path.endswith("/outcomes_template"):
        return "/lists/{list_id}/outcomes_template"
    return next((label for prefix, label in PREFIX_LABELS.items() if path.startswith(prefix)), UNMATCHED)


class _RestorePath:
    """Put the real path back into the scope before the rest of the app routes the request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if ORIGINAL_PATH in scope:
            original = scope[ORIGINAL_PATH]
            scope = {k: v for k, v in scope.items() if k != ORIGINAL_PATH}
            scope["path"] = original
        await self.app(scope, receive, send)


class GroupedPathMetrics(instruments.RunnerTrafficMetricsMiddleware):  # type: ignore[misc]
    """BentoML's traffic metrics, labelled by `path_label` instead of the raw path."""

    def __init__(self, app: Any, **options: Any) -> None:
        super().__init__(_RestorePath(app), **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":
            path = str(scope.get("path", ""))
            label = path_label(path)
            if label != path:
                scope = {**scope, "path": label, ORIGINAL_PATH: path}
        await super().__call__(scope, receive, send)


def install() -> None:
    """Make BentoML build its request metrics middleware from `GroupedPathMetrics` (idempotent)."""
    instruments.RunnerTrafficMetricsMiddleware = GroupedPathMetrics  # type: ignore[misc,assignment]
