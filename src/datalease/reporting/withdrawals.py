"""Why a person's data was withdrawn in bulk, in their words: a regulator order in their region, an
agreement that ended. Read by `report user` and the "where my data went" page (issue 14)."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from datalease.licensing.model import AgreementRecord
from datalease.store.bulk import list_withdrawals, progress_of


def why_withdrawn(
    session: Session, record: AgreementRecord, country: str | None, had_rows: bool
) -> list[str]:
    """Sentences for one agreement: each completed (or running) order that reached this person's
    country and this share, and the agreement's end."""
    lines: list[str] = []
    if not had_rows:
        return lines
    for withdrawal in list_withdrawals(session):
        if withdrawal.kind == "order":
            detail = json.loads(withdrawal.detail or "{}")
            if country not in detail.get("countries", []):
                continue
            reached = {p.agreement_id for p in progress_of(session, withdrawal.withdrawal_id)}
            if record.agreement_id not in reached:
                continue
            reference = detail.get("reference") or withdrawal.reference
            lines.append(
                f"withdrawn because of a regulator order in your region (reference {reference}; "
                f"order {withdrawal.reference}, {withdrawal.requested_at:%Y-%m-%d})"
            )
        elif (
            withdrawal.kind in ("termination", "term_end") and withdrawal.agreement_id == record.agreement_id
        ):
            lines.append(
                f"the agreement with {record.partner} ended on {withdrawal.requested_at:%Y-%m-%d}: "
                "everything it held is withdrawn and the partner must delete it"
            )
    return lines
