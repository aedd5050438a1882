"""SQLAlchemy models of the store: the consent ledger, its current-state table and policy revisions.

The schema itself is created by the Alembic migrations in `store/migrations`; these classes describe
it for queries and must stay in step with the latest migration (a test compares them).

Timestamps are aware UTC datetimes in Python. PostgreSQL keeps them as `timestamptz`; SQLite, which
has no date type, keeps fixed-width ISO-8601 text `YYYY-MM-DDTHH:MM:SS.ffffffZ`, which sorts in time
order as text and is also the form the consent hash chain encodes. Both round-trip to the microsecond.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

SOURCES: Final = ("user", "platform", "import", "signal")
GENESIS_HASH: Final = "0" * 64
CHAIN_HEAD_ID: Final = 1
SQLITE_TIME_WIDTH: Final = 27  # len("2024-11-15T10:00:00.000000Z")


def utc_text(value: datetime) -> str:
    """The fixed-width UTC text of an aware datetime: `2024-11-15T10:00:00.000000Z`."""
    if value.tzinfo is None:
        raise ValueError(f"{value!r}: expected a timezone-aware datetime")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_utc_text(text: str) -> datetime:
    """Inverse of `utc_text` (also accepts any ISO-8601 text with an offset)."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime: `timestamptz` on PostgreSQL, fixed-width ISO text on SQLite.

    Naive datetimes are refused rather than guessed; values come back aware, in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(SQLITE_TIME_WIDTH))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            if isinstance(value, date):
                value = datetime(value.year, value.month, value.day, tzinfo=UTC)
            else:
                raise TypeError(f"{value!r}: expected a timezone-aware datetime")
        if value.tzinfo is None:
            raise ValueError(f"{value!r}: expected a timezone-aware datetime, got a naive one")
        if dialect.name == "sqlite":
            return utc_text(value)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return parse_utc_text(value)
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        raise TypeError(f"unexpected stored timestamp {value!r}")


# SQLite makes a column a rowid alias only when its type is exactly INTEGER.
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class ConsentEventRow(Base):
    """One setting change. Append-only: triggers refuse UPDATE and DELETE.

    `seq` is the global order, assigned gap-free by the ledger while it holds the chain lock (a
    database sequence would leave gaps on rollback, and a gap must mean a deleted event).
    """

    __tablename__ = "consent_events"

    seq: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # what was shown and where (migration 0014; chain encoding 2): NULL for older events
    notice_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    notice_locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    surface: Mapped[str | None] = mapped_column(String(16), nullable=True)

    __table_args__ = (
        UniqueConstraint("event_id", name="uq_consent_events_event_id"),
        CheckConstraint(
            "source IN ('user', 'platform', 'import', 'signal')", name="ck_consent_events_source"
        ),
        CheckConstraint(
            "surface IS NULL OR surface IN ('settings_page', 'api', 'import', 'signal')",
            name="ck_consent_events_surface",
        ),
        CheckConstraint("seq >= 1", name="ck_consent_events_seq"),
        Index("ix_consent_events_user_key_at", "user_id", "key", "at"),
        Index("ix_consent_events_at", "at"),
    )


class ConsentCurrentRow(Base):
    """The latest event by (at, seq) of each (user_id, key), kept in the append's transaction.
    Triggers refuse a row that is not the latest event of its setting, and any DELETE."""

    __tablename__ = "consent_current"

    user_id: Mapped[int] = mapped_column(BigInteger, autoincrement=False)
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("consent_events.seq"))

    __table_args__ = (
        PrimaryKeyConstraint("user_id", "key", name="pk_consent_current"),
        {"sqlite_with_rowid": False},
    )


class ConsentChainHead(Base):
    """A single row (id = 1): the last appended seq and hash, and the digest of consent_current
    (`datalease.consent.digest`, as a signed 64-bit integer). Appends lock it and update it; readers
    and verify check it; triggers let an UPDATE only point it at the last event."""

    __tablename__ = "consent_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    current_digest: Mapped[int] = mapped_column(BigInteger, server_default="0")

    __table_args__ = (CheckConstraint("id = 1", name="ck_consent_chain_head_single_row"),)


class PolicyRevision(Base):
    """A policy text as applied: the exact source, its sha256, when and by whom."""

    __tablename__ = "policy_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    source_text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_by: Mapped[str] = mapped_column(String(200))

    __table_args__ = (Index("ix_policy_revisions_sha256", "sha256"),)


class Meta(Base):
    """Small key/value facts about the store (e.g. when it was created)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
