"""Scoped API tokens: `platform:read`, `platform:write`, `operator` (`datalease api-token create|list|
revoke`). A token is `dla_<id>_<secret>`; only its sha256 is stored. `platform:write` includes
`platform:read`; `operator` includes both. The platform API token (services/api_token.py) keeps every
scope, so existing callers are unaffected."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from datalease.errors import UserError
from datalease.services.api_token import is_api_token
from datalease.store.platform_api import (
    ApiToken,
    add_api_token,
    find_api_token,
    list_api_tokens,
    revoke_api_token,
)
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

READ: Final = "platform:read"
WRITE: Final = "platform:write"
OPERATOR: Final = "operator"
SCOPES: Final = (READ, WRITE, OPERATOR)
_IMPLIES: Final = {READ: {READ}, WRITE: {READ, WRITE}, OPERATOR: {READ, WRITE, OPERATOR}}
_TOKEN: Final = re.compile(r"dla_([0-9a-f]{16})_([A-Za-z0-9_-]{20,64})")


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the platform token (every scope) or a scoped token."""

    name: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes


PLATFORM_CALLER: Final = Caller("platform API token", frozenset(SCOPES))


@dataclass(frozen=True)
class NewToken:
    token: str  # shown once
    record: ApiToken


def effective_scopes(granted: tuple[str, ...]) -> frozenset[str]:
    return frozenset(s for g in granted for s in _IMPLIES.get(g, set()))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def create_token(ws: Workspace, name: str, scopes: tuple[str, ...]) -> NewToken:
    """A new token with `scopes`; the text is returned once and never stored."""
    if not name.strip() or len(name) > 100:
        raise UserError("NAME: expected 1 to 100 characters")
    if not scopes:
        raise UserError(f"--scope: give at least one of {', '.join(SCOPES)}")
    for scope in scopes:
        if scope not in SCOPES:
            raise UserError(f"--scope {scope!r}: expected one of {', '.join(SCOPES)}")
    token_id = secrets.token_hex(8)
    text = f"dla_{token_id}_{secrets.token_urlsafe(32)}"
    with ws.session() as session, session.begin():
        record = add_api_token(
            session, token_id, name.strip(), tuple(dict.fromkeys(scopes)), _digest(text), utc_now()
        )
    return NewToken(text, record)


def tokens(ws: Workspace) -> list[ApiToken]:
    with ws.session() as session:
        return list_api_tokens(session)


def revoke_token(ws: Workspace, token_id: str) -> ApiToken:
    with ws.session() as session, session.begin():
        found = revoke_api_token(session, token_id.removeprefix("dla_"), utc_now())
    if found is None:
        raise UserError(f"ID {token_id!r}: no such API token (see `datalease api-token list`)")
    return found


def caller_of(ws: Workspace, text: str) -> Caller | None:
    """The caller a bearer token stands for, or None when it is no valid token."""
    text = text.strip()
    match = _TOKEN.fullmatch(text)
    if match is not None:
        with ws.session() as session:
            record = find_api_token(session, match.group(1))
        if record is None or record.revoked_at is not None:
            return None
        if not hmac.compare_digest(record.token_sha256, _digest(text)):
            return None
        return Caller(f"token {record.token_id} ({record.name})", effective_scopes(record.scopes))
    return platform_caller(ws, text)


def platform_caller(ws: Workspace, text: str) -> Caller | None:
    """The caller when `text` is the platform API token, read without the store (no scoped token
    looks like it), so a server can answer it on its event loop; None otherwise."""
    text = text.strip()
    if _TOKEN.fullmatch(text) is None and is_api_token(ws, text):
        return PLATFORM_CALLER
    return None
