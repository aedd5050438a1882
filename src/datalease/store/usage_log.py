"""How far each sharing server's usage log (sharing/usagelog.py) is folded into `sharing_usage`.

The fold of a log's new lines and the move of its offset are one transaction, so a line is counted
once whoever folds it, and a crash between the two is impossible. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import BigInteger, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.sharing.model import Usage
from datalease.store.models import Base
from datalease.store.sharing import record_usage


class UsageLogRow(Base):
    __tablename__ = "sharing_usage_logs"

    log_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    folded_bytes: Mapped[int] = mapped_column(BigInteger)


def ensure_log(session: Session, name: str) -> None:
    """The offset row of a new log (so that a folder has a row to lock on PostgreSQL)."""
    if session.get(UsageLogRow, name) is None:
        session.add(UsageLogRow(log_name=name, folded_bytes=0))
        session.flush()


def folded_offset(session: Session, name: str) -> int:
    """The log's folded length, the row locked until the transaction ends (FOR UPDATE on PostgreSQL;
    SQLite callers hold the write lock from BEGIN IMMEDIATE)."""
    row = session.scalars(select(UsageLogRow).where(UsageLogRow.log_name == name).with_for_update()).first()
    if row is None:
        ensure_log(session, name)
        return 0
    return row.folded_bytes


def fold_lines(session: Session, name: str, usages: Iterable[tuple[Usage, datetime]], offset: int) -> None:
    for usage, at in usages:
        record_usage(session, usage, at)
    row = session.get(UsageLogRow, name)
    if row is None:
        session.add(UsageLogRow(log_name=name, folded_bytes=offset))
    else:
        row.folded_bytes = offset
    session.flush()
