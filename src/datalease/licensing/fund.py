"""The contributor fund's share of an agreement's revenue, as written in the agreement YAML.

`pricing.fund_share` is a percentage from 0 to 100: `20`, `12.5` or `"12.5%"`. Without it an
agreement gives DEFAULT_FUND_SHARE (20%) of its revenue to the people whose rows the partner held.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Final

from datalease.licensing.model import DEFAULT_FUND_SHARE

FUND_SHARE_EXPECTED: Final = 'a percentage from 0 to 100 such as 20, 12.5 or "12.5%"'
__all__ = ["DEFAULT_FUND_SHARE", "FUND_SHARE_EXPECTED", "fund_share"]


def fund_share(value: Any) -> Decimal:
    """A finite percentage in [0, 100]; raises ValueError/TypeError otherwise."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            result = Decimal(text)
        except InvalidOperation as exc:
            raise ValueError(value) from exc
    else:
        raise TypeError(value)
    if not result.is_finite() or not Decimal(0) <= result <= Decimal(100):
        raise ValueError(value)
    return result
