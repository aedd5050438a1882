"""The invoice use cases on both stores (SQLite and PostgreSQL, through a real Workspace): two runs
racing for the same month issue it once, numbers are unique and consecutive; a dry run and a refused
run write nothing. A flat_annual agreement needs no release, so no lake is built here."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datalease.billing.period import BillingError
from datalease.config import Settings
from datalease.licensing.registry import create_agreement
from datalease.services.billing import build_invoices, credit_invoice, invoices
from datalease.store.licensing import add_partner
from datalease.store.policy_revisions import save_policy_revision
from datalease.workspace import Workspace

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "datalease" / "examples"
NOW = datetime(2026, 7, 2, tzinfo=UTC)


@pytest.fixture
def ws(db_url: str, tmp_path: Path) -> Workspace:
    workspace = Workspace(Settings(home=tmp_path / "home", workers=1, database_url=db_url, master_key=None))
    policy_text = (EXAMPLES / "x-2024.yaml").read_text()
    with workspace.session() as session, session.begin():
        save_policy_revision(
            session, "x-platform", policy_text, hashlib.sha256(policy_text.encode()).hexdigest(), "t"
        )
    policy = workspace.require_policy()
    with workspace.session() as session, session.begin():
        add_partner(session, "lumen-labs", "Lumen Labs")
        create_agreement(
            session, (EXAMPLES / "agreements" / "lumen-genai.yaml").read_text(), "l.yaml", policy=policy
        )
    return workspace


def test_racing_runs_issue_a_month_once(ws: Workspace) -> None:
    results: list[object] = []

    def run() -> None:
        try:
            results.append(build_invoices(ws, "2026-06", now=NOW))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(r, Exception) for r in results), results
    issued = invoices(ws)
    assert [i.number for i in issued] == ["INV-000001"] and issued[0].agreement_id == "lumen-genai-2025"
    note = credit_invoice(ws, "INV-000001", now=NOW)
    (again,) = build_invoices(ws, "2026-06", now=NOW).issued
    assert (note.number, again.number) == ("CN-000001", "INV-000002")  # type: ignore[union-attr]
    ws.engine.dispose()


def test_dry_runs_and_refusals_write_nothing(ws: Workspace) -> None:
    assert build_invoices(ws, "2026-06", dry_run=True, now=NOW).drafts
    with pytest.raises(BillingError, match="before the term"):
        build_invoices(ws, "2024-12", agreement_id="lumen-genai-2025", now=NOW)
    with pytest.raises(BillingError, match="after the term"):
        build_invoices(ws, "2027-01", agreement_id="lumen-genai-2025", now=datetime(2027, 3, 1, tzinfo=UTC))
    with pytest.raises(BillingError, match="no such invoice"):
        credit_invoice(ws, "INV-000001", now=NOW)
    assert invoices(ws) == []
    ws.engine.dispose()
