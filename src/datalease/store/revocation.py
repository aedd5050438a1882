"""Revocation in the store: the revocation outbox (intents), deliveries, and failing deliveries.

The outbox (`revocation_intents`) is written in the same transaction as what caused it: the consent
ledger's append inserts intents for revoking settings with one INSERT … SELECT over the rows it just
appended (`OUTBOX_FROM_CONSENT`), and a platform event is stored with its intent by `record_event`.
The worker marks an intent processed in the transaction that pins the deletes it caused.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.policy.vocabulary import REVOKING_SETTINGS
from datalease.revocation.model import DeliveryFailure, Intent
from datalease.store.licensing import NAME_LENGTH
from datalease.store.models import Base, UTCDateTime


class RevocationIntentRow(Base):
    """Something that may withdraw rows from partners: a consent change or a platform event."""

    __tablename__ = "revocation_intents"

    intent_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16))  # consent | event
    consent_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    post_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    detail: Mapped[str] = mapped_column(String(128))  # the setting key or the event type
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("consent_seq", name="uq_revocation_intents_consent_seq"),
        UniqueConstraint("event_id", name="uq_revocation_intents_event_id"),
        Index("ix_revocation_intents_pending", "processed_at", "intent_id"),
    )


class RevocationDeliveryRow(Base):
    """What one intent did to one agreement, committed with the release that pinned it."""

    __tablename__ = "revocation_deliveries"

    intent_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("revocation_intents.intent_id"), primary_key=True
    )
    agreement_id: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    release_id: Mapped[int] = mapped_column(Integer, ForeignKey("releases.release_id"))
    forget_entries: Mapped[int] = mapped_column(Integer)
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_revocation_deliveries_agreement", "agreement_id", "intent_id"),
        Index("ix_revocation_deliveries_release", "agreement_id", "release_id"),  # migration 0015
    )


class RevocationFailureRow(Base):
    """An agreement whose revocation deliveries keep failing: since when, how often, the last error."""

    __tablename__ = "revocation_failures"

    agreement_id: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)


def _revoking_setting_sql() -> str:
    """SQL true for a consent_events row that withdraws data (generated from the vocabulary)."""
    parts = []
    for family in REVOKING_SETTINGS:
        test = f"key LIKE '{family.key}%'" if family.prefix else f"key = '{family.key}'"
        parts.append(f"({test} AND value = {'true' if family.value else 'false'})")
    return " OR ".join(parts)


# The INSERT runs inside the ledger's append transaction over the seq range it appended (:first, :last).
REVOKING_SETTING: Final = _revoking_setting_sql()
OUTBOX_FROM_CONSENT: Final = (
    "INSERT INTO revocation_intents (source, consent_seq, user_id, detail, effective_at, requested_at) "
    "SELECT 'consent', seq, user_id, key, at, recorded_at FROM consent_events "
    f"WHERE seq BETWEEN :first AND :last AND ({REVOKING_SETTING})"
)


# --- intents --------------------------------------------------------------------------------------


def _intent(row: RevocationIntentRow) -> Intent:
    return Intent(
        row.intent_id, row.source, row.user_id, row.post_id, row.detail, row.effective_at, row.requested_at
    )


def claim_pending(session: Session, now: datetime, limit: int, *, skip_locked: bool) -> list[int]:
    """PostgreSQL: lock the pending intents in effect (oldest first) for this batch, in the session's
    open transaction, and return their ids. `skip_locked` passes over those another batch holds (the
    background workers); without it the claim waits for them (a build's batch, `revoke process`), and
    an intent that batch marked processed meanwhile drops out. FOR NO KEY UPDATE, not FOR UPDATE:
    recording a delivery takes FOR KEY SHARE on its intent (the foreign key), which FOR UPDATE would
    block — the batch would wait on its own claim."""
    query = (
        select(RevocationIntentRow.intent_id)
        .where(
            RevocationIntentRow.processed_at.is_(None),
            RevocationIntentRow.effective_at <= now,
            RevocationIntentRow.source != "bulk",  # revocation/bulk.py delivers those, chunk by chunk
        )
        .order_by(RevocationIntentRow.intent_id)
        .limit(limit)
        .with_for_update(key_share=True, skip_locked=skip_locked)
    )
    return [int(i) for i in session.scalars(query)]


def undelivered_intents(
    session: Session, agreement_id: str, now: datetime, limit: int, only: Sequence[int] | None = None
) -> list[Intent]:
    """Intents in effect that this agreement has not had delivered yet, oldest first (among `only`,
    the batch's claim, when given). Asked per agreement, so an agreement whose deliveries fail never
    holds back the others."""
    delivered = select(RevocationDeliveryRow.intent_id).where(
        RevocationDeliveryRow.agreement_id == agreement_id,
        RevocationDeliveryRow.intent_id == RevocationIntentRow.intent_id,
    )
    condition = [
        RevocationIntentRow.processed_at.is_(None),
        RevocationIntentRow.effective_at <= now,
        RevocationIntentRow.source != "bulk",  # delivered by revocation/bulk.py
        ~delivered.exists(),
    ]
    if only is not None:
        condition.append(RevocationIntentRow.intent_id.in_(list(only)))
    rows = session.scalars(
        select(RevocationIntentRow).where(*condition).order_by(RevocationIntentRow.intent_id).limit(limit)
    )
    return [_intent(r) for r in rows]


def mark_fully_delivered(
    session: Session, agreement_ids: Sequence[str], now: datetime, only: Sequence[int] | None = None
) -> int:
    """Mark processed every pending intent in effect (among `only`, the batch's claim, when given)
    that each of `agreement_ids` has had delivered (one UPDATE); returns how many."""
    wanted = sorted(set(agreement_ids))
    condition = [
        RevocationIntentRow.processed_at.is_(None),
        RevocationIntentRow.effective_at <= now,
        RevocationIntentRow.source != "bulk",  # revocation/bulk.py marks its own
    ]
    if only is not None:
        condition.append(RevocationIntentRow.intent_id.in_(list(only)))
    if wanted:
        deliveries = (
            select(func.count())
            .select_from(RevocationDeliveryRow)
            .where(
                RevocationDeliveryRow.intent_id == RevocationIntentRow.intent_id,
                RevocationDeliveryRow.agreement_id.in_(wanted),
            )
            .scalar_subquery()
        )
        condition.append(deliveries == len(wanted))
    result = session.execute(update(RevocationIntentRow).where(*condition).values(processed_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def delivery_times(session: Session, agreement_id: str) -> list[tuple[datetime, datetime]]:
    """(requested, delivered) of every intent delivered to the agreement."""
    rows = session.execute(
        select(RevocationIntentRow.requested_at, RevocationDeliveryRow.delivered_at)
        .join(RevocationDeliveryRow, RevocationDeliveryRow.intent_id == RevocationIntentRow.intent_id)
        .where(RevocationDeliveryRow.agreement_id == agreement_id)
    ).all()
    return [(requested, delivered) for requested, delivered in rows]


def count_pending_intents(session: Session) -> int:
    query = (
        select(func.count())
        .select_from(RevocationIntentRow)
        .where(RevocationIntentRow.processed_at.is_(None))
    )
    return int(session.execute(query).scalar_one())


def delivered_agreements(session: Session, intent_ids: Sequence[int]) -> set[tuple[int, str]]:
    """(intent, agreement) pairs already delivered: a restarted worker does not deliver them twice."""
    if not intent_ids:
        return set()
    rows = session.execute(
        select(RevocationDeliveryRow.intent_id, RevocationDeliveryRow.agreement_id).where(
            RevocationDeliveryRow.intent_id.in_(list(intent_ids))
        )
    )
    return {(int(i), str(a)) for i, a in rows}


def record_delivery(
    session: Session, intent_id: int, agreement_id: str, release_id: int, forget_entries: int, at: datetime
) -> None:
    session.add(
        RevocationDeliveryRow(
            intent_id=intent_id,
            agreement_id=agreement_id,
            release_id=release_id,
            forget_entries=forget_entries,
            delivered_at=at,
        )
    )


def mark_processed(session: Session, intent_ids: Sequence[int], at: datetime) -> None:
    if intent_ids:
        session.execute(
            update(RevocationIntentRow)
            .where(
                RevocationIntentRow.intent_id.in_(list(intent_ids)),
                RevocationIntentRow.processed_at.is_(None),
            )
            .values(processed_at=at)
        )


def last_intent_id(session: Session) -> int:
    return int(
        session.execute(select(func.coalesce(func.max(RevocationIntentRow.intent_id), 0))).scalar_one()
    )


def intents_late_for(
    session: Session, agreement_id: str, *, after_id: int, after_release: int
) -> list[Intent]:
    """The intents a build of the agreement, diffing against release `after_release`, must hold back:
    recorded after intent `after_id` (read before the build's instant, so its consent snapshot may not
    know them), or delivered to the agreement after that release (the build read the lake before the
    delivery's events were applied; and two servers' transactions may commit event intents out of id
    order, so an id at or below the mark is no proof the build saw it). Bulk intents are delivered by
    revocation/bulk.py."""
    delivered_since = select(RevocationDeliveryRow.intent_id).where(
        RevocationDeliveryRow.agreement_id == agreement_id, RevocationDeliveryRow.release_id > after_release
    )
    rows = session.scalars(
        select(RevocationIntentRow)
        .where(
            RevocationIntentRow.source != "bulk",
            or_(
                RevocationIntentRow.intent_id > after_id,
                RevocationIntentRow.intent_id.in_(delivered_since),
            ),
        )
        .order_by(RevocationIntentRow.intent_id)
    )
    return [_intent(r) for r in rows]


# --- deliveries that keep failing ------------------------------------------------------------------


MAX_ERROR_CHARS: Final = 2000


def record_failure(session: Session, agreement_id: str, error: str, at: datetime) -> DeliveryFailure:
    row = session.get(RevocationFailureRow, agreement_id)
    text = error[:MAX_ERROR_CHARS]
    if row is None:
        row = RevocationFailureRow(agreement_id=agreement_id, since=at, last_at=at, attempts=1, error=text)
        session.add(row)
    else:
        row.last_at, row.attempts, row.error = at, row.attempts + 1, text
    session.flush()
    return _failure(row)


def clear_failure(session: Session, agreement_id: str) -> None:
    row = session.get(RevocationFailureRow, agreement_id)
    if row is not None:
        session.delete(row)


def delivery_failures(session: Session) -> list[DeliveryFailure]:
    rows = session.scalars(select(RevocationFailureRow).order_by(RevocationFailureRow.since))
    return [_failure(r) for r in rows]


def _failure(row: RevocationFailureRow) -> DeliveryFailure:
    return DeliveryFailure(row.agreement_id, row.since, row.last_at, row.attempts, row.error)
