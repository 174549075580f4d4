"""Slow clients: a connection that never sends complete request headers is closed (a real service).

Before, 100 idle sockets stayed open for as long as the client liked.
"""

from __future__ import annotations

import socket
import time

import httpx
from conftest import HEADER_TIMEOUT_S, LiveService

N_IDLE = 40


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    return socket.create_connection((host, int(port)), timeout=HEADER_TIMEOUT_S * 4)


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (a read reaches the end of the stream) in time."""
    try:
        while sock.recv(4096):  # the rest of an answer may still be in flight: read past it
            pass
        return True
    except ConnectionResetError:  # the server closed it with unread bytes of ours: a close too
        return True
    except TimeoutError:  # still open
        return False


def test_connections_without_complete_headers_are_closed_and_a_real_request_still_works(
    live_service: LiveService,
) -> None:
    idle = [_connect(live_service.url) for _ in range(N_IDLE)]
    dripping = _connect(live_service.url)
    dripping.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the headers never end
    answered = _connect(live_service.url)
    answered.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = answered.recv(4096)
    assert first.startswith(b"HTTP/1.1 200"), first
    started = time.monotonic()
    try:
        for sock in idle:
            sock.settimeout(max(0.1, started + HEADER_TIMEOUT_S * 3 - time.monotonic()))
        closed = [_closed_by_server(sock) for sock in [*idle, dripping, answered]]
        waited = time.monotonic() - started
        assert all(closed), (
            f"{closed.count(False)} of {len(closed)} connections still open after {waited:.1f} s"
        )
        assert waited >= HEADER_TIMEOUT_S * 0.8  # closed by the deadline, not at once
        assert httpx.get(live_service.url + "/healthz", timeout=10).status_code == 200
    finally:
        for sock in [*idle, dripping, answered]:
            sock.close()
