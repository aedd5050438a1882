"""The walk-through in a real browser (Debian's Chromium driven by Playwright): a user turns data
sharing off → their report shows the withdrawal → the partner's change feed (official client) has
the deletes → the operator's compliance page shows the acknowledgement pending. Screenshots of every
page go to artifacts/screenshots/."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import delta_sharing
import pytest

from conftest import ARTIFACTS, Site, run

pytestmark = pytest.mark.slow


def _shot(page: Any, name: str) -> None:
    directory = ARTIFACTS / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def _walkthrough_user(home: Path) -> int:
    """The user the demo names for the revocation walk-through (rows shared with lumen-labs)."""
    import duckdb

    from datalease.config import Settings
    from datalease.platform.lake import register_delta
    from datalease.releases.keys import agreement_secret, key_sql
    from datalease.workspace import Workspace

    ws = Workspace(Settings(home=home))
    secret = agreement_secret(ws.master_key, "lumen-genai-2025")
    with duckdb.connect() as con:
        con.register("users", ws.lake.read("users").slice(0, 12))
        register_delta(con, "shared", home / "shares" / "lumen-genai-2025" / "posts", partitioned=True)
        found = con.execute(
            f"SELECT u.user_id FROM (SELECT user_id, {key_sql(secret, 'user', 'user_id')} AS k FROM users) u "
            "JOIN shared s ON s.user_key = u.k GROUP BY u.user_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchall()
    ws.engine.dispose()
    assert found, "no user on the demo sign-in page has posts shared with lumen-labs"
    return int(found[0][0])


def test_opting_out_in_the_browser_reaches_the_partner_and_the_operator(site: Site, browser: Any) -> None:
    user_id = _walkthrough_user(site.home)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()

    page.goto(site.base + "/login")
    _shot(page, "01-login")
    page.click(f"button[data-user='{user_id}']")
    page.wait_for_url(f"**/users/{user_id}/settings")
    _shot(page, "02-settings")
    master = page.locator("#share_with_partners")
    assert master.is_checked()
    assert page.get_by_text("Policy in force").is_visible()

    master.uncheck()
    page.click("button[type=submit]:has-text('Save')")
    page.wait_for_url("**/settings?saved=1")
    assert not page.locator("#share_with_partners").is_checked()
    _shot(page, "03-settings-saved")

    # The worker inside the server withdraws the rows; the report shows it.
    deadline = time.monotonic() + 30
    while True:
        page.goto(f"{site.base}/users/{user_id}/data")
        if page.locator("td.state-pending").count() > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    _shot(page, "04-where-my-data-went")
    assert page.locator("td.state-pending").count() >= 1, page.content()
    assert "opted out" in page.content()

    # The partner's change feed, through the official client, carries the deletes (keys only).
    profile = site.home / "profiles" / "lumen-labs.share"
    data = json.loads(profile.read_text())
    data["endpoint"] = site.base + "/delta-sharing"
    profile.write_text(json.dumps(data))
    changes = delta_sharing.load_table_changes_as_pandas(
        f"{profile}#lumen-genai-2025.platform.posts", starting_version=1
    )
    deletes = changes[changes["_change_type"] == "delete"]
    assert len(deletes) > 0 and deletes["text"].isna().all()

    # The operator sees the acknowledgement pending.
    operator = browser.new_context().new_page()
    operator.goto(site.base + "/login")
    operator.fill("#token", (site.home / "keys" / "api.token").read_text().strip())
    operator.click("button:has-text('Open the console')")
    operator.wait_for_url("**/operator")
    _shot(operator, "05-operator-agreements")
    for tab in ("releases", "revenue", "policy"):
        operator.goto(f"{site.base}/operator/{tab}")
        _shot(operator, f"06-operator-{tab}")
    operator.goto(site.base + "/operator/compliance")
    _shot(operator, "07-operator-compliance")
    pending = operator.locator("td.state-pending")
    assert pending.count() >= 1 and int(pending.first.inner_text()) >= 1


def test_forms_refuse_a_missing_or_wrong_csrf_token_and_other_users_pages(site: Site, browser: Any) -> None:
    page = browser.new_context().new_page()
    page.goto(site.base + "/login")
    first = page.locator(".users button").first
    user_id = int(first.get_attribute("data-user"))
    first.click()
    page.wait_for_url(f"**/users/{user_id}/settings")

    request = page.context.request
    before = run(site.home, "consent", "show", str(user_id), "--json")
    assert before.returncode == 0, before.stderr
    missing = request.post(f"{site.base}/users/{user_id}/settings", form={"share_with_partners": "on"})
    assert missing.status == 403
    wrong = request.post(f"{site.base}/users/{user_id}/settings", form={"csrf": "0" * 64})
    assert wrong.status == 403
    other = user_id + 1
    for path in (f"/users/{other}/settings", f"/users/{other}/data", f"/users/{other}/data.json"):
        assert request.get(site.base + path).status == 403, path
    assert request.get(site.base + "/operator").status == 401
    # Nothing was recorded by the refused forms.
    after = run(site.home, "consent", "show", str(user_id), "--json")
    assert json.loads(after.stdout)["settings"] == json.loads(before.stdout)["settings"]
