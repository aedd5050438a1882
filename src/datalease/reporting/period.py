"""Report periods as people write them: `2026` (a year), `2026-Q2` (a quarter), `2026-05` (a month),
or `2026-01-01..2026-07-01` (from a date, until a date, exclusive). Always [start, end) in UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from datalease.errors import UserError

_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
EXPECTED = "a year (2026), a quarter (2026-Q2), a month (2026-05) or a range 2026-01-01..2026-07-01"


@dataclass(frozen=True)
class Period:
    label: str
    start: datetime
    end: datetime  # exclusive

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


def _month_start(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=UTC)


def parse_period(text: str) -> Period:
    value = text.strip()
    try:
        if m := _YEAR.match(value):
            year = int(m.group(1))
            return Period(value, datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC))
        if m := _QUARTER.match(value):
            year, quarter = int(m.group(1)), int(m.group(2))
            return Period(value, _month_start(year, 3 * quarter - 2), _month_start(year, 3 * quarter + 1))
        if m := _MONTH.match(value):
            year, month = int(m.group(1)), int(m.group(2))
            if not 1 <= month <= 12:
                raise ValueError(month)
            return Period(value, _month_start(year, month), _month_start(year, month + 1))
        if m := _RANGE.match(value):
            start = datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC)
            end = datetime.fromisoformat(m.group(2)).replace(tzinfo=UTC)
            if end <= start:
                raise ValueError("empty")
            return Period(value, start, end)
    except ValueError as exc:
        raise UserError(f"period {text!r}: expected {EXPECTED}") from exc
    raise UserError(f"period {text!r}: expected {EXPECTED}")
