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
MAX_LIFETIME: Final = timedelta(days=3650)  # ten years: a partner's contract is renewed long before
_UNITS: Final = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
_ALLOWED: Final = (
    "expected a duration such as 90d, 12h or 30m, or an ISO-8601 instant, in the future and at most "
    "10 years (3650d) from now"
)


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
    """`--expires`: a duration (`90d`, `12h`, `30m`) from now or an ISO-8601 instant in the future, at
    most MAX_LIFETIME away."""
    if text is None:
        return now + DEFAULT_LIFETIME
    raw = text.strip()
    shown = repr(raw) if len(raw) <= 40 else repr(raw[:40]) + "…"
    match = _DURATION.match(raw)
    if match:
        digits, unit = match.group(1).lstrip("0"), _UNITS[match.group(2)]
        if not digits:
            raise ValueError(f"--expires {shown}: not a positive duration; {_ALLOWED}")
        # Compare the number before making a timedelta of it: 99999999999h does not fit one.
        if len(digits) > len(str(MAX_LIFETIME // unit)) or int(digits) > MAX_LIFETIME // unit:
            raise ValueError(
                f"--expires {shown}: longer than the maximum token lifetime of 10 years; {_ALLOWED}"
            )
        return now + int(digits) * unit
    try:
        at = parse_instant(raw)
    except TimeFormatError as exc:
        raise ValueError(f"--expires {shown}: {_ALLOWED}") from exc
    if at <= now:
        raise ValueError(f"--expires {shown}: {at.isoformat()} is in the past; {_ALLOWED}")
    if at - now > MAX_LIFETIME:
        raise ValueError(f"--expires {shown}: later than the maximum token lifetime of 10 years; {_ALLOWED}")
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
