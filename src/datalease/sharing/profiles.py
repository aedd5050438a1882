"""Issuing a partner's credentials: a bearer token (stored hashed) and the profile file the official
`delta-sharing` client reads."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from datalease.errors import UserError
from datalease.licensing.tokens import PartnerToken, expiry, new_bearer
from datalease.store.licensing import get_partner
from datalease.store.sharing import save_token
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

PROFILE_VERSION = 1


@dataclass(frozen=True)
class IssuedProfile:
    token: PartnerToken
    path: Path
    endpoint: str


def issue_profile(
    ws: Workspace, partner: str, out: Path, *, expires: str | None, endpoint_base: str | None
) -> IssuedProfile:
    """Create a token for `partner` and write its profile to `out` (0600, written atomically)."""
    now = utc_now()
    try:
        expires_at = expiry(expires, now)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if out.is_dir():
        raise UserError(f"--out {out}: is a directory, expected a file path for the profile")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: directory {out.parent} does not exist")
    endpoint = (endpoint_base or ws.settings.endpoint_base).rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise UserError(f"--endpoint {endpoint!r}: expected an http(s) URL such as http://127.0.0.1:8000")
    endpoint += "/delta-sharing"
    bearer = new_bearer()
    with ws.write_session() as session, session.begin():
        get_partner(session, partner)
        token = save_token(session, partner, bearer, created_at=now, expires_at=expires_at)
        _write_profile(out, endpoint, bearer.text, expires_at)
    return IssuedProfile(token, out, endpoint)


def _write_profile(out: Path, endpoint: str, bearer: str, expires_at: datetime) -> None:
    profile = {
        "shareCredentialsVersion": PROFILE_VERSION,
        "endpoint": endpoint,
        "bearerToken": bearer,
        "expirationTime": expires_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    temporary = out.with_name(f".{out.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(profile, handle, indent=2)
        handle.write("\n")
    temporary.replace(out)
