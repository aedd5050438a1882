"""Use cases of bulk withdrawals: regulator orders (apply, lift, list, show) and an agreement
suspended or terminated — each recorded with its bulk withdrawal (and intent) in one transaction,
or, with `dry_run`, only its impact computed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from datalease.errors import UserError
from datalease.licensing.model import check_status_change
from datalease.licensing.registry import get_agreement
from datalease.policy.model import Policy, RegulatorOrder
from datalease.policy.order_documents import load_order
from datalease.policy.orders import order_countries, with_orders
from datalease.revocation.bulk import BulkResult, process_bulk
from datalease.revocation.impact import ImpactRow, impact_of
from datalease.revocation.model import BulkProgress, BulkWithdrawal
from datalease.store.bulk import complete_withdrawal, list_withdrawals, progress_of, record_bulk_withdrawal
from datalease.store.licensing import get_agreement_record, list_agreements, set_status
from datalease.store.orders import add_order, get_order, lift_order, list_orders
from datalease.store.releases import latest_release
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


@dataclass(frozen=True)
class Outcome:
    """What a command did (or, dry run, would do): the impact and the withdrawal recorded."""

    dry_run: bool
    impact: list[ImpactRow]
    withdrawal: BulkWithdrawal | None = None
    order: RegulatorOrder | None = None
    notes: list[str] = field(default_factory=list)


def released_agreements(ws: Workspace) -> list[str]:
    with ws.session() as session:
        return [r.agreement_id for r in list_agreements(session) if latest_release(session, r.agreement_id)]


def order_subject(order: RegulatorOrder) -> str:
    """What the forget entry names: the order's regions and countries, e.g. `US` or `EEA,CH`."""
    return ",".join((*order.regions, *order.countries))


def apply_order(ws: Workspace, text: str, source: str, *, dry_run: bool = False) -> Outcome:
    """`order apply FILE [--dry-run]`: check the order against the active policy, show what it
    withdraws, and (not a dry run) record it with its bulk withdrawal in one transaction."""
    ws.init()
    policy = ws.require_policy()
    order = load_order(text, source, policy)
    now = utc_now()
    with ws.session() as session:
        if get_order(session, order.order_id) is not None:
            raise UserError(f"order {order.order_id}: already recorded; an order id is used once")
    at = max(now, order.effective)
    countries = sorted(order_countries(policy, order))
    impact = impact_of(ws, released_agreements(ws), at, order=order, countries=countries)
    if dry_run:
        return Outcome(True, impact, order=order)
    with ws.write_session() as session, session.begin():
        if get_order(session, order.order_id) is not None:
            raise UserError(f"order {order.order_id}: already recorded; an order id is used once")
        add_order(session, order, text, now)
        withdrawal = record_bulk_withdrawal(
            session,
            kind="order",
            scope="region",
            subject=order_subject(order),
            reference=order.order_id,
            agreement_id=None,
            detail=json.dumps({"countries": countries, "reference": order.reference}),
            at=at,
        )
    return Outcome(False, impact, withdrawal, order)


def lift(ws: Workspace, order_id: str, *, dry_run: bool = False) -> RegulatorOrder:
    """`order lift ID`: the order stops applying now; rows come back with the next full build."""
    now = utc_now()
    with ws.write_session() as session, session.begin():
        order = get_order(session, order_id)
        if order is None:
            raise UserError(f"no order {order_id!r}; see `datalease order list`")
        if order.lifted_at is not None:
            raise UserError(f"order {order_id}: already lifted on {order.lifted_at.isoformat()}")
        if not dry_run:
            lift_order(session, order_id, now)
        lifted = get_order(session, order_id)
    assert lifted is not None
    return lifted


def orders(ws: Workspace) -> list[RegulatorOrder]:
    with ws.session() as session:
        return list_orders(session)


def order(
    ws: Workspace, order_id: str
) -> tuple[RegulatorOrder, list[tuple[BulkWithdrawal, list[BulkProgress]]]]:
    with ws.session() as session:
        found = get_order(session, order_id)
        if found is None:
            raise UserError(f"no order {order_id!r}; see `datalease order list`")
        withdrawals = [w for w in list_withdrawals(session) if w.kind == "order" and w.reference == order_id]
        return found, [(w, progress_of(session, w.withdrawal_id)) for w in withdrawals]


def end_agreement(
    ws: Workspace, agreement_id: str, status: str, reason: str, *, dry_run: bool = False
) -> Outcome:
    """`agreement suspend|terminate ID --reason …`: a suspension stops new releases at once (the
    share stays readable, revocations keep being delivered); a termination empties the share through
    deletes in its change feed, asks for a whole-dataset forget, and closes it at the deletion deadline."""
    if not reason.strip():
        raise UserError("--reason: expected a reason (it is kept with the agreement's history)")
    policy = ws.require_policy()
    now = utc_now()
    with ws.session() as session:
        record = get_agreement_record(session, agreement_id)
        agreement = get_agreement(session, agreement_id, policy)
        released = latest_release(session, agreement_id) is not None
    if record.status == status:
        raise UserError(
            f"agreement {agreement_id}: already {status} (since {record.status_changed_at.isoformat()})"
        )
    check_status_change(agreement_id, record.status, status)
    terminating = status == "terminated"
    impact = impact_of(ws, [agreement_id], now, everything=True) if terminating and released else []
    if dry_run:
        return Outcome(True, impact)
    closes = now + timedelta(hours=agreement.deletion_sla_hours)
    with ws.write_session() as session, session.begin():
        set_status(session, agreement_id, status, now)
        withdrawal = None
        if released:
            withdrawal = record_bulk_withdrawal(
                session,
                kind="termination" if terminating else "suspension",
                scope="agreement",
                subject=agreement_id,
                reference=reason.strip(),
                agreement_id=agreement_id,
                detail=json.dumps({"reason": reason.strip()}),
                at=now,
                closes_at=closes if terminating else None,
            )
            if not terminating:  # a suspension withdraws nothing: kept for its reason, done at once
                complete_withdrawal(session, withdrawal.withdrawal_id, now)
    notes = [f"the share stays readable until {closes.isoformat()}, then closes"] if terminating else []
    return Outcome(False, impact, withdrawal, notes=notes)


def withdrawals(ws: Workspace) -> list[tuple[BulkWithdrawal, list[BulkProgress]]]:
    with ws.session() as session:
        return [(w, progress_of(session, w.withdrawal_id)) for w in list_withdrawals(session)]


def ended_at(ws: Workspace, agreement_id: str) -> datetime | None:
    with ws.session() as session:
        record = get_agreement_record(session, agreement_id)
    return record.status_changed_at if record.status == "terminated" else None


def deliver_bulk(ws: Workspace) -> BulkResult:
    """`revoke bulk`: deliver every pending bulk withdrawal now (the server's bulk worker does this)."""
    return process_bulk(ws)


def narrowing_impact(ws: Workspace, policy: Policy, at: datetime) -> list[ImpactRow]:
    """What a new policy revision would withdraw from every released share (deletes only, judged at
    `at` — when its new version starts — under the new revision with the orders in force)."""
    with ws.session() as session:
        attached = with_orders(policy, list_orders(session))
    return impact_of(ws, released_agreements(ws), at, policy=attached)


def record_policy_withdrawal(session: Session, revision: int, at: datetime) -> BulkWithdrawal:
    """In `policy apply`'s transaction: the narrower revision's bulk withdrawal (reason policy_changed)."""
    return record_bulk_withdrawal(
        session,
        kind="policy",
        scope="policy",
        subject=f"revision {revision}",
        reference=str(revision),
        agreement_id=None,
        detail=json.dumps({"revision": revision}),
        at=at,
    )
