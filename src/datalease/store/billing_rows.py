"""The business's tables: issued invoices and credit notes, payout runs, their funds and lines.

All append-only (migration 0009's triggers refuse UPDATE and DELETE, and TRUNCATE on PostgreSQL):
an issued invoice is corrected by a credit note, a payout run is final. Money is kept as exact
decimal text (SQLite has no exact decimal type); record-days as integer row-microseconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from datalease.store.licensing import NAME_LENGTH
from datalease.store.models import Base, UTCDateTime

MONEY_LENGTH: Final = 40
NUMBER_LENGTH: Final = 16
BILLING_TABLES: Final = ("invoices", "payout_runs", "payout_funds", "payout_lines")


class InvoiceRow(Base):
    __tablename__ = "invoices"

    number: Mapped[str] = mapped_column(String(NUMBER_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    agreement_id: Mapped[str] = mapped_column(String(NAME_LENGTH), ForeignKey("agreements.agreement_id"))
    partner: Mapped[str] = mapped_column(String(NAME_LENGTH))
    period: Mapped[str] = mapped_column(String(7))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[str] = mapped_column(String(MONEY_LENGTH))
    refers_to: Mapped[str | None] = mapped_column(
        String(NUMBER_LENGTH), ForeignKey("invoices.number"), nullable=True
    )
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("kind IN ('invoice', 'credit_note')", name="ck_invoices_kind"),
        Index("ix_invoices_agreement_period", "agreement_id", "period"),
    )


class PayoutRunRow(Base):
    __tablename__ = "payout_runs"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    minimum: Mapped[str] = mapped_column(String(MONEY_LENGTH))


class PayoutFundRow(Base):
    __tablename__ = "payout_funds"

    period: Mapped[str] = mapped_column(String(7), ForeignKey("payout_runs.period"), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    revenue: Mapped[str] = mapped_column(String(MONEY_LENGTH))
    share: Mapped[str] = mapped_column(String(MONEY_LENGTH))
    fund: Mapped[str] = mapped_column(String(MONEY_LENGTH))
    row_micros: Mapped[str] = mapped_column(String(MONEY_LENGTH))  # may exceed 64 bits
    people: Mapped[int] = mapped_column(BigInteger)


class PayoutLineRow(Base):
    __tablename__ = "payout_lines"

    period: Mapped[str] = mapped_column(String(7), ForeignKey("payout_runs.period"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    earned: Mapped[str] = mapped_column(String(MONEY_LENGTH))
    carried_in: Mapped[str] = mapped_column(String(MONEY_LENGTH))
    paid: Mapped[str] = mapped_column(String(MONEY_LENGTH))
    carried_out: Mapped[str] = mapped_column(String(MONEY_LENGTH))
    row_micros: Mapped[int] = mapped_column(BigInteger)
    agreements: Mapped[str] = mapped_column(Text)  # JSON: agreement id → {row_micros, earned}

    __table_args__ = (Index("ix_payout_lines_user", "user_id"),)
