"""A deadline for a request's headers: a connection that sends none in time is closed.

uvicorn (under BentoML) times out an idle keep-alive connection only after a
response, and a byte received cancels even that timer. A connection that is
opened and then sends nothing, or sends a request's headers a byte at a time,
is kept open for ever: 100 idle sockets stayed open, each holding a file
descriptor (a slow-loris attack). uvicorn has no header timeout and BentoML
passes no protocol options through, so this module wraps the two HTTP protocol
classes uvicorn may pick (httptools, h11): whenever a connection waits for a
request (when it opens, and after each response), a timer starts; if it fires
while no request's headers have been read since, the connection is closed.
A request whose headers arrived is never cut: its body and its answer run
under the service's request timeout.

`install_header_timeout` runs when the service module is imported in the
worker, before uvicorn accepts the first connection.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

logger = logging.getLogger("timpora.serving.slow_clients")
_PROTOCOLS = (
    ("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol"),
    ("uvicorn.protocols.http.h11_impl", "H11Protocol"),
)
_INSTALLED = "_timpora_header_timeout"


def _waiting_for_request(protocol: Any) -> bool:
    """True when the connection has no request in progress (none yet, or the last one answered)."""
    cycle = getattr(protocol, "cycle", None)
    return cycle is None or bool(getattr(cycle, "response_complete", False))


def _arm(protocol: Any, seconds: float) -> None:
    timer: asyncio.TimerHandle | None = getattr(protocol, "_timpora_header_timer", None)
    if timer is not None:
        timer.cancel()
    cycle = getattr(protocol, "cycle", None)

    def expire() -> None:
        transport = getattr(protocol, "transport", None)
        if transport is None or transport.is_closing():
            return
        if getattr(protocol, "cycle", None) is cycle and _waiting_for_request(protocol):
            logger.info("closing a connection that sent no complete request headers within %g s", seconds)
            transport.close()

    protocol._timpora_header_timer = protocol.loop.call_later(seconds, expire)


def install_header_timeout(seconds: float) -> list[str]:
    """Wrap uvicorn's HTTP protocols so a connection waiting for headers longer than `seconds` is closed.

    Returns the protocol classes wrapped (those importable here). Idempotent; 0 or less does nothing.
    """
    if seconds <= 0:
        return []
    wrapped: list[str] = []
    for module_name, class_name in _PROTOCOLS:
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):  # httptools is optional for uvicorn
            continue
        if getattr(cls, _INSTALLED, None) is not None:
            setattr(cls, _INSTALLED, seconds)
            wrapped.append(class_name)
            continue
        made, completed, lost = cls.connection_made, cls.on_response_complete, cls.connection_lost

        def connection_made(self: Any, transport: Any, _made: Any = made, _cls: Any = cls) -> None:
            _made(self, transport)
            _arm(self, getattr(_cls, _INSTALLED))

        def on_response_complete(self: Any, _completed: Any = completed, _cls: Any = cls) -> None:
            _completed(self)
            if not self.transport.is_closing():
                _arm(self, getattr(_cls, _INSTALLED))

        def connection_lost(self: Any, exc: Exception | None, _lost: Any = lost) -> None:
            timer = getattr(self, "_timpora_header_timer", None)
            if timer is not None:
                timer.cancel()
            _lost(self, exc)

        cls.connection_made, cls.on_response_complete = connection_made, on_response_complete
        cls.connection_lost = connection_lost
        setattr(cls, _INSTALLED, seconds)
        wrapped.append(class_name)
    return wrapped
