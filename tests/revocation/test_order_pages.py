"""The operator's order pages, in-process on the revocation world: the preview shows the impact the
CLI's dry run computes and records nothing; confirming records the order with its bulk withdrawal;
a bad order is a 400 error page naming the field; no session → 401; a wrong CSRF token → 403."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from revocation_world import API_TOKEN

from datalease.app import create_app
from datalease.config import Settings
from datalease.services.licensing import agreements
from datalease.services.orders import apply_order, end_agreement
from datalease.store.bulk import list_withdrawals
from datalease.store.orders import list_orders
from datalease.workspace import Workspace

ORDER = """\
order: ftc-2026-01
issued_by: Federal Trade Commission
reference: FTC-2026-0042
regions: [US]
purposes: [train_ai_system]
effective: 2026-01-01
"""
CSRF = re.compile(r'name="csrf" value="([0-9a-f]*)"')


def _csrf(text: str) -> str:
    found = CSRF.search(text)
    assert found, text[:2000]
    return found.group(1)


def test_preview_shows_the_impact_and_confirm_records_the_order(home: Workspace) -> None:
    settings = Settings(
        home=home.settings.resolved_home, workers=1, api_token=API_TOKEN, revocation_worker=False
    )
    expected = apply_order(home, ORDER, "order", dry_run=True)
    total = sum(r.rows for r in expected.impact)
    assert total > 0
    with TestClient(create_app(settings), follow_redirects=False) as client:
        assert client.get("/operator/orders").status_code == 401
        login = client.get("/login")
        signed = client.post("/login/operator", data={"token": API_TOKEN, "csrf": _csrf(login.text)})
        assert signed.status_code == 303, signed.text
        page = client.get("/operator/orders")
        assert page.status_code == 200 and "No order recorded" in page.text
        csrf = _csrf(page.text)
        assert (
            client.post("/operator/orders/preview", data={"text": ORDER, "csrf": "0" * 64}).status_code == 403
        )
        bad = client.post(
            "/operator/orders/preview", data={"text": ORDER.replace("[US]", "[MARS]"), "csrf": csrf}
        )
        assert bad.status_code == 400 and "regions[0]" in bad.text
        preview = client.post("/operator/orders/preview", data={"text": ORDER, "csrf": csrf})
        assert preview.status_code == 200
        assert f"<strong>{total}</strong> row(s)" in preview.text
        for row in expected.impact:
            assert f'<td class="num">{row.rows}</td>' in preview.text
        with home.session() as session:
            assert list_orders(session) == [] and list_withdrawals(session) == []
        confirmed = client.post("/operator/orders", data={"text": ORDER, "csrf": _csrf(preview.text)})
        assert confirmed.status_code == 303 and confirmed.headers["location"] == "/operator/orders"
        assert "ftc-2026-01" in client.get("/operator/orders").text
    with home.session() as session:
        assert [o.order_id for o in list_orders(session)] == ["ftc-2026-01"]
        assert [w.reason_code for w in list_withdrawals(session)] == ["regulator_order"]


def test_ending_an_agreement_shows_its_impact_then_records_it(home: Workspace) -> None:
    """Terminate from the console: the preview's rows are the CLI's dry run and nothing is recorded;
    confirming records the termination's bulk withdrawal; an unknown action or agreement is a 400."""
    settings = Settings(
        home=home.settings.resolved_home, workers=1, api_token=API_TOKEN, revocation_worker=False
    )
    impacts = {
        a.agreement_id: end_agreement(home, a.agreement_id, "terminated", "contract ended", dry_run=True)
        for a in agreements(home)
        if a.status == "active"
    }
    agreement_id, expected = max(impacts.items(), key=lambda kv: sum(r.rows for r in kv[1].impact))
    total = sum(r.rows for r in expected.impact)
    assert total > 0
    form = {"agreement_id": agreement_id, "action": "terminate", "reason": "contract ended"}
    with TestClient(create_app(settings), follow_redirects=False) as client:
        assert client.get("/operator/agreements/end").status_code == 401
        login = client.get("/login")
        signed = client.post("/login/operator", data={"token": API_TOKEN, "csrf": _csrf(login.text)})
        assert signed.status_code == 303, signed.text
        page = client.get("/operator/agreements/end")
        assert page.status_code == 200 and agreement_id in page.text
        csrf = _csrf(page.text)
        assert (
            client.post("/operator/agreements/end/preview", data={**form, "csrf": "0" * 64}).status_code
            == 403
        )
        bad = client.post("/operator/agreements/end/preview", data={**form, "action": "pause", "csrf": csrf})
        assert bad.status_code == 400 and "expected suspend or terminate" in bad.text
        unknown = client.post(
            "/operator/agreements/end/preview", data={**form, "agreement_id": "nope", "csrf": csrf}
        )
        assert unknown.status_code == 400 and "nope" in unknown.text
        preview = client.post("/operator/agreements/end/preview", data={**form, "csrf": csrf})
        assert preview.status_code == 200, preview.text
        assert f"<strong>{total}</strong> row(s)" in preview.text
        with home.session() as session:
            assert list_withdrawals(session) == []
        confirmed = client.post("/operator/agreements/end", data={**form, "csrf": _csrf(preview.text)})
        assert confirmed.status_code == 303, confirmed.text
    with home.session() as session:
        assert [w.reason_code for w in list_withdrawals(session)] == ["agreement_terminated"]
    assert next(a for a in agreements(home) if a.agreement_id == agreement_id).status == "terminated"
