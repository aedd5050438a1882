"""The pages on a billed month (in-process, the real app): a person's "What you earned" section and
data.json, `report user`, the operator's Billing tab (SVG charts, invoices due, funds) and the
printable invoice; operators only."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from billing_world import History
from fastapi.testclient import TestClient
from release_world import run_cli

from datalease.app import create_app
from datalease.config import Settings
from datalease.services.api_token import api_token
from datalease.services.billing import build_invoices
from datalease.services.payouts import build_payouts, payout_run
from datalease.web.sessions import user_token

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from pages import csrf_of, login_csrf

NOW = datetime(2026, 7, 2, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def billed(history: History) -> History:
    build_invoices(history.ws, "2026-06", now=NOW)
    build_payouts(history.ws, "2026-06", minimum=Decimal("0.50"), now=NOW)
    return history


@pytest.fixture
def client(billed: History) -> Iterator[TestClient]:
    settings = Settings(
        home=billed.home,
        workers=1,
        database_url=None,
        master_key=None,
        api_token=None,
        revocation_worker=False,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def test_a_person_sees_what_they_earned(billed: History, client: TestClient) -> None:
    run = payout_run(billed.ws, "2026-06")
    paid = next(ln for ln in run.lines if ln.paid > 0)
    assert (
        client.get("/login", params={"token": user_token(billed.ws.master_key, paid.user_id)}).status_code
        == 303
    )
    page = client.get(f"/users/{paid.user_id}/data")
    assert page.status_code == 200, page.text[:2000]
    assert "What you earned" in page.text
    for agreement_id, detail in paid.agreements.items():
        assert agreement_id in page.text and detail["earned"] in page.text
    earned = client.get(f"/users/{paid.user_id}/data.json").json()["earnings"]
    assert sum(Decimal(e["amount"]) for e in earned) == paid.earned
    assert {e["status"] for e in earned} == {"paid"}
    report = run_cli(billed.home, "report", "user", str(paid.user_id), "--json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["earnings"] == earned  # the same as the page's data.json
    text = run_cli(billed.home, "report", "user", str(paid.user_id)).stdout
    assert "earned 2026-06 from" in text and "paid" in text


def test_the_billing_tab_is_for_operators_and_shows_the_business(billed: History, client: TestClient) -> None:
    assert client.get("/operator/billing").status_code == 401
    token = api_token(billed.ws)
    signed = client.post("/login/operator", data={"token": token, "csrf": login_csrf(client)})
    assert signed.status_code == 303
    page = client.get("/operator/billing")
    assert page.status_code == 200, page.text[:2000]
    assert page.text.count('<svg role="img"') == 3  # revenue, fund, distribution (one currency)
    assert "Revenue per partner per month (USD)" in page.text
    bars = re.findall(r'<rect class="series-\d+" x="\d+" y="\d+" width="\d+" height="(\d+)"', page.text)
    assert any(int(h) > 0 for h in bars)
    assert "INV-000001" in page.text and "Invoices due" in page.text
    printable = client.get("/operator/invoices/INV-000001")
    assert printable.status_code == 200 and "<h1>Invoice INV-000001</h1>" in printable.text
    assert client.get("/operator/invoices/INV-999999").status_code == 404
    csrf_of(page)  # the page carries the sign-out form's token like every page
