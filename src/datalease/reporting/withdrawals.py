"""Why a person's data was withdrawn in bulk, in their words: a regulator order in their region, an
agreement that ended. Read by `report user` and the "where my data went" page (issue 14)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import Session

from datalease.licensing.model import AgreementRecord
from datalease.store.bulk import list_withdrawals, progress_of
from datalease.store.forget import forget_entries


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


def end_state(session: Session, agreement_id: str, now: datetime) -> str | None:
    """An ended agreement (terminated, or past its term end) in one line: rows withdrawn, whether
    the share is still open or closed, and the whole-dataset forget entry's state. None otherwise."""
    ended = [
        w
        for w in list_withdrawals(session)
        if w.agreement_id == agreement_id and w.kind in ("termination", "term_end")
    ]
    if not ended:
        return None
    withdrawal = ended[-1]
    rows = sum(p.rows_deleted for p in progress_of(session, withdrawal.withdrawal_id))
    how = "terminated" if withdrawal.kind == "termination" else "term ended"
    emptied = (
        f"emptied ({rows} rows deleted)"
        if withdrawal.completed_at is not None
        else f"emptying ({rows} rows so far)"
    )
    closes = withdrawal.closes_at
    share = (
        ""
        if closes is None
        else (
            f"share closed since {closes:%Y-%m-%d %H:%M}Z"
            if now >= closes
            else f"share open until {closes:%Y-%m-%d %H:%M}Z"
        )
    )
    entry = next(
        (
            e
            for e in forget_entries(session, agreement_id=agreement_id)
            if e.intent_id == withdrawal.intent_id
        ),
        None,
    )
    forget = (
        "whole-dataset forget entry not delivered yet"
        if entry is None
        else f"whole-dataset forget entry {entry.state(now)}"
    )
    return f"{how} {withdrawal.requested_at:%Y-%m-%d}: {emptied}; {share}; {forget}"
