"""The notice outbox: which person was notified of which policy version, when and through which channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.store.models import Base, UTCDateTime


class NoticeDeliveryRow(Base):
    __tablename__ = "notice_deliveries"

    delivery_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    version_id: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32))
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_notice_deliveries_user", "user_id", "version_id", "delivered_at"),)


def add_delivery(
    session: Session,
    user_id: int,
    version_id: str,
    channel: str,
    delivered_at: datetime,
    recorded_at: datetime,
) -> int:
    row = NoticeDeliveryRow(
        user_id=user_id,
        version_id=version_id,
        channel=channel,
        delivered_at=delivered_at,
        recorded_at=recorded_at,
    )
    session.add(row)
    session.flush()
    return row.delivery_id


def first_deliveries(session: Session, user_ids: list[int] | None = None) -> dict[int, dict[str, datetime]]:
    """user -> version -> the first delivery's time (every user when `user_ids` is None)."""
    stmt = select(
        NoticeDeliveryRow.user_id, NoticeDeliveryRow.version_id, func.min(NoticeDeliveryRow.delivered_at)
    ).group_by(NoticeDeliveryRow.user_id, NoticeDeliveryRow.version_id)
    if user_ids is not None:
        stmt = stmt.where(NoticeDeliveryRow.user_id.in_(user_ids))
    out: dict[int, dict[str, datetime]] = {}
    for user_id, version_id, first in session.execute(stmt):
        out.setdefault(int(user_id), {})[str(version_id)] = first
    return out
