"""Regulator orders in the store: one row per order, its YAML text, and when it was lifted."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.policy.model import RegulatorOrder
from datalease.store.models import Base, UTCDateTime


class RegulatorOrderRow(Base):
    """A regulator's order as applied (`order apply`); lifted_at set by `order lift`."""

    __tablename__ = "regulator_orders"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issued_by: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(200))
    regions: Mapped[str] = mapped_column(Text)  # JSON list
    countries: Mapped[str] = mapped_column(Text)  # JSON list
    categories: Mapped[str] = mapped_column(Text)  # JSON list
    purposes: Mapped[str] = mapped_column(Text)  # JSON list
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    until_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str] = mapped_column(Text)
    source_text: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _order(row: RegulatorOrderRow) -> RegulatorOrder:
    return RegulatorOrder(
        order_id=row.order_id,
        issued_by=row.issued_by,
        reference=row.reference,
        regions=tuple(json.loads(row.regions)),
        countries=tuple(json.loads(row.countries)),
        categories=tuple(json.loads(row.categories)),
        purposes=tuple(json.loads(row.purposes)),
        effective=row.effective_at,
        until=row.until_at,
        lifted_at=row.lifted_at,
        note=row.note,
    )


def add_order(session: Session, order: RegulatorOrder, source_text: str, at: datetime) -> None:
    """Insert the order (flushed, not committed); the caller checked its id is new."""
    session.add(
        RegulatorOrderRow(
            order_id=order.order_id,
            issued_by=order.issued_by,
            reference=order.reference,
            regions=json.dumps(list(order.regions)),
            countries=json.dumps(list(order.countries)),
            categories=json.dumps(list(order.categories)),
            purposes=json.dumps(list(order.purposes)),
            effective_at=order.effective,
            until_at=order.until,
            lifted_at=None,
            note=order.note,
            source_text=source_text,
            recorded_at=at,
        )
    )
    session.flush()


def get_order(session: Session, order_id: str) -> RegulatorOrder | None:
    row = session.get(RegulatorOrderRow, order_id)
    return _order(row) if row is not None else None


def list_orders(session: Session) -> list[RegulatorOrder]:
    rows = session.scalars(select(RegulatorOrderRow).order_by(RegulatorOrderRow.effective_at))
    return [_order(r) for r in rows]


def lift_order(session: Session, order_id: str, at: datetime) -> None:
    row = session.get(RegulatorOrderRow, order_id)
    if row is None:
        raise KeyError(order_id)
    row.lifted_at = at
    session.flush()
