"""Who is looking at a page: the platform's signed sign-in links, server-side sessions, CSRF tokens.

User token (what the platform signs for its logged-in user and hands to these pages as a redirect to
`/login?token=…`): `u.<user_id>.<expires unix>.<hex HMAC-SHA256>` over `user:<user_id>:<expires>` with
a key derived from the platform master key (docs/pages.md). Signing in (with such a link, the demo
list or the operator token) opens a server-side session (store/web_sessions.py) whose random id is
the session cookie: signing out ends it at once, and an operator's ends when the API token is
rotated. A form's CSRF token is an HMAC of the session cookie, so it is worthless on any other session.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from datalease.services.api_token import api_token_digest
from datalease.store.web_sessions import end_session, find_session, start_session
from datalease.workspace import Workspace

SESSION_SECONDS: Final = 8 * 3600
_USER: Final = b"datalease/web/user-session/v1"
_CSRF: Final = b"datalease/web/csrf/v1"
# ASCII only and bounded: int() also reads "٤٢", and a user id must fit the store's 64-bit column.
_USER_TOKEN: Final = re.compile(r"u\.([0-9]{1,18})\.([0-9]{1,12})\.([0-9a-f]{64})")


def _key(master_key: bytes, context: bytes) -> bytes:
    return hmac.new(master_key, context, hashlib.sha256).digest()


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    """Constant-time equality of text from outside (as bytes: compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def user_token(master_key: bytes, user_id: int, expires: int | None = None) -> str:
    exp = expires if expires is not None else int(time.time()) + SESSION_SECONDS
    return f"u.{user_id}.{exp}.{_mac(_key(master_key, _USER), f'user:{user_id}:{exp}')}"


@dataclass(frozen=True)
class Viewer:
    user_id: int | None  # None: an operator
    operator: bool


def read_token(master_key: bytes, token: str | None, now: float | None = None) -> Viewer | None:
    """The user a sign-in link's token proves, or None (missing, forged, altered or expired)."""
    match = _USER_TOKEN.fullmatch(token or "")
    if match is None:
        return None
    user_id, exp = int(match.group(1)), int(match.group(2))
    good = _same(match.group(3), _mac(_key(master_key, _USER), f"user:{user_id}:{exp}"))
    moment = time.time() if now is None else now
    return Viewer(user_id, False) if good and exp > moment else None


def csrf_token(master_key: bytes, session: str) -> str:
    return _mac(_key(master_key, _CSRF), session)


def csrf_ok(master_key: bytes, session: str | None, token: str | None) -> bool:
    return bool(session and token) and _same(csrf_token(master_key, session or ""), token or "")


# --- server-side sessions -------------------------------------------------------------------------


def open_session(ws: Workspace, viewer: Viewer, now: datetime) -> str:
    """Start a session for `viewer` (an operator's is bound to the current API token); its id."""
    with ws.session() as session, session.begin():
        return start_session(
            session,
            role="operator" if viewer.operator else "user",
            user_id=viewer.user_id,
            credential_sha256=api_token_digest(ws) if viewer.operator else None,
            now=now,
            lifetime=timedelta(seconds=SESSION_SECONDS),
        )


def session_viewer(ws: Workspace, session_id: str | None, now: datetime) -> Viewer | None:
    """Who the session cookie belongs to, or None (unknown, ended, expired, or an operator session
    opened with an API token that has been rotated since)."""
    if not session_id:
        return None
    with ws.session() as session:
        found = find_session(session, session_id, now)
    if found is None:
        return None
    if found.role == "operator":
        if found.credential_sha256 is None or not _same(found.credential_sha256, api_token_digest(ws)):
            return None
        return Viewer(None, True)
    return Viewer(found.user_id, False)


def close_session(ws: Workspace, session_id: str, now: datetime) -> None:
    with ws.session() as session, session.begin():
        end_session(session, session_id, now)
