"""Signed, expiring file URLs.

The signature is HMAC-SHA256 over the file's share-relative path, the token it was issued to and the
expiry instant, so a URL can be neither bent to another file nor extended nor moved to another
partner. The parameter is called `X-Amz-Signature` because the client's Delta kernel only fetches
http(s) URLs that carry a presigned-URL parameter it recognises.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, quote_plus

SIGNATURE: Final = "X-Amz-Signature"
EXPIRES: Final = "X-Amz-Expires"
CREDENTIAL: Final = "X-Amz-Credential"
_CONTEXT: Final = b"datalease/sharing/file-urls/v1"
_EXPIRES: Final = re.compile(r"[0-9]{1,15}")  # ASCII digits: str.isdigit() also takes "²" and "٣"


def signing_key(master_key: bytes) -> bytes:
    return hmac.new(master_key, _CONTEXT, hashlib.sha256).digest()


def _signature(key: bytes, path: str, token_id: str, expires: int) -> str:
    message = f"{path}\n{token_id}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=65_536)
def _quoted(path: str) -> str:
    return quote(path)


@functools.lru_cache(maxsize=1_024)
def _quoted_param(value: str) -> str:
    return quote_plus(value)


def signed_url(base: str, key: bytes, path: str, token_id: str, expires: int) -> str:
    """`base` + the quoted `path` + the signature parameters (quoting cached: /query lists many files)."""
    signature = _signature(key, path, token_id, expires)
    return f"{base}/{_quoted(path)}?{CREDENTIAL}={_quoted_param(token_id)}&{EXPIRES}={expires}&{SIGNATURE}={signature}"


@dataclass(frozen=True)
class SignedRequest:
    path: str
    token_id: str
    expires: int


class BadSignatureError(ValueError):
    """The URL was not issued by us, was altered, or has expired."""


def verify(key: bytes, path: str, params: dict[str, str], now: float) -> SignedRequest:
    token_id = params.get(CREDENTIAL, "")
    raw_expires = params.get(EXPIRES, "")
    signature = params.get(SIGNATURE, "")
    if not (token_id and _EXPIRES.fullmatch(raw_expires) and signature):
        raise BadSignatureError(f"file URLs must carry {CREDENTIAL}, {EXPIRES} (Unix time) and {SIGNATURE}")
    expires = int(raw_expires)
    expected = _signature(key, path, token_id, expires).encode()
    # Bytes, not str: compare_digest refuses str with non-ASCII characters (a hostile URL has them).
    if not hmac.compare_digest(signature.encode("utf-8", "surrogateescape"), expected):
        raise BadSignatureError("the file URL's signature does not match: it was altered or not issued here")
    if expires <= now:
        raise BadSignatureError("the file URL has expired: query the table again for fresh URLs")
    return SignedRequest(path, token_id, expires)
