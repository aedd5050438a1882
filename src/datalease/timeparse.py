"""One way to read and normalise instants: everything is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime


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
            f"expected an ISO-8601 date or date-time such as 2024-11-15 or 2024-11-15T09:30:00Z, got {text!r}"
        ) from exc
    return as_utc(value)


def as_utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)
