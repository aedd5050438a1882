"""What an agreement costs for a billing period. Pure and exact: fractions inside, cents out.

- `flat_annual`: `amount` per contract year. Contract years run from the term's start to each
  anniversary; the fee of a year is spread evenly over that year's days (365 or 366), so a whole
  contract year costs exactly `amount` and a part of one costs its share of days (to the
  microsecond when a boundary is not midnight). Only the part of the period inside the term counts.
  Without a term, calendar years are used.
- `per_1k_records`: `amount` × records / 1000.
- `per_query`: `amount` × queries.

Usage that does not apply to the model (records for a per_query agreement, say) is not charged.
The result is rounded once, to cents, half away from zero (ROUND_HALF_UP).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Final

from datalease.licensing.model import Agreement, Pricing
from datalease.timeparse import as_utc

CENT: Final = Decimal("0.01")
_MICROSECOND: Final = timedelta(microseconds=1)


def round_cents(value: Decimal | Fraction | int) -> Decimal:
    """Round to two decimal places, halves away from zero (ROUND_HALF_UP), exactly."""
    if isinstance(value, Decimal):
        return value.quantize(CENT, rounding=ROUND_HALF_UP)
    exact = Fraction(value) * 100
    magnitude = (abs(exact.numerator) * 2 + exact.denominator) // (2 * exact.denominator)
    return Decimal(-magnitude if exact < 0 else magnitude).scaleb(-2)


def anniversary(anchor: datetime, years: int) -> datetime:
    """`anchor` moved by whole years; 29 February becomes 28 February in common years."""
    try:
        return anchor.replace(year=anchor.year + years)
    except ValueError:
        return anchor.replace(year=anchor.year + years, day=28)


def _micros(delta: timedelta) -> int:
    return delta // _MICROSECOND


def contract_years(anchor: datetime, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The contract years (anniversaries of `anchor`) that meet [start, end), in order."""
    if end <= start:
        return []
    k = start.year - anchor.year
    while anniversary(anchor, k) > start:
        k -= 1
    while anniversary(anchor, k + 1) <= start:
        k += 1
    years: list[tuple[datetime, datetime]] = []
    while anniversary(anchor, k) < end:
        years.append((anniversary(anchor, k), anniversary(anchor, k + 1)))
        k += 1
    return years


def flat_share(
    period_start: datetime, period_end: datetime, term_start: datetime | None, term_end: datetime | None
) -> Fraction:
    """How many contract years (exactly, as a fraction) of the term fall inside the period."""
    start = period_start if term_start is None else max(period_start, term_start)
    end = period_end if term_end is None else min(period_end, term_end)
    anchor = term_start if term_start is not None else datetime(start.year, 1, 1, tzinfo=UTC)
    share = Fraction(0)
    for year_start, year_end in contract_years(anchor, start, end):
        inside = min(end, year_end) - max(start, year_start)
        share += Fraction(_micros(inside), _micros(year_end - year_start))
    return share


def _aware(value: datetime | date, name: str) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"{name}: expected a timezone-aware datetime, got a naive one")
    return as_utc(value)


def charge(
    pricing: Pricing,
    *,
    period_start: datetime | date,
    period_end: datetime | date,
    records: int = 0,
    queries: int = 0,
    term_start: datetime | date | None = None,
    term_end: datetime | date | None = None,
) -> Decimal:
    """The amount due for [period_start, period_end), in `pricing.currency`, rounded to cents.

    `term_start`/`term_end` (the agreement's term, end exclusive) anchor the contract years of a
    flat_annual price and clip the period to the term; `charge_agreement` passes them for you.
    """
    start = _aware(period_start, "period_start")
    end = _aware(period_end, "period_end")
    if end < start:
        raise ValueError(f"period_end ({end.isoformat()}) is before period_start ({start.isoformat()})")
    if records < 0 or queries < 0:
        raise ValueError(f"records and queries: expected counts >= 0, got {records} and {queries}")
    amount = Fraction(pricing.amount)
    if pricing.model == "flat_annual":
        t_start = None if term_start is None else _aware(term_start, "term_start")
        t_end = None if term_end is None else _aware(term_end, "term_end")
        return round_cents(amount * flat_share(start, end, t_start, t_end))
    if pricing.model == "per_1k_records":
        return round_cents(amount * records / 1000)
    if pricing.model == "per_query":
        return round_cents(amount * queries)
    raise ValueError(f"pricing model {pricing.model!r}: expected flat_annual, per_1k_records or per_query")


def charge_agreement(
    agreement: Agreement,
    *,
    period_start: datetime | date,
    period_end: datetime | date,
    records: int = 0,
    queries: int = 0,
) -> Decimal:
    """`charge` with the agreement's pricing and term."""
    return charge(
        agreement.pricing,
        period_start=period_start,
        period_end=period_end,
        records=records,
        queries=queries,
        term_start=agreement.term_start,
        term_end=agreement.term_end,
    )
