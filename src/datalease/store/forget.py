"""Forget entries in the store: one subject a partner must forget, and its acknowledgement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.revocation.model import ForgetEntry
from datalease.store.licensing import NAME_LENGTH
from datalease.store.models import Base, UTCDateTime


class ForgetEntryRow(Base):
    """One subject a partner must forget: keys only, with the deadline from the deletion SLA."""

    __tablename__ = "forget_entries"

    forget_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(NAME_LENGTH))
    partner: Mapped[str] = mapped_column(String(NAME_LENGTH))
    intent_id: Mapped[int] = mapped_column(Integer, ForeignKey("revocation_intents.intent_id"))
    release_id: Mapped[int] = mapped_column(Integer, ForeignKey("releases.release_id"))
    scope: Mapped[str] = mapped_column(String(16))  # user | post | like | repost | bookmark
    subject_key: Mapped[str] = mapped_column(String(80))
    rows: Mapped[int] = mapped_column(Integer)  # rows of the subject this delivery withdrew
    reason_code: Mapped[str] = mapped_column(String(40))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    certificate: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_forget_entries_agreement", "agreement_id", "acked_at"),
        Index("ix_forget_entries_subject", "subject_key"),
    )


def _forget(row: ForgetEntryRow) -> ForgetEntry:
    return ForgetEntry(
        row.forget_id,
        row.agreement_id,
        row.partner,
        row.intent_id,
        row.release_id,
        row.scope,
        row.subject_key,
        row.rows,
        row.reason_code,
        row.requested_at,
        row.delivered_at,
        row.deadline,
        row.acked_at,
        row.certificate,
    )


def add_forget_entries(session: Session, entries: Sequence[ForgetEntry]) -> None:
    """Insert entries not stored yet (their ids are deterministic, so a retry adds nothing)."""
    if not entries:
        return
    known = set(
        session.scalars(
            select(ForgetEntryRow.forget_id).where(
                ForgetEntryRow.forget_id.in_([e.forget_id for e in entries])
            )
        )
    )
    for entry in entries:
        if entry.forget_id not in known:
            session.add(ForgetEntryRow(**entry.__dict__))
            known.add(entry.forget_id)


def forget_entries(
    session: Session,
    *,
    agreement_id: str | None = None,
    partner: str | None = None,
    subject_keys: Sequence[str] | None = None,
    unacknowledged: bool = False,
) -> list[ForgetEntry]:
    query = select(ForgetEntryRow).order_by(ForgetEntryRow.delivered_at, ForgetEntryRow.forget_id)
    if agreement_id is not None:
        query = query.where(ForgetEntryRow.agreement_id == agreement_id)
    if partner is not None:
        query = query.where(ForgetEntryRow.partner == partner)
    if subject_keys is not None:
        query = query.where(ForgetEntryRow.subject_key.in_(list(subject_keys)))
    if unacknowledged:
        query = query.where(ForgetEntryRow.acked_at.is_(None))
    return [_forget(r) for r in session.scalars(query)]


class AckError(ValueError):
    """An acknowledgement that names entries the partner does not have."""


def acknowledge(
    session: Session, partner: str, forget_ids: Sequence[str], certificate: str | None, at: datetime
) -> tuple[int, int]:
    """Acknowledge the partner's entries; returns (newly acknowledged, already acknowledged).

    All ids must be the partner's own (else nothing is acknowledged); an earlier acknowledgement and
    its certificate are kept as they were.
    """
    ids = list(dict.fromkeys(forget_ids))
    rows = {
        r.forget_id: r
        for r in session.scalars(select(ForgetEntryRow).where(ForgetEntryRow.forget_id.in_(ids)))
    }
    foreign = [i for i in ids if i not in rows or rows[i].partner != partner]
    if foreign:
        raise AckError(f"ids: {len(foreign)} id(s) are not forget entries of {partner}, e.g. {foreign[0]!r}")
    fresh = [rows[i] for i in ids if rows[i].acked_at is None]
    for row in fresh:
        row.acked_at = at
        row.certificate = certificate
    return len(fresh), len(ids) - len(fresh)
