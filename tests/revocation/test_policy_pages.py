"""The operator's policy pages (issue 14: "the operator page shows the same before the operator
confirms"), in-process on the revocation world: the preview lists the changes and the impact the
CLI's `policy apply --dry-run` computes, and records nothing; confirming applies the revision with its
bulk withdrawal; the active policy's own text has nothing to apply; an invalid or history-rewriting
policy is a 400 error page saying why; no session → 401; a wrong CSRF token → 403."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from fastapi.testclient import TestClient
from release_world import example_text
from revocation_world import API_TOKEN

from datalease.app import create_app
from datalease.config import Settings
from datalease.services.policy import apply_policy, revisions
from datalease.store.bulk import list_withdrawals
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

CSRF = re.compile(r'name="csrf" value="([0-9a-f]*)"')
CONFIRM = 'action="/operator/policy"'


def _csrf(text: str) -> str:
    found = CSRF.search(text)
    assert found, text[:2000]
    return found.group(1)


def _halting(policy: str) -> str:
    """The example policy plus a version from tomorrow that shares nothing anywhere."""
    tomorrow = (utc_now() + timedelta(days=1)).date().isoformat()
    return (
        policy.rstrip("\n")
        + f'\n  - id: "halt"\n    effective_from: {tomorrow}\n'
        + '    note: A halt of all third-party sharing.\n    rules:\n      - region: "*"\n        mechanism: excluded\n'
    )


def test_preview_shows_the_changes_and_impact_and_confirm_applies(home: Workspace) -> None:
    settings = Settings(
        home=home.settings.resolved_home, workers=1, api_token=API_TOKEN, revocation_worker=False
    )
    active = example_text("x-2024.yaml")
    halting = _halting(active)
    expected = apply_policy(home, halting, "preview", dry_run=True)
    total = sum(r.rows for r in expected.impact)
    assert total > 0
    before = len(revisions(home))
    with TestClient(create_app(settings), follow_redirects=False) as client:
        assert client.post("/operator/policy/preview", data={"text": halting}).status_code == 401
        login = client.get("/login")
        signed = client.post("/login/operator", data={"token": API_TOKEN, "csrf": _csrf(login.text)})
        assert signed.status_code == 303, signed.text
        page = client.get("/operator/policy")
        assert page.status_code == 200 and "Apply a revision" in page.text and CONFIRM not in page.text
        csrf = _csrf(page.text)
        wrong = client.post("/operator/policy/preview", data={"text": halting, "csrf": "0" * 64})
        assert wrong.status_code == 403

        invalid = client.post("/operator/policy/preview", data={"text": "policy: [1, 2", "csrf": csrf})
        assert invalid.status_code == 400 and "The policy is not valid" in invalid.text
        rewritten = active.replace("effective_from: 2024-11-15", "effective_from: 2024-11-16", 1)
        assert rewritten != active
        history = client.post("/operator/policy/preview", data={"text": rewritten, "csrf": csrf})
        assert history.status_code == 400 and "history is immutable" in html.unescape(history.text)

        same = client.post("/operator/policy/preview", data={"text": active, "csrf": csrf})
        assert same.status_code == 200 and "already says exactly this" in same.text
        assert CONFIRM not in same.text

        preview = client.post("/operator/policy/preview", data={"text": halting, "csrf": csrf})
        assert preview.status_code == 200, preview.text
        assert f"<strong>{total}</strong> row(s)" in preview.text
        for row in expected.impact:
            assert f"<td>{row.agreement_id}</td><td>{row.partner}</td><td>{row.category}</td>" in preview.text
            assert f'<td class="num">{row.people}</td><td class="num">{row.rows}</td>' in preview.text
        assert "halt" in preview.text and CONFIRM in preview.text
        assert len(revisions(home)) == before
        with home.session() as session:
            assert list_withdrawals(session) == []

        confirmed = client.post("/operator/policy", data={"text": halting, "csrf": _csrf(preview.text)})
        assert confirmed.status_code == 303 and confirmed.headers["location"] == "/operator/policy"
        assert client.post("/operator/policy", data={"text": halting, "csrf": "0" * 64}).status_code == 403
    applied = revisions(home)
    assert len(applied) == before + 1 and applied[-1].applied_by == "operator console"
    with home.session() as session:
        assert [w.reason_code for w in list_withdrawals(session)] == ["policy_changed"]
