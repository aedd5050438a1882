"""Page tokens of the list endpoints: the last name already returned, bound to the listing it came
from (shares of this partner, schemas or tables of one share) and signed with the server's key, so a
token can neither be forged nor replayed against another listing (the answer is a 400)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Final

from datalease.sharing import errors

MAX_PAGE: Final = 1000
_BAD: Final = "pageToken is not a token this server issued for this listing"


def _mac(key: bytes, payload: bytes) -> str:
    return hmac.new(key, b"page\x00" + payload, hashlib.sha256).hexdigest()[:32]


def issue(key: bytes, listing: str, after: str) -> str:
    payload = json.dumps([listing, after], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _mac(key, payload)


def read(key: bytes, listing: str, token: str) -> str:
    text, _, mac = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        found, after = json.loads(payload)
    except (ValueError, TypeError):
        raise errors.invalid(_BAD) from None
    if not hmac.compare_digest(mac, _mac(key, payload)) or found != listing or not isinstance(after, str):
        raise errors.invalid(_BAD)
    return after


def page(
    key: bytes, listing: str, items: list[dict[str, Any]], max_results: int | None, token: str | None
) -> dict[str, Any]:
    """Items sorted by name; the token is the last name already returned, signed for `listing`."""
    start = 0
    if token:
        after = read(key, listing, token)
        start = next((i for i, item in enumerate(items) if item["name"] > after), len(items))
    size = MAX_PAGE if max_results is None else max_results
    chosen = items[start : start + size]
    body: dict[str, Any] = {"items": chosen}
    if chosen and start + size < len(items):
        body["nextPageToken"] = issue(key, listing, chosen[-1]["name"])
    return body
