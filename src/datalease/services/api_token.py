"""The platform's API token: operators and the platform's own services send it as a bearer token.

DATALEASE_API_TOKEN sets it; otherwise one is generated on first use into `<home>/keys/api.token`
(mode 0600), where the operator reads it; `datalease api-token rotate` replaces it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import weakref
from dataclasses import dataclass
from pathlib import Path

from datalease.errors import UserError
from datalease.workspace import Workspace


@dataclass
class _TokenFile:
    """The token file of one workspace and its last read text, keyed by the file's identity."""

    path: Path
    read: tuple[tuple[int, int, int], str] | None = None  # ((inode, mtime ns, size), token)


_FILES: weakref.WeakKeyDictionary[Workspace, _TokenFile] = weakref.WeakKeyDictionary()


def api_token(ws: Workspace) -> str:
    if ws.settings.api_token:
        return ws.settings.api_token
    found = _read_token_file(ws)
    if found is not None:
        return found
    path = token_file(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = _new_token()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def _read_token_file(ws: Workspace) -> str | None:
    """The token in the file, None if there is none. Checked on every request, so the file is re-read
    only when a stat shows another file or other content: `rotate` replaces it (a new inode), and
    the old token stops working at the next request in every process."""
    cached = _FILES.get(ws)
    if cached is None:
        cached = _FILES[ws] = _TokenFile(token_file(ws))
    try:
        stat = cached.path.stat()
    except FileNotFoundError:
        return None
    stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    read = cached.read
    if read is None or read[0] != stamp:
        read = cached.read = (stamp, cached.path.read_text(encoding="utf-8").strip())
    return read[1]


def is_api_token(ws: Workspace, text: str) -> bool:
    """Whether `text` is the platform API token (compared as bytes: hostile text may be non-ASCII)."""
    return hmac.compare_digest(text.strip().encode("utf-8", "surrogateescape"), api_token(ws).encode())


def api_token_digest(ws: Workspace) -> str:
    """The sha256 of the current API token: what an operator's session is bound to."""
    return hashlib.sha256(api_token(ws).encode()).hexdigest()


def rotate_api_token(ws: Workspace) -> Path:
    """Write a new API token to `<home>/keys/api.token` (mode 0600) and return the path; the old
    token stops working at once, and so does every operator session signed in with it."""
    if ws.settings.api_token:
        raise UserError(
            "DATALEASE_API_TOKEN is set, so the token lives in the environment: change it there and "
            "restart the server"
        )
    path = token_file(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(path.name + ".new")
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(_new_token() + "\n")
    fresh.replace(path)
    return path


def _new_token() -> str:
    return "dlp_" + secrets.token_urlsafe(32)


def token_file(ws: Workspace) -> Path:
    return ws.settings.resolved_home / "keys" / "api.token"
