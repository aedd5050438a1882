"""Largest-remainder rounding: split an amount of cents among weights so that the parts sum exactly.

Each part first gets the floor of its exact share (in cents); the cents left over go one each to the
parts with the largest remainders, ties to the smaller key (so the result is deterministic). A part
with weight 0 gets nothing. Shares are computed with integers, never floats.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, TypeVar

CENT: Final = Decimal("0.01")
K = TypeVar("K", bound=Hashable)


def to_cents(amount: Decimal) -> int:
    if amount != amount.quantize(CENT):
        raise ValueError(f"{amount}: expected an amount in whole cents")
    return int(amount.scaleb(2))


def from_cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2).quantize(CENT)


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    """`amount` × `percent` / 100, rounded once to cents, halves away from zero."""
    return (amount * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def largest_remainder(total: Decimal, weights: Mapping[K, int]) -> dict[K, Decimal]:
    """Split `total` (whole cents, ≥ 0) pro rata to the non-negative integer `weights`."""
    cents = to_cents(total)
    if cents < 0:
        raise ValueError(f"{total}: expected an amount >= 0")
    if any(w < 0 for w in weights.values()):
        raise ValueError("weights: expected integers >= 0")
    whole = sum(weights.values())
    if whole == 0:
        if cents:
            raise ValueError(f"{total}: nothing to divide it among (every weight is 0)")
        return {k: from_cents(0) for k in weights}
    floors: dict[K, int] = {}
    remainders: list[tuple[int, Any, K]] = []
    for key, weight in weights.items():
        share, remainder = divmod(cents * weight, whole)
        floors[key] = share
        if weight:
            remainders.append((-remainder, _sort_key(key), key))
    left = cents - sum(floors.values())
    for _, _, key in sorted(remainders, key=lambda item: (item[0], item[1]))[:left]:
        floors[key] += 1
    return {k: from_cents(v) for k, v in floors.items()}


def _sort_key(key: Any) -> Any:
    return key if isinstance(key, int | str | tuple) else repr(key)
