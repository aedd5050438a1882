"""The business as plain data: invoice lines, drafts and issued documents; funds and payout runs.

Money is `Decimal` in whole cents. Record-days are kept exactly as row-microseconds (a row held for
one day is 86,400,000,000); `record_days()` shows them as days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

KIND_INVOICE: Final = "invoice"
KIND_CREDIT_NOTE: Final = "credit_note"
MICROS_PER_DAY: Final = 86_400_000_000


def record_days(row_micros: int) -> Decimal:
    """Row-microseconds as record-days, to four decimals (for showing; sums use the integers)."""
    return (Decimal(row_micros) / MICROS_PER_DAY).quantize(Decimal("0.0001"))


@dataclass(frozen=True)
class InvoiceLine:
    """One line: what was charged, how much of it, and the figures it comes from (`source`)."""

    description: str
    quantity: str  # "0.0849 contract years", "12,345 records", "17 queries"
    unit_price: Decimal
    amount: Decimal
    source: dict[str, Any] = field(hash=False)  # release ids and their rows, usage figures, term days


@dataclass(frozen=True)
class InvoiceDraft:
    """What an invoice (or a credit note) will say, before it is numbered."""

    kind: str
    agreement_id: str
    partner: str
    period: str
    currency: str
    lines: tuple[InvoiceLine, ...]
    refers_to: str | None = None  # a credit note's original invoice number

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


@dataclass(frozen=True)
class Invoice:
    """An issued invoice or credit note: numbered, hashed, immutable in the store."""

    number: str
    kind: str
    agreement_id: str
    partner: str
    period: str
    currency: str
    total: Decimal
    refers_to: str | None
    issued_at: datetime
    due_at: datetime
    body: str = field(repr=False)  # canonical JSON of the whole document (see billing.documents)
    sha256: str = ""


@dataclass(frozen=True)
class Fund:
    """One agreement's contribution to a payout run."""

    agreement_id: str
    currency: str
    revenue: Decimal  # issued invoices of the period, less their credit notes
    share: Decimal  # percent
    fund: Decimal
    row_micros: int  # record-days behind it (row-microseconds)
    people: int


@dataclass(frozen=True)
class PayoutLine:
    """What one person earned in a run, in one currency, and what is paid now or carried over."""

    user_id: int
    currency: str
    earned: Decimal
    carried_in: Decimal
    paid: Decimal
    carried_out: Decimal
    row_micros: int
    agreements: dict[str, dict[str, Any]] = field(hash=False)  # id → {row_micros, earned}


@dataclass(frozen=True)
class PayoutRun:
    period: str
    created_at: datetime
    minimum: Decimal
    funds: tuple[Fund, ...]
    lines: tuple[PayoutLine, ...]

    def paid(self, currency: str) -> Decimal:
        return sum((ln.paid for ln in self.lines if ln.currency == currency), Decimal("0.00"))
