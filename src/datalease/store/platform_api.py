"""Scoped API tokens and the stored answers of idempotent platform API writes. The caller owns the
session and its transaction.

A token is kept only as the sha256 of its full text; its id (a prefix of the text) finds the row.
An idempotency key is kept with the sha256 of the request it came with and the answer given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Integer, Select, String, Text, bindparam, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.store.models import Base, ConsentCurrentRow, ConsentEventRow, UTCDateTime


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiIdempotencyRow(Base):
    __tablename__ = "api_idempotency"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    answer: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    name: str
    scopes: tuple[str, ...]
    token_sha256: str
    created_at: datetime
    revoked_at: datetime | None


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(
        row.token_id, row.name, tuple(row.scopes.split()), row.token_sha256, row.created_at, row.revoked_at
    )


def add_api_token(
    session: Session, token_id: str, name: str, scopes: tuple[str, ...], digest: str, now: datetime
) -> ApiToken:
    row = ApiTokenRow(
        token_id=token_id, name=name, scopes=" ".join(scopes), token_sha256=digest, created_at=now
    )
    session.add(row)
    session.flush()
    return _token(row)


def find_api_token(session: Session, token_id: str) -> ApiToken | None:
    row = session.get(ApiTokenRow, token_id)
    return None if row is None else _token(row)


def list_api_tokens(session: Session) -> list[ApiToken]:
    return [_token(r) for r in session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.created_at))]


def revoke_api_token(session: Session, token_id: str, now: datetime) -> ApiToken | None:
    row = session.get(ApiTokenRow, token_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return _token(row)


@dataclass(frozen=True)
class StoredAnswer:
    request_sha256: str
    status: int
    answer: str


def find_answer(session: Session, key: str) -> StoredAnswer | None:
    row = session.get(ApiIdempotencyRow, key)
    return None if row is None else StoredAnswer(row.request_sha256, row.status, row.answer)


def save_answer(
    session: Session, key: str, request_sha256: str, status: int, answer: str, now: datetime
) -> None:
    session.add(
        ApiIdempotencyRow(
            idempotency_key=key, request_sha256=request_sha256, status=status, answer=answer, created_at=now
        )
    )
    session.flush()


def event_seqs(session: Session, event_ids: list[str]) -> dict[str, int]:
    """The seq of each stored event among `event_ids`."""
    table = ConsentEventRow.__table__
    found: dict[str, int] = {}
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        for event_id, seq in session.execute(
            select(table.c.event_id, table.c.seq).where(table.c.event_id.in_(chunk))
        ):
            found[str(event_id)] = int(seq)
    return found


def _latest_settings_query() -> Select[int, str, bool]:
    row = ConsentEventRow
    rank = (
        func.row_number()
        .over(partition_by=(row.user_id, row.key), order_by=(row.at.desc(), row.seq.desc()))
        .label("rank")
    )
    ranked = (
        select(row.user_id, row.key, row.value, rank)
        .where(row.user_id.in_(bindparam("users", expanding=True)), row.at <= bindparam("until"))
        .subquery()
    )
    query: Select[int, str, bool] = select(ranked.c.user_id, ranked.c.key, ranked.c.value).where(
        ranked.c.rank == 1
    )
    return query


# Built once: SQLAlchemy then reuses their compiled forms (a decision reads them on every request).
_LATEST_SETTINGS: Final = _latest_settings_query()
_CURRENT_SETTINGS: Final = select(
    ConsentCurrentRow.user_id,
    ConsentCurrentRow.key,
    ConsentCurrentRow.value,
    (ConsentCurrentRow.at <= bindparam("until")).label("settled"),  # compared in SQL: no instant parsed
).where(ConsentCurrentRow.user_id.in_(bindparam("users", expanding=True)))
CHUNK: Final = 500


def consent_of_users(session: Session, user_ids: list[int], until: datetime) -> dict[int, dict[str, bool]]:
    """Each user's explicit settings in effect at `until` (per key the event with the greatest
    `(at, seq)` among those with `at <= until`, as `ConsentLedger.state_at`), in chunked IN queries.

    From `consent_current` (the latest event of each setting, one row per key) when every latest
    event of the user is at or before `until` — the usual case, `until` being now — and otherwise
    from the events (the database picks the latest per key before `until`): a window over every
    event of a person costs ~10× more (a 10,000-record batch with settings: ~110 ms of ~160)."""
    found: dict[int, dict[str, bool]] = {u: {} for u in user_ids}
    later: set[int] = set()  # a setting of theirs changes after `until`
    connection = session.connection()
    for start in range(0, len(user_ids), CHUNK):
        rows = connection.execute(
            _CURRENT_SETTINGS, {"users": user_ids[start : start + CHUNK], "until": until}
        )
        for user_id, key, value, settled in rows:
            if settled:
                found[int(user_id)][str(key)] = bool(value)
            else:
                later.add(int(user_id))
    asked_again = sorted(later)
    for start in range(0, len(asked_again), CHUNK):
        chunk = asked_again[start : start + CHUNK]
        for user_id in chunk:
            found[user_id] = {}
        for user_id, key, value in connection.execute(_LATEST_SETTINGS, {"users": chunk, "until": until}):
            found[int(user_id)][str(key)] = bool(value)
    return found
