"""Applied policy texts, newest last. The caller owns the session and its transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from datalease.store.models import PolicyRevision
from datalease.timeparse import as_utc, utc_now


def save_policy_revision(
    session: Session,
    name: str,
    source_text: str,
    sha256: str,
    applied_by: str,
    *,
    applied_at: datetime | None = None,
) -> int:
    """Store one applied policy text and return its id (flushed, not committed)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"sha256: expected 64 lowercase hex digits, got {sha256!r}")
    if not name.strip():
        raise ValueError("name: expected a non-empty policy name")
    if not applied_by.strip():
        raise ValueError("applied_by: expected who applied the policy, got an empty text")
    revision = PolicyRevision(
        name=name,
        source_text=source_text,
        sha256=sha256,
        applied_at=as_utc(applied_at) if applied_at is not None else utc_now(),
        applied_by=applied_by,
    )
    session.add(revision)
    session.flush()
    return revision.id


def latest_policy_revision(session: Session) -> PolicyRevision | None:
    """The most recently applied revision (highest id), or None before any policy was applied."""
    return session.scalars(select(PolicyRevision).order_by(PolicyRevision.id.desc()).limit(1)).first()


def latest_policy_revision_id(session: Session) -> int | None:
    """The id of the most recently applied revision (its text is not read), None before any."""
    found: int | None = session.scalar(select(func.max(PolicyRevision.id)))
    return found


def get_policy_revision(session: Session, revision_id: int) -> PolicyRevision | None:
    return session.get(PolicyRevision, revision_id)


def list_policy_revisions(session: Session) -> list[PolicyRevision]:
    """All revisions, oldest first."""
    return list(session.scalars(select(PolicyRevision).order_by(PolicyRevision.id)))
