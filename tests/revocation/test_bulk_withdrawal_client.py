"""A partner's view, through the official `delta-sharing` client, of a regulator order and of a
termination, both delivered by the bulk worker thread of a real `datalease serve`:

- the order halting the US: the partner's change feed shows one delete per withdrawn row (exactly the
  rows its snapshot lost), its snapshot is what the platform's Delta tables hold, and its forget table
  carries the `region` entry (subject US, reason regulator_order);
- the termination: the share stays listed; its tables reach zero rows through deletes in the feed;
  the forget table carries the whole-agreement entry; once the deletion deadline has passed (moved
  into the past in the store) the share is gone from the list and reading it answers 404.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import delta_sharing
import pytest
from release_world import LUMEN
from revocation_world import TABLES, Served, delta_rows, frame_rows, identity
from sqlalchemy import update

from datalease.services.orders import apply_order, end_agreement
from datalease.store.bulk import BulkWithdrawalRow, list_withdrawals
from datalease.store.licensing import AgreementRow
from datalease.workspace import Workspace

US_ORDER = """\
order: ftc-2026-01
issued_by: Federal Trade Commission
reference: FTC-2026-0042
regions: [US]
purposes: [train_ai_system]
effective: 2026-01-01
"""
PARTNER = "lumen-labs"
CDF = ("_change_type", "_commit_version", "_commit_timestamp")


def _wait_delivered(ws: Workspace, count: int, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with ws.session() as session:
            done = [w for w in list_withdrawals(session) if w.completed_at is not None]
        if len(done) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"the bulk worker did not complete {count} withdrawal(s) in {timeout_s} s")


def _keys(frame_rows_: list[dict[str, object]], table: str) -> set[tuple[object, ...]]:
    return {identity(r, table) for r in frame_rows_}


def test_a_partner_sees_an_order_and_a_termination_through_the_official_client(
    home: Workspace, server: Callable[..., Served]
) -> None:
    ws = home
    served = server(ws.settings.resolved_home, worker=True)
    partner = served.partner(PARTNER)
    start = {t: partner.version(LUMEN, t) for t in TABLES[LUMEN]}
    before = {t: _keys(frame_rows(partner.snapshot(LUMEN, t)), t) for t in TABLES[LUMEN]}

    apply_order(ws, US_ORDER, "us.yaml")
    _wait_delivered(ws, 1)
    lost_total = 0
    for table in TABLES[LUMEN]:
        now = _keys(frame_rows(partner.snapshot(LUMEN, table)), table)
        assert now == {identity(r, table) for r in delta_rows(ws, LUMEN, table)}
        feed = frame_rows(partner.changes(LUMEN, table, start[table] + 1))
        deletes = [identity(r, table) for r in feed if r["_change_type"] == "delete"]
        assert sorted(deletes) == sorted(before[table] - now)  # each withdrawn row deleted once
        assert not [r for r in feed if r["_change_type"] == "insert"]
        lost_total += len(deletes)
    assert lost_total > 0, "the world must hold US rows in lumen's share for this test to mean anything"
    forget = frame_rows(partner.snapshot(LUMEN, "forget"))
    region = [r for r in forget if r["scope"] == "region"]
    assert [(r["subject_key"], r["reason_code"]) for r in region] == [("US", "regulator_order")]

    start = {t: partner.version(LUMEN, t) for t in TABLES[LUMEN]}
    held = {t: _keys(frame_rows(partner.snapshot(LUMEN, t)), t) for t in TABLES[LUMEN]}
    end_agreement(ws, LUMEN, "terminated", "contract ended")
    _wait_delivered(ws, 2)
    assert LUMEN in {s.name for s in delta_sharing.SharingClient(str(partner.path)).list_shares()}
    for table in TABLES[LUMEN]:
        assert partner.snapshot(LUMEN, table).empty
        feed = frame_rows(partner.changes(LUMEN, table, start[table] + 1))
        deletes = [identity(r, table) for r in feed if r["_change_type"] == "delete"]
        assert sorted(deletes) == sorted(held[table])
    forget = frame_rows(partner.snapshot(LUMEN, "forget"))
    whole = [r for r in forget if r["scope"] == "agreement"]
    assert [(r["subject_key"], r["reason_code"]) for r in whole] == [(LUMEN, "agreement_terminated")]

    # The deletion deadline passes — moved into the past, together with the termination instant
    # (in production both are fixed at termination, and the server caches its catalogue per status
    # change; the cached closing instant is compared with the clock at every request).
    past = datetime.now(UTC) - timedelta(seconds=1)
    with ws.write_session() as session, session.begin():
        session.execute(
            update(BulkWithdrawalRow).where(BulkWithdrawalRow.agreement_id == LUMEN).values(closes_at=past)
        )
        session.execute(
            update(AgreementRow).where(AgreementRow.agreement_id == LUMEN).values(status_changed_at=past)
        )
    assert LUMEN not in {s.name for s in delta_sharing.SharingClient(str(partner.path)).list_shares()}
    with pytest.raises(Exception, match="404"):
        partner.snapshot(LUMEN, "posts")
