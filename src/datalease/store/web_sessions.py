"""Server-side page sessions. The caller owns the session and its transaction.

The cookie holds a random session id; the store keeps only its sha256, who it is for, and when it
began, expires and ended, so that several stateless servers on one database share sessions and
signing out ends one at once everywhere. An operator's session also keeps the sha256 of the API
token it was opened with: rotating the token ends it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import BigInteger, CheckConstraint, Index, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.store.models import Base, UTCDateTime

ROLES: Final = ("user", "operator")


class WebSessionRow(Base):
    __tablename__ = "web_sessions"

    session_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    credential_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        CheckConstraint("role IN ('user', 'operator')", name="ck_web_sessions_role"),
        Index("ix_web_sessions_expires_at", "expires_at"),
    )


@dataclass(frozen=True)
class WebSession:
    role: str
    user_id: int | None
    credential_sha256: str | None
    expires_at: datetime


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


def start_session(
    session: Session,
    *,
    role: str,
    user_id: int | None,
    credential_sha256: str | None,
    now: datetime,
    lifetime: timedelta,
) -> str:
    """A new session (flushed, not committed); returns its id, which only the cookie holds. Sessions
    expired for a day are deleted on the way."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at < now - timedelta(days=1)))
    session_id = secrets.token_urlsafe(32)
    session.add(
        WebSessionRow(
            session_sha256=_digest(session_id),
            role=role,
            user_id=user_id,
            credential_sha256=credential_sha256,
            created_at=now,
            expires_at=now + lifetime,
            ended_at=None,
        )
    )
    session.flush()
    return session_id


def find_session(session: Session, session_id: str, now: datetime) -> WebSession | None:
    """The live session with this id: not ended, not expired; None otherwise."""
    row = session.scalars(
        select(WebSessionRow).where(
            WebSessionRow.session_sha256 == _digest(session_id),
            WebSessionRow.ended_at.is_(None),
            WebSessionRow.expires_at > now,
        )
    ).first()
    if row is None:
        return None
    return WebSession(row.role, row.user_id, row.credential_sha256, row.expires_at)


def end_session(session: Session, session_id: str, now: datetime) -> None:
    """End it (idempotent: an ended session keeps its first end time)."""
    session.execute(
        update(WebSessionRow)
        .where(WebSessionRow.session_sha256 == _digest(session_id), WebSessionRow.ended_at.is_(None))
        .values(ended_at=now)
    )
