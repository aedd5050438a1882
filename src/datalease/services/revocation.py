"""Revocation: deliver what is pending now, and the read-only views of what was delivered."""

from __future__ import annotations

from datalease.reporting.compliance import Compliance, compliance
from datalease.reporting.user_report import AgreementReport, user_report
from datalease.revocation.model import DeliveryFailure, ForgetEntry
from datalease.revocation.worker import BatchResult, process_pending
from datalease.store.forget import acknowledge, forget_entries
from datalease.store.revocation import count_pending_intents, delivery_failures
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


def deliver_pending(ws: Workspace) -> BatchResult:
    """`revoke process`: one batch now (the server's worker runs them continuously)."""
    return process_pending(ws)


def compliance_report(ws: Workspace) -> Compliance:
    with ws.session() as session:
        return compliance(session, utc_now())


def where_data_went(ws: Workspace, user: str) -> tuple[int, list[AgreementReport]]:
    """`report user`: the user (an id or @handle) and, per agreement, what of theirs went where."""
    facts = ws.user_facts(user)
    return facts.user_id, user_report(ws, facts.user_id)


def forget_list(ws: Workspace, partner: str, *, pending: bool = False) -> list[ForgetEntry]:
    """A partner's forget entries (all, or only those not acknowledged yet)."""
    with ws.session() as session:
        return forget_entries(session, partner=partner, unacknowledged=pending)


def acknowledge_forgotten(
    ws: Workspace, partner: str, ids: list[str], certificate: str | None
) -> tuple[int, int]:
    """A partner acknowledges its entries (all its own, or none); (newly acknowledged, already)."""
    with ws.write_session() as session, session.begin():
        return acknowledge(session, partner, ids, certificate, utc_now())


def delivery_health(ws: Workspace) -> tuple[list[DeliveryFailure], int]:
    """For `/health`: the agreements whose deliveries keep failing, and how many intents wait."""
    with ws.session() as session:
        return delivery_failures(session), count_pending_intents(session)
