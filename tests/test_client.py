"""The Python client: typed calls against the real service, and its retry on 503 against a real socket."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import LiveService

from serving.client import TimporaClient, TimporaError


@pytest.mark.slow
def test_client_scores_explains_and_lists(live_service: LiveService) -> None:
    with TimporaClient(live_service.url, live_service.keys["analyst"]) as client:
        listed = client.inspection_list(5, exploration_share=0.0)
        ids = [row.person_id for row in listed.rows]
        scored = client.score([*ids, "NOBODY"])
        assert [c.rank for c in scored.results[:5]] == [1, 2, 3, 4, 5]
        assert scored.results[-1].status.value == "unknown_person"
        assert client.explain(ids[0]).rank == 1
        assert client.model().version == live_service.model_version
        assert client.list_options().last_date == listed.as_of
        with pytest.raises(TimporaError) as refused:
            client.inspection_list(0)
        assert refused.value.status == 400 and client.retried == 0
    with (
        TimporaClient(live_service.url, live_service.keys["system"]) as client,
        pytest.raises(TimporaError) as no,
    ):
        client.inspection_list(5)
    assert no.value.status == 403


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first `failures` requests, then 200 with a ScoreResponse."""

    failures = 2
    seen = 0

    def do_POST(self) -> None:
        type(self).seen += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).seen <= type(self).failures:
            self.send_response(503)
            body = b'{"error": "queue full"}'
        else:
            self.send_response(200)
            body = json.dumps(
                {
                    "as_of": "2026-06-30",
                    "model_version": "1",
                    "cases_total": 0,
                    "scored": 0,
                    "not_scored": 1,
                    "results": [{"person_id": "X", "status": "unknown_person"}],
                }
            ).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def flaky_server() -> Iterator[str]:
    _Flaky.seen = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_503_is_retried_with_backoff_then_succeeds(flaky_server: str) -> None:
    _Flaky.failures = 2
    with TimporaClient(flaky_server, "key", backoff_s=0.01) as client:
        assert client.score(["X"]).results[0].person_id == "X"
        assert client.retried == 2 and _Flaky.seen == 3


def test_503_beyond_the_retries_raises(flaky_server: str) -> None:
    _Flaky.failures = 10
    with (
        TimporaClient(flaky_server, "key", retries=1, backoff_s=0.01) as client,
        pytest.raises(TimporaError) as error,
    ):
        client.score(["X"])
    assert error.value.status == 503 and _Flaky.seen == 2
