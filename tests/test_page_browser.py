"""The supervisor page in a real browser (Debian's chromium) against a real `timpora serve`.

Signs in with keys of each kind, draws lists, filters by district, opens a case,
switches language, downloads the CSV, and checks the page fetched nothing from
outside the service. Screenshots land in tests/artifacts/ for a human to look at.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
TIMEOUT_MS = 60_000  # the first list of a date scores every case


def _list_options(url: str, key: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{url}/list_options", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)  # type: ignore[no-any-return]


def _reason_lists(page: Any) -> list[list[str]]:
    """The reasons shown per row of the list table, as text."""
    return page.eval_on_selector_all(
        "#list-table tbody tr",
        "rows => rows.map(r => [...r.querySelectorAll('ol.reasons li')].map(li => li.textContent))",
    )


def _load_list(page: Any) -> dict[str, Any]:
    """Click "show list" and return the API's answer the page received."""
    with page.expect_response(lambda r: r.url.endswith("/inspection_list"), timeout=TIMEOUT_MS) as answer:
        page.click("#load-list")
    response = answer.value
    assert response.status == 200, response.text()
    data: dict[str, Any] = response.json()
    page.wait_for_function(
        "n => document.querySelectorAll('#list-table tbody tr').length === n", arg=len(data["rows"])
    )
    return data


@pytest.mark.slow
def test_supervisor_page_in_chromium(live_service: Any) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (it installs Debian's chromium)")
    from playwright.sync_api import expect, sync_playwright

    url = live_service.url.rstrip("/")
    keys = live_service.keys
    options = _list_options(url, keys["supervisor"])
    ARTIFACTS.mkdir(exist_ok=True)
    requested: list[str] = []
    page_errors: list[str] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(f"{url}/ui/")
            expect(page.locator("html")).to_have_attribute("lang", "id")  # Bahasa Indonesia by default

            # Keys: a wrong one, then a role that may not open lists, then a supervisor.
            message = page.locator("#message")
            page.fill("#api-key", "tpk_00000000_not-a-key")
            page.click("#sign-in")
            expect(message).to_have_text("Kunci API tidak valid")
            page.fill("#api-key", keys["system"])
            page.click("#sign-in")
            expect(message).to_have_text("Peran ini tidak boleh membuka daftar")
            expect(page.locator("#workspace")).to_be_hidden()
            page.fill("#api-key", keys["supervisor"])
            page.click("#sign-in")
            expect(page.locator("#workspace")).to_be_visible()
            expect(message).to_be_hidden()
            assert page.evaluate("sessionStorage.getItem('timpora.apiKey')") == keys["supervisor"]
            assert page.evaluate("localStorage.getItem('timpora.apiKey')") is None
            expect(page.locator("#as-of")).to_have_value(options["last_date"])

            # A list of 20 with the model's picks, reasons in Indonesian and the model version.
            page.fill("#k", "20")
            listed = _load_list(page)
            rows = page.locator("#list-table tbody tr")
            expect(rows).to_have_count(20)
            assert page.locator('#list-table tbody tr[data-selection="MODEL"]').count() >= 1
            shown = _reason_lists(page)
            for row, reasons in zip(listed["rows"], shown, strict=True):
                assert reasons == [r["id"] for r in row["reasons"][:3]]
                if row["selection"] == "MODEL":
                    assert reasons and all(text.strip() for text in reasons), row["person_id"]
            expect(page.locator("#list-meta")).to_contain_text(f"Versi model: {options['model_version']}")
            expect(page.locator("#list-meta")).to_contain_text(listed["list_id"])
            expect(page.locator(".note").first).to_contain_text("keputusan tetap di tangan petugas")

            # A district filter: every listed case is in that district.
            code = next(row["district"] for row in listed["rows"] if row["district"])
            page.select_option("#district", code)
            by_district = _load_list(page)
            assert by_district["filters"]["district"] == code and by_district["rows"]
            districts = page.eval_on_selector_all(
                "#list-table tbody tr", "rows => rows.map(r => r.children[4].textContent)"
            )
            assert districts and all(d.startswith(code) for d in districts), districts
            expect(page.locator("#list-meta")).to_contain_text(f"Wilayah: {code}")

            # The case panel: score, families and their features; then close it.
            first = page.locator("#list-table tbody tr").first
            person = first.get_attribute("data-person-id")
            first.get_by_role("button").click()
            panel = page.locator("#case-panel")
            expect(panel).to_be_visible()
            expect(page.locator("#case-title")).to_contain_text(str(person))
            assert panel.locator("section.family").count() >= 1
            assert panel.locator("section.family tbody tr").count() >= 1
            assert panel.locator(".bar").count() == panel.locator("section.family tbody tr").count()
            panel.screenshot(path=str(ARTIFACTS / "case-panel.png"))
            page.click("#case-close")
            expect(panel).to_be_hidden()

            # English: labels and reasons change language; the choice is remembered.
            load = page.locator("#load-list")
            expect(load).to_have_text("Tampilkan daftar")
            page.click("#lang-toggle")
            expect(load).to_have_text("Show list")
            expect(page.locator("#lang-toggle")).to_have_text("Bahasa Indonesia")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            assert page.evaluate("localStorage.getItem('timpora.lang')") == "en"
            shown = _reason_lists(page)
            for row, reasons in zip(by_district["rows"], shown, strict=True):
                assert reasons == [r["en"] for r in row["reasons"][:3]]
            assert any(r["en"] != r["id"] for row in by_district["rows"] for r in row["reasons"])

            # Back to every district, 20 cases, and download the list as CSV.
            page.select_option("#district", "")
            listed = _load_list(page)
            expect(rows).to_have_count(20)
            with page.expect_download() as download_info:
                page.click("#download-csv")
            download = download_info.value
            as_of, list_id = listed["as_of"], listed["list_id"]
            assert download.suggested_filename == f"timpora-list-{as_of}-{list_id[:8]}.csv"
            text = Path(download.path()).read_text(encoding="utf-8")
            records = list(csv.reader(io.StringIO(text, newline="")))
            assert len(records) == 21 and len(text.splitlines()) == 21
            header, body = records[0], records[1:]
            assert header[:5] == ["list_id", "as_of", "model_version", "list_rank", "person_id"]
            assert header[-1] == "reasons"
            table_ids = page.eval_on_selector_all(
                "#list-table tbody tr", "rows => rows.map(r => r.dataset.personId)"
            )
            assert [r[header.index("person_id")] for r in body] == table_ids
            assert {r[header.index("list_id")] for r in body} == {list_id}
            first_reasons = " | ".join(r["en"] for r in listed["rows"][0]["reasons"])
            assert body[0][header.index("reasons")] == first_reasons
            # Cells that a spreadsheet would run as a formula are neutralised; quotes are doubled.
            assert page.evaluate("csvCell('=HYPERLINK(1)')") == "'=HYPERLINK(1)"
            assert page.evaluate("csvCell('-1+2')") == "'-1+2"
            assert page.evaluate("csvCell('a \"b\", c')") == '"a ""b"", c"'

            page.screenshot(path=str(ARTIFACTS / "supervisor-page.png"), full_page=True)

            # Signing out forgets the key.
            page.click("#sign-out")
            expect(page.locator("#login")).to_be_visible()
            assert page.evaluate("sessionStorage.getItem('timpora.apiKey')") is None
        finally:
            browser.close()

    assert not page_errors, page_errors
    outside = [u for u in requested if not (u.startswith(url + "/") or u.startswith(f"blob:{url}/"))]
    assert requested and not outside, outside
    assert any(re.search(r"/ui/app\.js$", u) for u in requested)
