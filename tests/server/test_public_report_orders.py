"""The public transparency report lists the regulator orders in force at some instant of its period
(issue 14's orders in issue 18's report): an order of the period is shown with its authority,
reference and scope, in the signed JSON and on the page; one that ended before the period is not."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from small_home import SmallHome, settings

from datalease.app import create_app
from datalease.policy.model import RegulatorOrder
from datalease.services.public_report import build_report, verify_document
from datalease.store.orders import add_order
from datalease.workspace import Workspace


def _order(order_id: str, effective: datetime, until: datetime | None) -> RegulatorOrder:
    return RegulatorOrder(
        order_id=order_id,
        issued_by="Data Protection Commission",
        reference=f"DPC-{order_id}",
        regions=(),
        countries=("US",),
        categories=("posts",),
        purposes=("train_ai_system",),
        effective=effective,
        until=until,
    )


def test_a_regulator_order_in_force_in_the_period_is_in_the_report(home: SmallHome) -> None:
    ws = Workspace(settings(home.home, revocation_worker=False))
    with ws.write_session() as session, session.begin():
        add_order(session, _order("in-2025", datetime(2025, 3, 1, tzinfo=UTC), None), "", datetime.now(UTC))
        add_order(
            session,
            _order("ended-2024", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)),
            "",
            datetime.now(UTC),
        )
    document = build_report(ws, "2025", now=datetime(2026, 1, 2, tzinfo=UTC))
    assert verify_document(document)
    shown = {o["order_id"]: o for o in document["regulator_orders"]}
    assert set(shown) == {"in-2025"}, shown
    assert shown["in-2025"]["reference"] == "DPC-in-2025" and shown["in-2025"]["countries"] == ["US"]
    with TestClient(create_app(settings(home.home, revocation_worker=False))) as client:
        page = client.get("/transparency?period=2025")
    assert page.status_code == 200, page.text
    assert "DPC-in-2025" in page.text and "DPC-ended-2024" not in page.text
