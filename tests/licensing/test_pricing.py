"""Charges: flat annual prorated by days within the term, per 1k records, per query, cent rounding."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from datalease.licensing.load import load_agreement
from datalease.licensing.model import Pricing
from datalease.licensing.pricing import anniversary, charge, charge_agreement, contract_years, round_cents
from datalease.policy.model import Policy

FLAT = Pricing("flat_annual", Decimal(60_000_000), "USD")


def day(year: int, month: int, d: int) -> datetime:
    return datetime(year, month, d, tzinfo=UTC)


def flat(
    start: datetime,
    end: datetime,
    term: tuple[datetime, datetime] | None = (day(2025, 1, 1), day(2027, 1, 1)),
) -> Decimal:
    if term is None:
        return charge(FLAT, period_start=start, period_end=end)
    return charge(FLAT, period_start=start, period_end=end, term_start=term[0], term_end=term[1])


# --- flat_annual --------------------------------------------------------------------------------


def test_whole_contract_year_costs_the_annual_amount() -> None:
    assert flat(day(2025, 1, 1), day(2026, 1, 1)) == Decimal("60000000.00")


def test_whole_two_year_term_costs_twice() -> None:
    assert flat(day(2020, 1, 1), day(2030, 1, 1)) == Decimal("120000000.00")


def test_one_month_is_prorated_by_days() -> None:
    assert flat(day(2025, 1, 1), day(2025, 2, 1)) == Decimal("5095890.41")  # 60M × 31/365


def test_leap_contract_year_divides_by_366() -> None:
    term = (day(2024, 1, 1), day(2025, 1, 1))
    assert flat(day(2024, 2, 1), day(2024, 3, 1), term) == Decimal("4754098.36")  # 60M × 29/366
    assert flat(day(2024, 1, 1), day(2025, 1, 1), term) == Decimal("60000000.00")


def test_period_is_clipped_to_the_term() -> None:
    # December 2024 is before the term: only January 2025 is charged.
    assert flat(day(2024, 12, 1), day(2025, 2, 1)) == Decimal("5095890.41")
    assert flat(day(2023, 1, 1), day(2024, 1, 1)) == Decimal("0.00")
    assert flat(day(2027, 1, 1), day(2027, 6, 1)) == Decimal("0.00")


def test_contract_years_start_at_the_term_start() -> None:
    term = (day(2025, 7, 1), day(2026, 7, 1))
    # July–December 2025: 184 days of the contract year 2025-07-01 → 2026-07-01 (365 days).
    assert flat(day(2025, 1, 1), day(2026, 1, 1), term) == Decimal("30246575.34")


def test_without_a_term_calendar_years_are_used() -> None:
    assert flat(day(2024, 1, 1), day(2024, 2, 1), None) == Decimal("5081967.21")  # 60M × 31/366


def test_partial_days_are_prorated_exactly() -> None:
    pricing = Pricing("flat_annual", Decimal(365), "USD")
    start = day(2025, 1, 1)
    noon = datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert charge(
        pricing, period_start=start, period_end=noon, term_start=start, term_end=day(2026, 1, 1)
    ) == Decimal("0.50")


def test_usage_is_not_charged_on_a_flat_price() -> None:
    assert charge(
        FLAT, period_start=day(2025, 1, 1), period_end=day(2025, 2, 1), records=10**9, queries=10**6
    ) == flat(day(2025, 1, 1), day(2025, 2, 1), None)


def test_dates_are_accepted() -> None:
    assert charge(
        FLAT, period_start=date(2025, 1, 1), period_end=date(2025, 2, 1), term_start=date(2025, 1, 1)
    ) == Decimal("5095890.41")


def test_anniversary_of_29_february() -> None:
    anchor = day(2024, 2, 29)
    assert anniversary(anchor, 1) == day(2025, 2, 28)
    assert anniversary(anchor, 4) == day(2028, 2, 29)
    assert contract_years(anchor, day(2024, 3, 1), day(2025, 3, 1)) == [
        (day(2024, 2, 29), day(2025, 2, 28)),
        (day(2025, 2, 28), day(2026, 2, 28)),
    ]


def test_lumen_example_first_quarter(policy: Policy, agreements_dir: Path) -> None:
    text = (agreements_dir / "lumen-genai.yaml").read_text(encoding="utf-8")
    lumen = load_agreement(text, "lumen-genai.yaml", policy=policy)
    assert charge_agreement(lumen, period_start=day(2025, 1, 1), period_end=day(2025, 4, 1)) == Decimal(
        "14794520.55"
    )
    whole_term = charge_agreement(lumen, period_start=lumen.term_start, period_end=lumen.term_end)
    assert whole_term == Decimal("120000000.00")


# --- usage models -------------------------------------------------------------------------------


def test_per_1k_records() -> None:
    pricing = Pricing("per_1k_records", Decimal("2.50"), "USD")
    assert charge(
        pricing, records=1_234_567, period_start=day(2025, 1, 1), period_end=day(2025, 2, 1)
    ) == Decimal("3086.42")  # 3086.4175
    assert charge(pricing, records=1000, period_start=day(2025, 1, 1), period_end=day(2025, 2, 1)) == Decimal(
        "2.50"
    )
    assert charge(
        pricing, records=0, queries=99, period_start=day(2025, 1, 1), period_end=day(2025, 2, 1)
    ) == Decimal("0.00")


def test_per_query() -> None:
    pricing = Pricing("per_query", Decimal("0.0004"), "EUR")
    assert charge(
        pricing, queries=12_345, period_start=day(2025, 1, 1), period_end=day(2025, 2, 1)
    ) == Decimal("4.94")  # 4.938
    assert charge(
        pricing, queries=12_345, records=10**9, period_start=day(2025, 1, 1), period_end=day(2025, 2, 1)
    ) == Decimal("4.94")


# --- rounding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pricing", "records", "queries", "expected"),
    [
        (Pricing("per_query", Decimal("0.005"), "USD"), 0, 1, "0.01"),  # half-even would give 0.00
        (Pricing("per_1k_records", Decimal("0.125"), "USD"), 1000, 0, "0.13"),  # half-even: 0.12
        (Pricing("per_query", Decimal("0.0049"), "USD"), 0, 1, "0.00"),
        (Pricing("per_1k_records", Decimal("0.01"), "USD"), 1500, 0, "0.02"),  # 0.015
    ],
)
def test_round_half_up(pricing: Pricing, records: int, queries: int, expected: str) -> None:
    result = charge(
        pricing, period_start=day(2025, 1, 1), period_end=day(2025, 1, 2), records=records, queries=queries
    )
    assert result == Decimal(expected)
    assert result.as_tuple().exponent == -2


def test_flat_half_cent_rounds_up() -> None:
    pricing = Pricing("flat_annual", Decimal("1.825"), "USD")  # one day of 365 = 0.005
    result = charge(
        pricing, period_start=day(2025, 1, 1), period_end=day(2025, 1, 2), term_start=day(2025, 1, 1)
    )
    assert result == Decimal("0.01")


def test_round_cents() -> None:
    assert round_cents(Fraction(-1, 200)) == Decimal("-0.01")
    assert round_cents(Fraction(1, 3)) == Decimal("0.33")
    assert round_cents(Decimal("2.675")) == Decimal("2.68")
    assert str(round_cents(7)) == "7.00"


# --- bad input ----------------------------------------------------------------------------------


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="period_start: expected a timezone-aware datetime"):
        charge(FLAT, period_start=datetime(2025, 1, 1), period_end=day(2025, 2, 1))


def test_period_end_before_start() -> None:
    with pytest.raises(ValueError, match="is before period_start"):
        charge(FLAT, period_start=day(2025, 2, 1), period_end=day(2025, 1, 1))


def test_negative_usage() -> None:
    with pytest.raises(ValueError, match="expected counts >= 0"):
        charge(FLAT, period_start=day(2025, 1, 1), period_end=day(2025, 2, 1), records=-1)
