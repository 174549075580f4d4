"""The service's index page at `/`: Timpora's own, and nothing loaded from outside the service.

BentoML's default index page embeds a third-party tag manager and links to the
internet; `serving.index.IndexPage` replaces it. Checked over HTTP and in Chromium.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_page_browser import CHROMIUM, CHROMIUM_ARGS

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


def test_index_is_timporas_page_with_no_outside_reference(live_service: Any) -> None:
    answer = httpx.get(live_service.url + "/", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "Timpora scoring API" in answer.text
    assert "googletagmanager" not in answer.text and "github.com" not in answer.text
    assert not EXTERNAL.search(answer.text), EXTERNAL.findall(answer.text)
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    spec = httpx.get(live_service.url + "/docs.json", timeout=10).json()
    assert "Bearer" in spec["info"]["description"]
    assert "http" not in spec["info"]["description"], spec["info"]["description"]  # no badges from elsewhere
    assert "bentoml.com" not in json.dumps(spec["info"]), spec["info"]
    assert {"/score", "/explain", "/inspection_list"} <= set(spec["paths"])
    head = httpx.head(live_service.url + "/", timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert httpx.post(live_service.url + "/", timeout=10).status_code == 405


@pytest.mark.slow
def test_index_page_renders_the_reference_in_chromium_without_leaving_the_origin(live_service: Any) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    url = live_service.url.rstrip("/")
    requested: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(url + "/")
            page.wait_for_selector(".opblock", timeout=30_000)  # Swagger UI drew the operations
            operations = page.eval_on_selector_all(
                ".opblock-summary-path", "els => els.map(e => e.textContent)"
            )
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        finally:
            browser.close()
    assert {"/score", "/explain", "/inspection_list"} <= {
        op.strip().replace("\u200b", "") for op in operations
    }
    outside = [u for u in requested if not (u.startswith(url + "/") or u.startswith("data:"))]
    assert requested and not outside, outside
    assert any(u.endswith("/static_content/swagger-ui-bundle.js") for u in requested)
    assert not problems, problems  # a CSP refusal shows up here as a console error
    assert all(link.startswith(url + "/") for link in links if not link.startswith("#")), links


def test_index_page_file_names_only_files_the_service_has() -> None:
    page = (Path(__file__).parents[1] / "serving" / "page" / "api.html").read_text()
    own = re.findall(r"""(?:src|href)="\./ui/([^"]+)\"""", page)
    assert own and all((Path(__file__).parents[1] / "serving" / "page" / name).exists() for name in own)
