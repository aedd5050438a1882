"""Revocation in the store: platform events, the revocation outbox, deliveries and forget entries.

The outbox (`revocation_intents`) is written in the same transaction as what caused it: the consent
ledger's append inserts intents for revoking settings with one INSERT … SELECT over the rows it just
appended (`OUTBOX_FROM_CONSENT`), and a platform event is stored with its intent by `record_event`.
The worker marks an intent processed in the transaction that pins the deletes it caused.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.platform.events import PlatformEvent
from datalease.policy.vocabulary import (
    CATEGORY_KEY_PREFIX,
    MASTER_KEY,
    PARTNER_BLOCK_PREFIX,
    PURPOSE_KEY_PREFIX,
)
from datalease.store.licensing import NAME_LENGTH
from datalease.store.models import Base, UTCDateTime


class PlatformEventRow(Base):
    """A platform event as received (post deleted, account deleted, …); `applied_at` once in the lake."""

    __tablename__ = "platform_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    post_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_platform_events_pending", "applied_at"),
        Index("ix_platform_events_user", "user_id", "occurred_at"),
        Index("ix_platform_events_post", "post_id"),
    )


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

    __table_args__ = (Index("ix_revocation_deliveries_agreement", "agreement_id", "intent_id"),)


class RevocationFailureRow(Base):
    """An agreement whose revocation deliveries keep failing: since when, how often, the last error."""

    __tablename__ = "revocation_failures"

    agreement_id: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)


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


# A revoking setting: a share/purpose switched off, or a partner blocked. The INSERT runs inside the
# ledger's append transaction over the seq range it appended (:first, :last).
REVOKING_SETTING: Final = (
    f"((key = '{MASTER_KEY}' OR key LIKE '{CATEGORY_KEY_PREFIX}%' OR key LIKE '{PURPOSE_KEY_PREFIX}%') "
    f"AND value = false) OR (key LIKE '{PARTNER_BLOCK_PREFIX}%' AND value = true)"
)
OUTBOX_FROM_CONSENT: Final = (
    "INSERT INTO revocation_intents (source, consent_seq, user_id, detail, effective_at, requested_at) "
    "SELECT 'consent', seq, user_id, key, at, recorded_at FROM consent_events "
    f"WHERE seq BETWEEN :first AND :last AND ({REVOKING_SETTING})"
)


# --- platform events ------------------------------------------------------------------------------


class EventConflictError(ValueError):
    """An event id already recorded with different content."""


@dataclass(frozen=True)
class RecordedEvent:
    event_id: str
    event: PlatformEvent
    occurred_at: datetime
    recorded_at: datetime
    created: bool  # False: an identical event with this id was already recorded (a retry)


def record_event(session: Session, event: PlatformEvent, now: datetime) -> RecordedEvent:
    """Store the event and, when it can withdraw data, its revocation intent — in the caller's
    transaction (flushed, not committed). Recording the same id again is a no-op."""
    event_id = event.event_id or f"evt-{uuid.uuid4().hex}"
    stored = session.get(PlatformEventRow, event_id)
    if stored is not None:
        previous = _as_event(stored)
        if not event.same_as(previous):
            raise EventConflictError(
                f"event id {event_id!r} was already recorded as a {stored.type} event with different content"
            )
        return RecordedEvent(event_id, previous, stored.occurred_at, stored.recorded_at, created=False)
    occurred = event.occurred_at or now
    session.add(
        PlatformEventRow(
            event_id=event_id,
            type=event.type,
            user_id=event.user_id,
            post_id=event.post_id,
            country=event.country,
            occurred_at=occurred,
            recorded_at=now,
            applied_at=None,
        )
    )
    if event.reason_code is not None:
        session.add(
            RevocationIntentRow(
                source="event",
                event_id=event_id,
                user_id=event.user_id,
                post_id=event.post_id,
                detail=event.type,
                effective_at=occurred,
                requested_at=now,
            )
        )
    session.flush()
    return RecordedEvent(
        event_id, replace(event, event_id=event_id, occurred_at=occurred), occurred, now, True
    )


def _as_event(row: PlatformEventRow) -> PlatformEvent:
    return PlatformEvent(row.event_id, row.type, row.user_id, row.post_id, row.country, row.occurred_at)


def due_events(session: Session, now: datetime) -> list[PlatformEvent]:
    """Events not yet applied to the lake whose time has come (a future-dated event waits)."""
    rows = session.scalars(
        select(PlatformEventRow)
        .where(PlatformEventRow.applied_at.is_(None), PlatformEventRow.occurred_at <= now)
        .order_by(PlatformEventRow.occurred_at, PlatformEventRow.recorded_at, PlatformEventRow.event_id)
    )
    return [_as_event(r) for r in rows]


def events_in_effect(
    session: Session, now: datetime, *, user_ids: Sequence[int] = (), post_ids: Sequence[int] = ()
) -> list[PlatformEvent]:
    """Every recorded event about these users (or posts) that has taken effect by `now`, in event
    time: ordered by when it happened, then when it was recorded — never by arrival alone."""
    found: dict[str, PlatformEventRow] = {}
    for column, ids in ((PlatformEventRow.user_id, user_ids), (PlatformEventRow.post_id, post_ids)):
        unique = sorted(set(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = session.scalars(
                select(PlatformEventRow).where(column.in_(chunk), PlatformEventRow.occurred_at <= now)
            )
            found.update((r.event_id, r) for r in rows)
    ordered = sorted(found.values(), key=lambda r: (r.occurred_at, r.recorded_at, r.event_id))
    return [_as_event(r) for r in ordered]


def mark_events_applied(session: Session, event_ids: Sequence[str], at: datetime) -> None:
    if event_ids:
        session.execute(
            update(PlatformEventRow)
            .where(PlatformEventRow.event_id.in_(list(event_ids)))
            .values(applied_at=at)
        )


def deleted_account(session: Session, user_id: int) -> bool:
    """A user_delete event for this account is already recorded (perhaps not yet in the lake)."""
    query = select(PlatformEventRow.event_id).where(
        PlatformEventRow.user_id == user_id, PlatformEventRow.type == "user_delete"
    )
    return session.execute(query.limit(1)).first() is not None


# --- intents --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Intent:
    intent_id: int
    source: str
    user_id: int | None
    post_id: int | None
    detail: str
    effective_at: datetime
    requested_at: datetime


def _intent(row: RevocationIntentRow) -> Intent:
    return Intent(
        row.intent_id, row.source, row.user_id, row.post_id, row.detail, row.effective_at, row.requested_at
    )


def undelivered_intents(session: Session, agreement_id: str, now: datetime, limit: int) -> list[Intent]:
    """Intents in effect that this agreement has not had delivered yet, oldest first. Asked per
    agreement, so an agreement whose deliveries fail never holds back the others."""
    delivered = select(RevocationDeliveryRow.intent_id).where(
        RevocationDeliveryRow.agreement_id == agreement_id,
        RevocationDeliveryRow.intent_id == RevocationIntentRow.intent_id,
    )
    rows = session.scalars(
        select(RevocationIntentRow)
        .where(
            RevocationIntentRow.processed_at.is_(None),
            RevocationIntentRow.effective_at <= now,
            ~delivered.exists(),
        )
        .order_by(RevocationIntentRow.intent_id)
        .limit(limit)
    )
    return [_intent(r) for r in rows]


def mark_fully_delivered(session: Session, agreement_ids: Sequence[str], now: datetime) -> int:
    """Mark processed every pending intent in effect that each of `agreement_ids` has had delivered
    (one UPDATE); returns how many."""
    wanted = sorted(set(agreement_ids))
    condition = [RevocationIntentRow.processed_at.is_(None), RevocationIntentRow.effective_at <= now]
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


# --- forget entries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForgetEntry:
    forget_id: str
    agreement_id: str
    partner: str
    intent_id: int
    release_id: int
    scope: str
    subject_key: str
    rows: int
    reason_code: str
    requested_at: datetime
    delivered_at: datetime
    deadline: datetime
    acked_at: datetime | None
    certificate: str | None

    def state(self, now: datetime) -> str:
        if self.acked_at is not None:
            return "acknowledged"
        return "overdue" if now > self.deadline else "pending"


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


def last_intent_id(session: Session) -> int:
    return int(
        session.execute(select(func.coalesce(func.max(RevocationIntentRow.intent_id), 0))).scalar_one()
    )


def intents_after(session: Session, intent_id: int) -> list[Intent]:
    rows = session.scalars(
        select(RevocationIntentRow)
        .where(RevocationIntentRow.intent_id > intent_id)
        .order_by(RevocationIntentRow.intent_id)
    )
    return [_intent(r) for r in rows]


# --- deliveries that keep failing ------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryFailure:
    agreement_id: str
    since: datetime
    last_at: datetime
    attempts: int
    error: str


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
