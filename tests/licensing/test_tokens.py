"""Partner bearer tokens: format, parsing, --expires, and the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from datalease.licensing.tokens import Bearer, expiry, new_bearer, parse_bearer, secret_digest
from datalease.sharing.model import Usage
from datalease.store.db import session_scope
from datalease.store.licensing import add_partner
from datalease.store.releases import catalogue_version
from datalease.store.sharing import (
    PartnerTokenRow,
    UnknownTokenError,
    authenticate,
    list_tokens,
    record_usage,
    revoke_token,
    save_token,
    usage_totals,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_bearer_round_trips_and_secrets_differ() -> None:
    first, second = new_bearer(), new_bearer()
    assert parse_bearer(first.text) == first
    assert first.secret != second.secret and first.token_id != second.token_id


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dls_",
        "Bearer dls_0123456789abcdef_" + "a" * 43,
        "dls_0123456789abcdeZ_" + "a" * 43,
        "dls_0123456789abcdef_short",
    ],
)
def test_malformed_bearers_are_not_parsed(text: str) -> None:
    assert parse_bearer(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, NOW + timedelta(days=90)),
        ("30d", NOW + timedelta(days=30)),
        ("12h", NOW + timedelta(hours=12)),
        ("5m", NOW + timedelta(minutes=5)),
        ("2027-01-01", datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_expiry_accepts_durations_and_instants(text: str | None, expected: datetime) -> None:
    assert expiry(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0d", "positive duration"),
        ("2020-01-01", "in the past"),
        ("soon", "expected a duration"),
        ("3w", "expected a duration"),
    ],
)
def test_expiry_rejects_bad_values_with_the_option_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="--expires") as raised:
        expiry(text, NOW)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3650d", NOW + timedelta(days=3650)),
        ("87600h", NOW + timedelta(hours=87600)),
        ("5256000m", NOW + timedelta(minutes=5256000)),
        ("2036-11-24T12:00:00Z", datetime(2036, 11, 24, 12, 0, tzinfo=UTC)),
    ],
)
def test_expiry_accepts_up_to_ten_years(text: str, expected: datetime) -> None:
    assert expiry(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3651d", "longer than the maximum token lifetime of 10 years"),
        ("99999999d", "longer than the maximum token lifetime of 10 years"),  # past datetime.max
        ("99999999999h", "longer than the maximum token lifetime of 10 years"),  # past timedelta's range
        ("9" * 5_000 + "m", "longer than the maximum token lifetime of 10 years"),  # past int()'s digits
        ("2036-11-28", "later than the maximum token lifetime of 10 years"),
        ("9999-12-31T23:59:59Z", "later than the maximum token lifetime of 10 years"),
        ("9999-12-31T23:00:00-05:00", "expected a duration"),  # year 10000 in UTC
        ("10000-01-01", "expected a duration"),
        ("", "expected a duration"),
        ("   ", "expected a duration"),
    ],
    ids=["3651d", "99999999d", "99999999999h", "5000-digits", "after-ten-years", "year-9999", "year-10000-in-utc", "year-10000", "empty", "blank"],
)  # fmt: skip
def test_expiry_refuses_lifetimes_beyond_ten_years_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^--expires ") as raised:
        expiry(text, NOW)
    shown = str(raised.value)
    assert message in shown
    assert "at most 10 years (3650d) from now" in shown  # what is allowed, every time
    assert "\n" not in shown and len(shown) < 300


def test_tokens_are_stored_hashed_authenticated_and_revoked(engine: Engine) -> None:
    bearer = new_bearer()
    with session_scope(engine) as session:
        add_partner(session, "lumen-labs")
        save_token(session, "lumen-labs", bearer, created_at=NOW, expires_at=NOW + timedelta(days=1))
    with session_scope(engine) as session:
        row = session.get(PartnerTokenRow, bearer.token_id)
        assert row is not None and row.secret_sha256 == secret_digest(bearer.secret)
        assert bearer.secret not in row.secret_sha256
        other = Bearer(bearer.token_id, new_bearer().secret)
        found, wrong_secret, unknown = authenticate(session.connection(), [bearer, other, new_bearer()])
        assert found is not None and wrong_secret is None and unknown is None
        token, catalogue = found
        assert token.partner == "lumen-labs" and token.state(NOW) == "active"
        assert token.state(NOW + timedelta(days=2)) == "expired"
        assert catalogue == catalogue_version(session)  # read in the same statement
        assert authenticate(session.connection(), [bearer, bearer]) == [found, found]
    with session_scope(engine) as session:
        first = revoke_token(session, bearer.token_id, NOW + timedelta(hours=1))
        again = revoke_token(session, bearer.token_id, NOW + timedelta(hours=2))
        assert first.revoked_at == again.revoked_at == NOW + timedelta(hours=1)
        assert [t.state(NOW) for t in list_tokens(session, "lumen-labs")] == ["revoked"]
        with pytest.raises(UnknownTokenError, match="no token"):
            revoke_token(session, "0000000000000000", NOW)


def test_a_token_needs_an_existing_partner(engine: Engine) -> None:
    with session_scope(engine) as session, pytest.raises(LookupError, match="partner add nobody"):
        save_token(session, "nobody", new_bearer(), created_at=NOW, expires_at=NOW + timedelta(days=1))


def test_usage_sums_per_month_partner_and_agreement(engine: Engine) -> None:
    with session_scope(engine) as session:
        record_usage(session, Usage("p", "a1", "posts", "query", files=3, rows=30), NOW)
        record_usage(session, Usage("p", "a1", "posts", "changes", files=1, rows=5), NOW)
        record_usage(session, Usage("p", "a1", "posts", "metadata"), NOW)
        record_usage(session, Usage("p", "a1", "posts", "file", files=1, bytes=1000), NOW)
        record_usage(session, Usage("p", "a1", "posts", "query", files=2, rows=7), NOW + timedelta(days=10))
        record_usage(session, Usage("q", "a2", None, "list"), NOW)
    with session_scope(engine) as session:
        totals = usage_totals(session)
        assert [(t.month, t.partner, t.agreement_id) for t in totals] == [
            ("2026-11", "p", "a1"),
            ("2026-11", "q", "a2"),
            ("2026-12", "p", "a1"),
        ]
        november = totals[0]
        assert (november.queries, november.requests, november.files, november.rows, november.bytes) == (
            2,
            3,
            4,
            35,
            1000,
        )
        assert [t.month for t in usage_totals(session, partner="p", month="2026-12")] == ["2026-12"]
        assert usage_totals(session, partner="nobody") == []
