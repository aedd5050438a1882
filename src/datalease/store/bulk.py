"""Bulk withdrawals in the store: recorded with their intent in one transaction, then delivered per
agreement chunk by chunk (rows and chunks counted in the transaction that pins each chunk)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.revocation.model import BULK_REASONS, BulkProgress, BulkWithdrawal
from datalease.store.licensing import NAME_LENGTH
from datalease.store.models import Base, UTCDateTime
from datalease.store.revocation import RevocationIntentRow


class BulkWithdrawalRow(Base):
    """An order applied, a narrower policy, an agreement suspended, terminated or past its term."""

    __tablename__ = "bulk_withdrawals"

    withdrawal_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    intent_id: Mapped[int] = mapped_column(Integer, ForeignKey("revocation_intents.intent_id"))
    kind: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str] = mapped_column(String(40))
    scope: Mapped[str] = mapped_column(String(16))  # region | agreement
    subject: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(200))
    agreement_id: Mapped[str | None] = mapped_column(String(NAME_LENGTH), nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A termination's share closes here (request + deletion SLA); None for other kinds.
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BulkDeliveryRow(Base):
    """One agreement's part of a bulk withdrawal."""

    __tablename__ = "bulk_deliveries"

    withdrawal_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("bulk_withdrawals.withdrawal_id"), primary_key=True
    )
    agreement_id: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    rows_deleted: Mapped[int] = mapped_column(Integer)
    chunks: Mapped[int] = mapped_column(Integer)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def _withdrawal(row: BulkWithdrawalRow) -> BulkWithdrawal:
    return BulkWithdrawal(
        withdrawal_id=row.withdrawal_id,
        intent_id=row.intent_id,
        kind=row.kind,
        reason_code=row.reason_code,
        scope=row.scope,
        subject=row.subject,
        reference=row.reference,
        agreement_id=row.agreement_id,
        requested_at=row.requested_at,
        completed_at=row.completed_at,
        detail=row.detail,
        closes_at=row.closes_at,
    )


def record_bulk_withdrawal(
    session: Session,
    *,
    kind: str,
    scope: str,
    subject: str,
    reference: str,
    agreement_id: str | None,
    detail: str,
    at: datetime,
    closes_at: datetime | None = None,
) -> BulkWithdrawal:
    """The intent (source `bulk`) and the withdrawal, in the caller's transaction (flushed)."""
    intent = RevocationIntentRow(
        source="bulk", detail=f"{kind}:{reference}"[:128], effective_at=at, requested_at=at
    )
    session.add(intent)
    session.flush()
    row = BulkWithdrawalRow(
        intent_id=intent.intent_id,
        kind=kind,
        reason_code=BULK_REASONS[kind],
        scope=scope,
        subject=subject[:200],
        reference=reference[:200],
        agreement_id=agreement_id,
        detail=detail,
        requested_at=at,
        closes_at=closes_at,
    )
    session.add(row)
    session.flush()
    return _withdrawal(row)


def pending_withdrawals(
    session: Session, agreement_id: str | None = None, now: datetime | None = None
) -> list[BulkWithdrawal]:
    """Bulk withdrawals not completed yet, oldest first (those reaching `agreement_id` when given;
    those requested by `now` when given — an order effective later waits for its instant)."""
    query = select(BulkWithdrawalRow).where(BulkWithdrawalRow.completed_at.is_(None))
    if now is not None:
        query = query.where(BulkWithdrawalRow.requested_at <= now)
    if agreement_id is not None:
        query = query.where(
            or_(BulkWithdrawalRow.agreement_id.is_(None), BulkWithdrawalRow.agreement_id == agreement_id)
        )
    return [_withdrawal(r) for r in session.scalars(query.order_by(BulkWithdrawalRow.withdrawal_id))]


def list_withdrawals(session: Session) -> list[BulkWithdrawal]:
    rows = session.scalars(select(BulkWithdrawalRow).order_by(BulkWithdrawalRow.withdrawal_id))
    return [_withdrawal(r) for r in rows]


def get_withdrawal_by_intent(session: Session, intent_id: int) -> BulkWithdrawal | None:
    row = session.scalars(select(BulkWithdrawalRow).where(BulkWithdrawalRow.intent_id == intent_id)).first()
    return _withdrawal(row) if row is not None else None


def _progress(row: BulkDeliveryRow) -> BulkProgress:
    return BulkProgress(row.withdrawal_id, row.agreement_id, row.rows_deleted, row.chunks, row.completed_at)


def progress_of(session: Session, withdrawal_id: int) -> list[BulkProgress]:
    rows = session.scalars(
        select(BulkDeliveryRow)
        .where(BulkDeliveryRow.withdrawal_id == withdrawal_id)
        .order_by(BulkDeliveryRow.agreement_id)
    )
    return [_progress(r) for r in rows]


def count_chunk(session: Session, withdrawal_id: int, agreement_id: str, rows: int) -> BulkProgress:
    """Add one committed chunk's rows (in the transaction that records the chunk's release)."""
    row = session.get(BulkDeliveryRow, (withdrawal_id, agreement_id))
    if row is None:
        row = BulkDeliveryRow(
            withdrawal_id=withdrawal_id,
            agreement_id=agreement_id,
            rows_deleted=0,
            chunks=0,
            completed_at=None,
        )
        session.add(row)
    row.rows_deleted += rows
    row.chunks += 1
    session.flush()
    return _progress(row)


def complete_delivery(session: Session, withdrawal_id: int, agreement_id: str, at: datetime) -> None:
    row = session.get(BulkDeliveryRow, (withdrawal_id, agreement_id))
    if row is None:
        row = BulkDeliveryRow(
            withdrawal_id=withdrawal_id, agreement_id=agreement_id, rows_deleted=0, chunks=0, completed_at=at
        )
        session.add(row)
    row.completed_at = at
    session.flush()


def complete_withdrawal(session: Session, withdrawal_id: int, at: datetime) -> None:
    """Mark the withdrawal and its intent done (every agreement it reaches has its delivery)."""
    row = session.get(BulkWithdrawalRow, withdrawal_id)
    if row is None:
        raise KeyError(withdrawal_id)
    row.completed_at = at
    intent = session.get(RevocationIntentRow, row.intent_id)
    if intent is not None:
        intent.processed_at = at
    session.flush()


def delivered_to(session: Session, withdrawal_ids: Sequence[int]) -> set[tuple[int, str]]:
    """(withdrawal, agreement) pairs whose delivery is complete."""
    if not withdrawal_ids:
        return set()
    rows = session.execute(
        select(BulkDeliveryRow.withdrawal_id, BulkDeliveryRow.agreement_id).where(
            BulkDeliveryRow.withdrawal_id.in_(list(withdrawal_ids)), BulkDeliveryRow.completed_at.is_not(None)
        )
    ).all()
    return {(w, a) for w, a in rows}


def share_closings(session: Session) -> dict[str, datetime]:
    """Terminated agreements' shares and when each closes (the latest termination's deadline)."""
    rows = session.execute(
        select(BulkWithdrawalRow.agreement_id, BulkWithdrawalRow.closes_at).where(
            BulkWithdrawalRow.kind.in_(("termination", "term_end")), BulkWithdrawalRow.closes_at.is_not(None)
        )
    ).all()
    return {a: c for a, c in rows if a is not None and c is not None}
