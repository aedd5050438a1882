"""Signed file URLs: any change to path, token, expiry or signature is refused, and so is expiry."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from datalease.sharing.signing import (
    CREDENTIAL,
    EXPIRES,
    SIGNATURE,
    BadSignatureError,
    signed_url,
    signing_key,
    verify,
)

KEY = signing_key(b"k" * 32)
PATH = "lumen-genai/posts/bucket=3/part-0.parquet"


def _params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_a_fresh_url_verifies() -> None:
    url = signed_url("http://h/files", KEY, PATH, "tok1", 2_000)
    assert unquote(urlsplit(url).path) == "/files/" + PATH
    assert verify(KEY, PATH, _params(url), now=1_000).token_id == "tok1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("path", "does not match"),
        ("token", "does not match"),
        ("expires", "does not match"),
        ("signature", "does not match"),
        ("key", "does not match"),
        ("missing", "must carry"),
        ("late", "expired"),
    ],
)
def test_tampering_or_expiry_is_refused(change: str, message: str) -> None:
    params = _params(signed_url("http://h/files", KEY, PATH, "tok1", 2_000))
    path, key, now = PATH, KEY, 1_000.0
    if change == "path":
        path = "lumen-genai/posts/bucket=3/part-1.parquet"
    elif change == "token":
        params[CREDENTIAL] = "tok2"
    elif change == "expires":
        params[EXPIRES] = "9999999999"
    elif change == "signature":
        params[SIGNATURE] = params[SIGNATURE][:-1] + ("0" if params[SIGNATURE][-1] != "0" else "1")
    elif change == "key":
        key = signing_key(b"other" * 8)
    elif change == "missing":
        del params[SIGNATURE]
    elif change == "late":
        now = 2_000.0
    with pytest.raises(BadSignatureError, match=message):
        verify(key, path, params, now)
