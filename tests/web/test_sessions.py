"""Signed sign-in links and CSRF tokens: forged, altered, expired or foreign tokens prove nothing
(server-side sessions: tests/server/test_sessions_end.py)."""

from __future__ import annotations

import pytest

from datalease.web.sessions import Viewer, csrf_ok, csrf_token, read_token, user_token

KEY = b"m" * 32
NOW = 1_800_000_000


def test_a_user_token_proves_that_user_until_it_expires() -> None:
    token = user_token(KEY, 42, expires=NOW + 60)
    assert read_token(KEY, token, now=NOW) == Viewer(42, False)
    assert read_token(KEY, token, now=NOW + 60) is None


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t.replace("u.42.", "u.43."),  # another user
        lambda t: t.rsplit(".", 1)[0] + "." + "0" * 64,  # another signature
        lambda t: t.replace(f".{NOW + 60}.", f".{NOW + 10**6}."),  # a later expiry
        lambda t: "o." + t.split(".", 2)[2],  # promoted to operator
        lambda t: t + ".x",
        lambda t: "",
        lambda t: "u.abc.def.ghi",
        lambda t: t.replace("u.42.", "u.\u0664\u0662."),  # Arabic-Indic digits that int() would read
        lambda t: t.rsplit(".", 1)[0] + ".\u00e9" * 64,  # non-ASCII signature
    ],
)
def test_altered_tokens_prove_nothing(forge: object) -> None:
    token = user_token(KEY, 42, expires=NOW + 60)
    assert callable(forge)
    assert read_token(KEY, forge(token), now=NOW) is None


def test_another_key_proves_nothing() -> None:
    assert read_token(b"k" * 32, user_token(KEY, 42, expires=NOW + 60), now=NOW) is None


def test_csrf_tokens_are_bound_to_their_session() -> None:
    mine, theirs = user_token(KEY, 1, expires=NOW + 60), user_token(KEY, 2, expires=NOW + 60)
    assert csrf_ok(KEY, mine, csrf_token(KEY, mine))
    assert not csrf_ok(KEY, mine, csrf_token(KEY, theirs))
    assert not csrf_ok(KEY, mine, "")
    assert not csrf_ok(KEY, None, csrf_token(KEY, mine))
    assert not csrf_ok(KEY, mine, "\u00e9" * 64)  # non-ASCII: refused, not a TypeError
