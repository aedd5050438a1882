"""The public transparency report in a real browser (Debian's Chromium via Playwright; issue 18): after
a person opts out on a served demo world, `/transparency` — no sign in — shows partners and purposes,
people per region with an SVG chart whose bars carry the same numbers as the signed JSON, the
revocation delivered with its latency and an acknowledgement pending; the JSON's Ed25519 signature
verifies with the published key (checked here with `cryptography` directly) and fails once a number is
changed. A screenshot goes to $DATALEASE_TEST_ARTIFACTS/screenshots/transparency.png."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from test_pages_browser import _walkthrough_user as walkthrough_user

from conftest import ARTIFACTS, Site, run

pytestmark = pytest.mark.slow


def _canonical(document: dict[str, Any]) -> bytes:
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _verifies(document: dict[str, Any], key: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(key)).verify(
            base64.b64decode(document["signature"]["value"]), _canonical(document)
        )
    except InvalidSignature:
        return False
    return True


def _included(document: dict[str, Any]) -> int:
    return sum(int(row["included"]) for row in document["people_by_region"].values())


def test_the_public_report_in_chromium(site: Site, browser: Any) -> None:
    year = f"{datetime.now(UTC):%Y}"
    before = requests.get(site.base + f"/transparency.json?period={year}", timeout=60).json()
    assert before["partners"], "the demo releases to partners this year"
    # Someone included opts out; the server's worker delivers it.
    user = walkthrough_user(site.home)
    done = run(site.home, "consent", "set", str(user), "share_with_partners", "false")
    assert done.returncode == 0, done.stderr
    # Done once every agreement holding the person is revoked: one fewer person included anywhere
    # (a page drawn after only the first agreement's revocation would show other numbers).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        document = requests.get(site.base + f"/transparency.json?period={year}", timeout=60).json()
        if (
            document["revocations"]["delivered"] > before["revocations"]["delivered"]
            and _included(document) == _included(before) - 1
        ):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the opt-out was not delivered everywhere: {document['revocations']}")
    key = requests.get(site.base + "/transparency/key", timeout=30).json()["public_key"]
    assert document["signature"]["public_key"] == key and _verifies(document, key)
    forged = json.loads(json.dumps(document))
    forged["revocations"]["delivered"] += 1
    assert not _verifies(forged, key)
    assert document["acknowledgements"]["pending"] >= 1
    assert document["regulator_orders"] == []
    opted = sum(r["opted_out"] for r in document["people_by_region"].values())
    assert opted >= 1

    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    page.goto(site.base + f"/transparency?period={year}")
    assert page.title().startswith(f"Transparency report {year}")
    bars = page.locator("svg.chart rect[data-series]")
    assert bars.count() >= 3 * len(document["people_by_region"])
    for region, row in document["people_by_region"].items():
        for series in ("users", "included", "opted_out"):
            bar = page.locator(f'svg.chart rect[data-group="{region}"][data-series="{series}"]')
            assert bar.first.get_attribute("data-value") == str(row[series]), (region, series)
    shown = page.locator("#revocations-delivered").inner_text()
    assert int(shown) == document["revocations"]["delivered"]
    box = page.locator("svg.chart").first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 150, box
    directory = ARTIFACTS / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(directory / "transparency.png"), full_page=True)
    assert (directory / "transparency.png").stat().st_size > 10_000
    bad = requests.get(site.base + "/transparency.json?period=2026-13", timeout=30)
    assert bad.status_code == 400 and "period '2026-13'" in bad.json()["message"]
