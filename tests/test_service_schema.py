"""Schemathesis against the service's own OpenAPI document: over 1,000 generated requests, no 5xx.

It generates valid and invalid bodies, wrong content types and methods for
every operation in `/docs.json`, sends them to a real `timpora serve` with an
analyst key (every endpoint open), and records each exchange in a HAR file that
the test reads back, so the request count and the statuses are measured, not
assumed.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import LiveService

pytestmark = pytest.mark.slow

MIN_REQUESTS = 1_000


def test_generated_requests_never_get_a_server_error(live_service: LiveService, tmp_path: Path) -> None:
    har = tmp_path / "schemathesis.har"
    schemathesis = str(Path(sys.executable).parent / "schemathesis")
    command = [
        schemathesis,
        "run",
        f"{live_service.url}/docs.json",
        "--header",
        f"Authorization: Bearer {live_service.keys['analyst']}",
        "--checks",
        "not_a_server_error",
        "--request-timeout",
        "60",
        "--max-examples",
        "900",  # schemathesis ends /score and /explain early (their search space looks exhausted to it)
        "--seed",
        "7",
        "--report",
        "har",
        "--report-har-path",
        str(har),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=480, cwd=tmp_path)  # its cache too
    assert run.returncode == 0, run.stdout[-4000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = collections.Counter(entry["response"]["status"] for entry in entries)
    paths = collections.Counter(entry["request"]["url"].rsplit("/", 1)[-1] for entry in entries)
    assert len(entries) >= MIN_REQUESTS, (len(entries), paths)
    assert not [status for status in statuses if status >= 500], statuses
    assert statuses[400] > 100 and statuses[200] > 100  # both invalid and valid requests were generated
    assert min(paths[p] for p in ("score", "explain")) >= 30 and paths["inspection_list"] > 500
    ready = httpx.get(f"{live_service.url}/readyz", timeout=10)
    assert ready.status_code == 200  # and it still serves
