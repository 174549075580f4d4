"""A small Python client for partner systems: typed calls, the key in one place, and retries on 503.

    client = TimporaClient("http://127.0.0.1:3000", key)
    batch = client.score(["P0001550", "P0002001"])          # ScoreResponse
    for case in batch.results:
        print(case.person_id, case.status, case.score, case.rank)

BentoML answers 503 when its queue is full (under a burst of requests); every
Timpora endpoint only reads, so a 503 or a dropped connection is retried with
exponential backoff (by default 3 retries: 0.1, 0.2, 0.4 s). Any other error
status raises `TimporaError` with the server's message.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx

from serving.schemas import ExplainResponse, InspectionListResponse, ListOptions, ModelInfo, ScoreResponse

RETRY_STATUSES = frozenset({502, 503, 504})


class TimporaError(RuntimeError):
    """An answer other than 200: the status and the server's message (which names the field at fault)."""

    def __init__(self, status: int, body: object) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


class TimporaClient:
    """Calls to one Timpora service with one API key."""

    def __init__(
        self, base_url: str, key: str, timeout_s: float = 60.0, retries: int = 3, backoff_s: float = 0.1
    ) -> None:
        self.retries, self.backoff_s = retries, backoff_s
        self.retried = 0  # how many retries this client made, for benchmarks and logs
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=timeout_s
        )

    def __enter__(self) -> TimporaClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """One call, retried on 502/503/504 and on connection errors; raises TimporaError otherwise."""
        for attempt in range(self.retries + 1):
            last_try = attempt == self.retries
            try:
                response = self._http.request(method, path, json=body)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
                if last_try:
                    raise
            else:
                if response.status_code == 200:
                    return response
                if response.status_code not in RETRY_STATUSES or last_try:
                    raise TimporaError(response.status_code, _body(response))
            self.retried += 1
            time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def score(
        self, person_ids: Sequence[str], as_of: str | None = None, reasons: bool = True
    ) -> ScoreResponse:
        body: dict[str, Any] = {"person_ids": list(person_ids), "reasons": reasons}
        if as_of:
            body["as_of"] = as_of
        return ScoreResponse.model_validate_json(self.request("POST", "/score", body).content)

    def explain(self, person_id: str, as_of: str | None = None) -> ExplainResponse:
        body: dict[str, Any] = {"person_id": person_id, **({"as_of": as_of} if as_of else {})}
        return ExplainResponse.model_validate_json(self.request("POST", "/explain", body).content)

    def inspection_list(self, k: int, **filters: Any) -> InspectionListResponse:
        """A list of k cases; filters: as_of, district, permit_types, exploration_share, seed."""
        body = {"k": k, **{name: value for name, value in filters.items() if value is not None}}
        return InspectionListResponse.model_validate_json(
            self.request("POST", "/inspection_list", body).content
        )

    def model(self) -> ModelInfo:
        return ModelInfo.model_validate_json(self.request("GET", "/model").content)

    def list_options(self) -> ListOptions:
        return ListOptions.model_validate_json(self.request("GET", "/list_options").content)


def _body(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return response.text
