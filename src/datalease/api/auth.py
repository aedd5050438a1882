"""The platform's API token: operators and the platform's own services send it as a bearer token.

DATALEASE_API_TOKEN sets it; otherwise one is generated on first use into `<home>/keys/api.token`
(mode 0600), where the operator reads it.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from datalease.sharing import errors
from datalease.workspace import Workspace


def api_token(ws: Workspace) -> str:
    if ws.settings.api_token:
        return ws.settings.api_token
    path = ws.settings.resolved_home / "keys" / "api.token"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = "dlp_" + secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def require_api_token(ws: Workspace, authorization: str | None) -> None:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise errors.unauthenticated(
            "missing bearer token: send `Authorization: Bearer <platform API token>`"
        )
    if not hmac.compare_digest(authorization[7:].strip(), api_token(ws)):
        raise errors.unauthenticated("the bearer token is not the platform API token")


def token_file(ws: Workspace) -> Path:
    return ws.settings.resolved_home / "keys" / "api.token"
