"""Platform events in the store: recorded once (idempotent by id) with their revocation intent, in the
caller's transaction; read back in event time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import BigInteger, Index, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.platform.events import PlatformEvent
from datalease.revocation.model import RecordedEvent
from datalease.store.models import Base, UTCDateTime
from datalease.store.revocation import RevocationIntentRow


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


class EventConflictError(ValueError):
    """An event id already recorded with different content."""


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
