"""Invoices and payout runs in the store: append, read. Nothing here updates or deletes a row."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from datalease.billing.model import Fund, Invoice, PayoutLine, PayoutRun
from datalease.store.billing_rows import InvoiceRow, PayoutFundRow, PayoutLineRow, PayoutRunRow
from datalease.store.revocation import RevocationIntentRow

BILLING_LOCK = 1717  # pg_advisory_xact_lock key: one billing writer at a time


def lock_billing(session: Session) -> None:
    """Serialise billing writers for the rest of the transaction (PostgreSQL: an advisory lock; SQLite's
    write transactions are already serial), so two concurrent runs never invoice a month twice."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BILLING_LOCK})


def next_sequence(session: Session, kind: str) -> int:
    """The next number of `kind` (numbers are never reused: rows are never deleted)."""
    count = session.scalar(select(func.count()).select_from(InvoiceRow).where(InvoiceRow.kind == kind))
    return int(count or 0) + 1


def save_invoice(session: Session, invoice: Invoice) -> None:
    session.add(
        InvoiceRow(
            number=invoice.number,
            kind=invoice.kind,
            agreement_id=invoice.agreement_id,
            partner=invoice.partner,
            period=invoice.period,
            currency=invoice.currency,
            total=str(invoice.total),
            refers_to=invoice.refers_to,
            issued_at=invoice.issued_at,
            due_at=invoice.due_at,
            body=invoice.body,
            sha256=invoice.sha256,
        )
    )
    session.flush()


def _invoice(row: InvoiceRow) -> Invoice:
    return Invoice(
        row.number,
        row.kind,
        row.agreement_id,
        row.partner,
        row.period,
        row.currency,
        Decimal(row.total),
        row.refers_to,
        row.issued_at,
        row.due_at,
        row.body,
        row.sha256,
    )


def list_invoices(
    session: Session, *, agreement_id: str | None = None, period: str | None = None
) -> list[Invoice]:
    """Oldest first (by issue time, then number)."""
    query = select(InvoiceRow).order_by(InvoiceRow.issued_at, InvoiceRow.number)
    if agreement_id is not None:
        query = query.where(InvoiceRow.agreement_id == agreement_id)
    if period is not None:
        query = query.where(InvoiceRow.period == period)
    return [_invoice(row) for row in session.scalars(query)]


def get_invoice(session: Session, number: str) -> Invoice | None:
    row = session.get(InvoiceRow, number)
    return None if row is None else _invoice(row)


def credited(session: Session) -> set[str]:
    """Numbers of the invoices a credit note refers to."""
    query = select(InvoiceRow.refers_to).where(InvoiceRow.refers_to.is_not(None))
    return {n for n in session.scalars(query) if n is not None}


def save_payout_run(session: Session, run: PayoutRun) -> None:
    session.add(PayoutRunRow(period=run.period, created_at=run.created_at, minimum=str(run.minimum)))
    session.flush()
    session.add_all(
        PayoutFundRow(
            period=run.period,
            agreement_id=f.agreement_id,
            currency=f.currency,
            revenue=str(f.revenue),
            share=str(f.share),
            fund=str(f.fund),
            row_micros=str(f.row_micros),
            people=f.people,
        )
        for f in run.funds
    )
    session.add_all(
        PayoutLineRow(
            period=run.period,
            user_id=ln.user_id,
            currency=ln.currency,
            earned=str(ln.earned),
            carried_in=str(ln.carried_in),
            paid=str(ln.paid),
            carried_out=str(ln.carried_out),
            row_micros=ln.row_micros,
            agreements=json.dumps(ln.agreements, sort_keys=True),
        )
        for ln in run.lines
    )
    session.flush()


def _line(row: PayoutLineRow) -> PayoutLine:
    return PayoutLine(
        row.user_id,
        row.currency,
        Decimal(row.earned),
        Decimal(row.carried_in),
        Decimal(row.paid),
        Decimal(row.carried_out),
        row.row_micros,
        json.loads(row.agreements),
    )


def _run(session: Session, row: PayoutRunRow, *, with_lines: bool = True) -> PayoutRun:
    funds = session.scalars(
        select(PayoutFundRow).where(PayoutFundRow.period == row.period).order_by(PayoutFundRow.agreement_id)
    )
    lines: list[PayoutLineRow] = (
        list(
            session.scalars(
                select(PayoutLineRow)
                .where(PayoutLineRow.period == row.period)
                .order_by(PayoutLineRow.user_id, PayoutLineRow.currency)
            )
        )
        if with_lines
        else []
    )
    return PayoutRun(
        row.period,
        row.created_at,
        Decimal(row.minimum),
        tuple(
            Fund(
                f.agreement_id,
                f.currency,
                Decimal(f.revenue),
                Decimal(f.share),
                Decimal(f.fund),
                int(f.row_micros),
                f.people,
            )
            for f in funds
        ),
        tuple(_line(ln) for ln in lines),
    )


def get_payout_run(session: Session, period: str) -> PayoutRun | None:
    row = session.get(PayoutRunRow, period)
    return None if row is None else _run(session, row)


def list_payout_runs(session: Session, *, with_lines: bool = False) -> list[PayoutRun]:
    rows = session.scalars(select(PayoutRunRow).order_by(PayoutRunRow.period))
    return [_run(session, row, with_lines=with_lines) for row in rows]


def latest_payout_period(session: Session) -> str | None:
    return session.scalar(select(func.max(PayoutRunRow.period)))


def payout_lines_for_user(session: Session, user_id: int) -> list[tuple[str, PayoutLine]]:
    """(period, line) of every run that has a line for the person, oldest first."""
    query = select(PayoutLineRow).where(PayoutLineRow.user_id == user_id).order_by(PayoutLineRow.period)
    return [(row.period, _line(row)) for row in session.scalars(query)]


def effective_instants(session: Session, intent_ids: Iterable[int]) -> dict[int, datetime]:
    """intent id → the instant its setting or event took effect (the opt-out instant)."""
    wanted = sorted(set(intent_ids))
    found: dict[int, datetime] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        query = select(RevocationIntentRow.intent_id, RevocationIntentRow.effective_at).where(
            RevocationIntentRow.intent_id.in_(chunk)
        )
        found.update({int(i): at for i, at in session.execute(query)})
    return found
