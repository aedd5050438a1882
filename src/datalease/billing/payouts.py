"""A payout run: each agreement's fund divided among the people whose rows its partner held.

- fund = revenue × fund share / 100, rounded once to cents (halves away from zero); revenue is the
  period's issued invoices less their credit notes (never below zero). When nobody's rows were held
  the fund is 0 (there is no one to pay) and the platform keeps the revenue.
- each fund is split pro rata to record-days (row-microseconds) by largest remainder: the parts sum
  exactly to the fund. People with no record-days get nothing and have no line.
- per person and currency: what is due = earned + carried in from the last run; it is paid when it
  reaches the minimum payout, otherwise carried over to the next run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from datalease.billing.model import Fund, PayoutLine, PayoutRun
from datalease.billing.period import BillingError, Period
from datalease.billing.rounding import CENT, largest_remainder, percent_of

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class FundInput:
    agreement_id: str
    currency: str
    revenue: Decimal
    share: Decimal  # percent, 0..100
    row_micros: Mapping[int, int]  # user id → record-days (row-microseconds)


def check_minimum(minimum: Decimal) -> Decimal:
    if not minimum.is_finite() or minimum < 0 or minimum != minimum.quantize(CENT):
        raise BillingError(f"minimum payout {minimum}: expected an amount >= 0 in whole cents, such as 5.00")
    return minimum.quantize(CENT)


def build_run(
    period: Period,
    inputs: Sequence[FundInput],
    carried: Mapping[tuple[int, str], Decimal],
    minimum: Decimal,
    now: datetime,
) -> PayoutRun:
    """The run for `period`; `carried` is what the last run carried out, per (user id, currency)."""
    minimum = check_minimum(minimum)
    funds: list[Fund] = []
    earned: dict[tuple[int, str], Decimal] = {}
    micros: dict[tuple[int, str], int] = {}
    detail: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
    for item in sorted(inputs, key=lambda i: i.agreement_id):
        if not Decimal(0) <= item.share <= Decimal(100):
            raise BillingError(f"agreement {item.agreement_id}: fund share {item.share}: expected 0 to 100")
        weights = {u: m for u, m in item.row_micros.items() if m > 0}
        revenue = max(item.revenue, ZERO)
        fund = percent_of(revenue, item.share) if weights else ZERO
        funds.append(
            Fund(
                item.agreement_id,
                item.currency,
                revenue,
                item.share,
                fund,
                sum(weights.values()),
                len(weights),
            )
        )
        for user_id, part in largest_remainder(fund, weights).items():
            slot = (user_id, item.currency)
            earned[slot] = earned.get(slot, ZERO) + part
            micros[slot] = micros.get(slot, 0) + weights[user_id]
            detail.setdefault(slot, {})[item.agreement_id] = {
                "row_micros": weights[user_id],
                "earned": str(part),
            }
    lines = []
    for slot in sorted(set(earned) | {s for s, v in carried.items() if v > 0}):
        user_id, currency = slot
        got, carried_in = earned.get(slot, ZERO), carried.get(slot, ZERO)
        due = got + carried_in
        pay = due >= minimum and due > 0
        lines.append(
            PayoutLine(
                user_id,
                currency,
                got,
                carried_in,
                due if pay else ZERO,
                ZERO if pay else due,
                micros.get(slot, 0),
                detail.get(slot, {}),
            )
        )
    return PayoutRun(period.label, now, minimum, tuple(funds), tuple(lines))
