"""Billing periods: calendar months in UTC, written `YYYY-MM`. Only a month that has ended is billed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from datalease.errors import UserError

PERIOD_RE: Final = re.compile(r"^(\d{4})-(\d{2})$")


class BillingError(UserError):
    """A billing operation that cannot be done as asked; the message says what was expected."""


@dataclass(frozen=True, order=True)
class Period:
    year: int
    month: int

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: the first instant of the next month."""
        return self.next().start

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def __str__(self) -> str:
        return self.label


def parse_period(text: str) -> Period:
    """`YYYY-MM` → Period; anything else is a BillingError naming the input."""
    match = PERIOD_RE.match(text.strip()) if isinstance(text, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
        raise BillingError(f"period {text!r}: expected a month written YYYY-MM, such as 2025-01")
    return Period(int(match.group(1)), int(match.group(2)))


def ended_period(text: str, now: datetime) -> Period:
    """A period that has ended by `now` (a month still running or in the future cannot be billed)."""
    period = parse_period(text)
    if period.end > now:
        raise BillingError(
            f"period {period}: it has not ended yet (it ends {period.end.date().isoformat()}); "
            f"expected a month before {Period(now.year, now.month)}"
        )
    return period
