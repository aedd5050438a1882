"""Partner bearer tokens: `dls_<id>_<secret>`. The id finds the stored record; only the secret's
sha256 is stored, so a leaked database does not leak working tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from datalease.timeparse import TimeFormatError, parse_instant

PREFIX: Final = "dls"
_BEARER: Final = re.compile(r"^dls_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_DURATION: Final = re.compile(r"^(\d+)([dhm])$")
DEFAULT_LIFETIME: Final = timedelta(days=90)


@dataclass(frozen=True)
class Bearer:
    token_id: str
    secret: str

    @property
    def text(self) -> str:
        return f"{PREFIX}_{self.token_id}_{self.secret}"


def new_bearer() -> Bearer:
    return Bearer(secrets.token_hex(8), secrets.token_urlsafe(32))


def parse_bearer(text: str) -> Bearer | None:
    match = _BEARER.match(text.strip())
    return Bearer(match.group(1), match.group(2)) if match else None


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def expiry(text: str | None, now: datetime) -> datetime:
    """`--expires`: a duration (`90d`, `12h`, `30m`) from now or an ISO-8601 instant in the future."""
    if text is None:
        return now + DEFAULT_LIFETIME
    raw = text.strip()
    match = _DURATION.match(raw)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[
            unit
        ]
        if amount <= 0:
            raise ValueError(f"--expires: expected a positive duration such as 90d, got {text!r}")
        return now + delta
    try:
        at = parse_instant(raw)
    except TimeFormatError as exc:
        raise ValueError(
            f"--expires: expected a duration such as 90d / 12h / 30m or an ISO-8601 instant, got {text!r}"
        ) from exc
    if at <= now:
        raise ValueError(f"--expires: {at.isoformat()} is in the past; expected a future instant")
    return at


@dataclass(frozen=True)
class PartnerToken:
    token_id: str
    partner: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"
