"""One way to read and normalise instants: everything is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Final

# The instants an operator may ask about (`--at`): any platform's history and plans, with room left to
# add a retention window or a deletion SLA (at most a year) and still have a date Python can hold.
EARLIEST_AT: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_AT: Final = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive
_SHOWN_CHARS: Final = 80


class TimeFormatError(ValueError):
    """A text that is not an ISO-8601 date or date-time."""


def parse_instant(text: str) -> datetime:
    """Parse `2024-11-15`, `2024-11-15T10:00`, `...Z` or `...+01:00` into an aware UTC datetime.

    A bare date means its midnight UTC; a naive date-time is taken as UTC.
    """
    raw = text.strip()
    if raw.lower() == "now":
        return utc_now()
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise TimeFormatError(
            "expected an ISO-8601 date or date-time such as 2024-11-15 or 2024-11-15T09:30:00Z, "
            f"got {_shown(text)}"
        ) from exc
    try:
        return as_utc(value)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is a year before the first one Python has
        raise TimeFormatError(
            f"expected an instant from 0001-01-01 to 9999-12-31 in UTC, got {_shown(text)}"
        ) from exc


def parse_bounded_instant(text: str) -> datetime:
    """`parse_instant`, refusing instants before EARLIEST_AT or from LATEST_AT on."""
    value = parse_instant(text)
    if not EARLIEST_AT <= value < LATEST_AT:
        raise TimeFormatError(
            f"expected an instant from {EARLIEST_AT:%Y-%m-%d} to {LATEST_AT.year - 1}-12-31 (UTC), "
            f"got {_shown(text)}"
        )
    return value


def as_utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _shown(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 1] + "…"
