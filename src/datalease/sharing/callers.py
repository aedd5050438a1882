"""Who is calling the sharing server: the partner behind a bearer token, checked on every request
(the requests in flight at once share one store read, server/coalesce.py, which also reads the
catalogue's version), and the token a signed file URL was issued to (checked every few seconds:
downloads are hot).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from datalease.licensing.tokens import Bearer, parse_bearer
from datalease.server.coalesce import Coalesced
from datalease.sharing import errors
from datalease.sharing.catalogue import Version
from datalease.store.sharing import Authenticated, authenticate, get_token
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

TOKEN_CACHE_S: Final = 5.0


@dataclass(frozen=True)
class Caller:
    partner: str
    token_id: str
    # The catalogue's version read with the token: the whole request answers from that one state.
    catalogue: Version | None = field(default=None, compare=False)


class Callers:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._tokens = Coalesced(self._authenticate)
        self._token_states: dict[str, tuple[float, str, str]] = {}
        self._token_lock = threading.Lock()

    async def caller(self, authorization: str | None) -> Caller:
        """The partner behind a bearer token; the requests in flight at once share one store read."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise errors.unauthenticated("missing bearer token: send `Authorization: Bearer <token>`")
        bearer = parse_bearer(authorization[7:])
        if bearer is None:
            raise errors.unauthenticated("the bearer token is not a datalease token")
        found = await self._tokens.get(bearer)
        if found is None:
            raise errors.unauthenticated("the bearer token is not recognised")
        token, catalogue = found
        state = token.state(utc_now())
        if state == "revoked":
            raise errors.unauthenticated(f"the bearer token was revoked at {token.revoked_at}")
        if state == "expired":
            raise errors.unauthenticated(f"the bearer token expired at {token.expires_at.isoformat()}")
        return Caller(token.partner, token.token_id, catalogue)

    def _authenticate(self, bearers: Sequence[Bearer]) -> list[Authenticated | None]:
        with self.ws.engine.connect() as connection:
            return authenticate(connection, bearers)

    def file_token_partner(self, token_id: str) -> str:
        """The partner of a still-valid token (cached for a few seconds: file downloads are hot)."""
        now = time.monotonic()
        with self._token_lock:
            cached = self._token_states.get(token_id)
        if cached is None or now - cached[0] > TOKEN_CACHE_S:
            with self.ws.session() as session:
                token = get_token(session, token_id)
            state = "unknown" if token is None else token.state(utc_now())
            cached = (now, state, token.partner if token else "")
            with self._token_lock:
                self._token_states[token_id] = cached
        _, state, partner = cached
        if state != "active":
            raise errors.forbidden(f"the token this file URL was issued to is {state}: query the table again")
        return partner
