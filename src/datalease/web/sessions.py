"""Who is looking at a page: signed session tokens for users and operators, and CSRF tokens.

User token (what the platform signs for its logged-in user and hands to these pages, e.g. as a
redirect to `/login?token=…`): `u.<user_id>.<expires unix>.<hex HMAC-SHA256>` over
`user:<user_id>:<expires>` with a key derived from the platform master key (docs/pages.md). The same
token is the session cookie. Operators sign in with the platform API token and get
`o.<expires>.<hmac>`. A form's CSRF token is an HMAC of the session cookie, so it is worthless on any
other session and needs no server-side state.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Final

SESSION_SECONDS: Final = 8 * 3600
_USER: Final = b"datalease/web/user-session/v1"
_OPERATOR: Final = b"datalease/web/operator-session/v1"
_CSRF: Final = b"datalease/web/csrf/v1"


def _key(master_key: bytes, context: bytes) -> bytes:
    return hmac.new(master_key, context, hashlib.sha256).digest()


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def user_token(master_key: bytes, user_id: int, expires: int | None = None) -> str:
    exp = expires if expires is not None else int(time.time()) + SESSION_SECONDS
    return f"u.{user_id}.{exp}.{_mac(_key(master_key, _USER), f'user:{user_id}:{exp}')}"


def operator_token(master_key: bytes, expires: int | None = None) -> str:
    exp = expires if expires is not None else int(time.time()) + SESSION_SECONDS
    return f"o.{exp}.{_mac(_key(master_key, _OPERATOR), f'operator:{exp}')}"


@dataclass(frozen=True)
class Viewer:
    user_id: int | None  # None: an operator
    operator: bool


def read_token(master_key: bytes, token: str | None, now: float | None = None) -> Viewer | None:
    """The viewer a token proves, or None (missing, forged, altered or expired)."""
    if not token:
        return None
    parts = token.split(".")
    moment = time.time() if now is None else now
    try:
        if parts[0] == "u" and len(parts) == 4:
            user_id, exp = int(parts[1]), int(parts[2])
            good = hmac.compare_digest(parts[3], _mac(_key(master_key, _USER), f"user:{user_id}:{exp}"))
            return Viewer(user_id, False) if good and exp > moment else None
        if parts[0] == "o" and len(parts) == 3:
            exp = int(parts[1])
            good = hmac.compare_digest(parts[2], _mac(_key(master_key, _OPERATOR), f"operator:{exp}"))
            return Viewer(None, True) if good and exp > moment else None
    except ValueError:
        return None
    return None


def csrf_token(master_key: bytes, session: str) -> str:
    return _mac(_key(master_key, _CSRF), session)


def csrf_ok(master_key: bytes, session: str | None, token: str | None) -> bool:
    return bool(session and token) and hmac.compare_digest(csrf_token(master_key, session or ""), token or "")
