"""Invoices: build (or preview) a period's invoices, credit one, list and show them.

Every check runs before anything is written, and a run writes all its invoices in one transaction or
none. Usage (metered queries) is read in one place, `usage_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from datalease.billing.documents import issue, lines_of
from datalease.billing.invoices import credit_note_for, draft_invoice
from datalease.billing.model import KIND_CREDIT_NOTE, KIND_INVOICE, Invoice, InvoiceDraft
from datalease.billing.period import BillingError, Period, ended_period
from datalease.licensing.model import Agreement
from datalease.licensing.registry import get_agreement, load_agreements
from datalease.sharing.model import UsageTotal
from datalease.sharing.usagelog import fold_all
from datalease.store.billing import (
    credited,
    get_invoice,
    list_invoices,
    lock_billing,
    next_sequence,
    save_invoice,
)
from datalease.store.releases import list_releases
from datalease.store.sharing import usage_totals
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


@dataclass(frozen=True)
class InvoiceRun:
    period: Period
    dry_run: bool
    drafts: tuple[InvoiceDraft, ...]
    issued: tuple[Invoice, ...]  # empty on a dry run
    skipped: tuple[tuple[str, str], ...]  # (agreement id, why) when building for every agreement


def usage_for(session: Session, period: Period) -> list[UsageTotal]:
    """The metered usage of a period: the one place billing reads it (after `fold_usage`)."""
    return usage_totals(session, month=period.label)


def fold_usage(ws: Workspace) -> None:
    """Count what the servers' usage logs hold and the store does not yet (their last second)."""
    fold_all(ws)


def open_invoice(invoices: list[Invoice], done: set[str], agreement_id: str) -> Invoice | None:
    """The agreement's invoice for the period that no credit note cancels, if any."""
    return next(
        (
            i
            for i in invoices
            if i.kind == KIND_INVOICE and i.agreement_id == agreement_id and i.number not in done
        ),
        None,
    )


def _agreements(session: Session, ws: Workspace, agreement_id: str | None) -> list[Agreement]:
    policy = ws.require_policy()
    if agreement_id is not None:
        return [get_agreement(session, agreement_id, policy)]
    return load_agreements(session, policy)


def build_invoices(
    ws: Workspace,
    period_text: str,
    *,
    agreement_id: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> InvoiceRun:
    """`invoice build`: one invoice per agreement for an ended month.

    With `agreement_id`, a period outside its term or an agreement already invoiced for the period is
    an error; without it, such agreements (and drafts never activated) are skipped and listed.
    """
    when = now or utc_now()
    period = ended_period(period_text, when)
    ws.init()
    fold_usage(ws)
    with ws.write_session() as session, session.begin():
        lock_billing(session)
        chosen = _agreements(session, ws, agreement_id)
        existing = list_invoices(session, period=period.label)
        done = credited(session)
        usage = usage_for(session, period)
        drafts: list[InvoiceDraft] = []
        skipped: list[tuple[str, str]] = []
        for agreement in chosen:
            already = open_invoice(existing, done, agreement.agreement_id)
            try:
                if already is not None:
                    raise BillingError(
                        f"agreement {agreement.agreement_id}: already invoiced for {period} ({already.number}); "
                        f"to correct it, credit it first (`datalease invoice credit {already.number}`)"
                    )
                if agreement.status == "draft":
                    raise BillingError(f"agreement {agreement.agreement_id}: a draft is not billed")
                releases = list_releases(session, agreement.agreement_id)
                drafts.append(draft_invoice(agreement, period, releases, usage))
            except BillingError as exc:
                if agreement_id is not None:
                    raise
                skipped.append((agreement.agreement_id, str(exc)))
        issued: list[Invoice] = []
        if not dry_run:
            sequence = next_sequence(session, KIND_INVOICE)
            for offset, draft in enumerate(drafts):
                invoice = issue(draft, sequence + offset, when)
                save_invoice(session, invoice)
                issued.append(invoice)
    return InvoiceRun(period, dry_run, tuple(drafts), tuple(issued), tuple(skipped))


def credit_invoice(
    ws: Workspace, number: str, *, dry_run: bool = False, now: datetime | None = None
) -> InvoiceDraft | Invoice:
    """`invoice credit NUMBER`: a credit note for the whole invoice, referring to it."""
    when = now or utc_now()
    ws.init()
    with ws.write_session() as session, session.begin():
        lock_billing(session)
        original = _find(session, number)
        if original.number in credited(session):
            raise BillingError(
                f"{original.number}: already credited; expected an invoice no credit note refers to"
            )
        draft = credit_note_for(original, lines_of(original))
        if dry_run:
            return draft
        note = issue(draft, next_sequence(session, KIND_CREDIT_NOTE), when)
        save_invoice(session, note)
        return note


def _find(session: Session, number: str) -> Invoice:
    found = get_invoice(session, number.strip().upper())
    if found is None:
        raise BillingError(
            f"invoice {number!r}: no such invoice or credit note (see `datalease invoice list`)"
        )
    return found


def invoices(ws: Workspace, *, agreement_id: str | None = None, period: str | None = None) -> list[Invoice]:
    ws.init()
    with ws.session() as session:
        return list_invoices(session, agreement_id=agreement_id, period=period)


def invoice(ws: Workspace, number: str) -> Invoice:
    ws.init()
    with ws.session() as session:
        return _find(session, number)


def invoice_status(ws: Workspace) -> dict[str, str]:
    """number → issued | credited | credit note."""
    with ws.session() as session:
        done = credited(session)
        return {
            i.number: "credit note"
            if i.kind == KIND_CREDIT_NOTE
            else ("credited" if i.number in done else "issued")
            for i in list_invoices(session)
        }
