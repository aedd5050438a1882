"""No 500s from hostile bytes: non-ASCII text where a token or signature is compared, ids too large
for 64 bits, a validly signed user the lake does not know. Each is a 4xx in the usual shape (JSON
`{errorCode, message}` for the APIs, the error page for pages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import pytest
from fastapi.testclient import TestClient
from pages import is_error_page, is_json_error, login_csrf
from small_home import AGREEMENT, SCHEMA, TABLE, SmallHome, settings

from datalease.sharing.signing import CREDENTIAL, EXPIRES, SIGNATURE
from datalease.web.sessions import user_token
from datalease.workspace import Workspace

HOSTILE: Final = "caf\u00e9-\u2603-\u0663"  # Latin-1, a snowman, an Arabic-Indic digit
# What a client puts on the wire as UTF-8; the server reads header bytes as Latin-1, so non-ASCII.
HOSTILE_HEADER: Final = HOSTILE.encode()
FILE: Final = f"/delta-sharing/files/{AGREEMENT}/{TABLE}/part-0.parquet"
QUERY: Final = f"/delta-sharing/shares/{AGREEMENT}/schemas/{SCHEMA}/tables/{TABLE}/query"


@pytest.mark.parametrize(
    "params",
    [
        {CREDENTIAL: "0123456789abcdef", EXPIRES: "4102444800", SIGNATURE: HOSTILE},
        {CREDENTIAL: "0123456789abcdef", EXPIRES: "\u00b2\u0663", SIGNATURE: "0" * 64},
        {CREDENTIAL: HOSTILE, EXPIRES: "4102444800", SIGNATURE: "0" * 64},
        {CREDENTIAL: "0123456789abcdef", EXPIRES: "9" * 5000, SIGNATURE: "0" * 64},
    ],
    ids=["signature", "expiry-digits", "credential", "expiry-huge"],
)
def test_a_hostile_file_url_is_403(app_client: Callable[..., TestClient], params: dict[str, str]) -> None:
    client = app_client()
    is_json_error(client.get(FILE, params=params), 403, "PERMISSION_DENIED")
    assert client.head(FILE, params=params).status_code == 403


def test_hostile_bearer_tokens_are_401(app_client: Callable[..., TestClient]) -> None:
    client = app_client()
    hostile = {"Authorization": b"Bearer " + HOSTILE_HEADER}
    for method, path in (
        ("POST", "/api/v1/platform/events"),
        ("GET", "/api/v1/partner/forget"),
        ("GET", "/delta-sharing/shares"),
        ("POST", QUERY),
    ):
        answer = client.request(method, path, headers=hostile, json={})
        is_json_error(answer, 401, "UNAUTHENTICATED")


def test_a_hostile_sign_in_link_is_the_error_page(app_client: Callable[..., TestClient]) -> None:
    client = app_client()
    for token in (
        f"u.1.4102444800.{HOSTILE}",
        "u.\u0661.4102444800." + "0" * 64,
        f"u.{2**64}.4102444800." + "0" * 64,
    ):
        is_error_page(client.get("/login", params={"token": token}), 401)


def test_a_hostile_session_cookie_is_signed_out(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    client = app_client()
    hostile = {"Cookie": b"dl_session=" + HOSTILE_HEADER}
    is_error_page(client.get(f"/users/{home.user_id}/settings", headers=hostile), 401)
    is_error_page(client.get("/operator", headers=hostile), 401)
    forged = {"Cookie": f"dl_session=u.{home.user_id}.4102444800.".encode() + HOSTILE_HEADER}
    is_error_page(client.get(f"/users/{home.user_id}/settings", headers=forged), 401)


def test_a_hostile_operator_token_or_csrf_field_is_the_error_page(
    app_client: Callable[..., TestClient],
) -> None:
    client = app_client()
    csrf = login_csrf(client)
    is_error_page(client.post("/login/operator", data={"token": HOSTILE, "csrf": csrf}), 401)
    is_error_page(client.post("/login/operator", data={"token": "dlp_x", "csrf": HOSTILE}), 403)
    is_error_page(client.post("/logout", data={"csrf": HOSTILE}), 403)


@pytest.mark.parametrize("field", ["user_id", "post_id"])
def test_an_event_id_beyond_64_bits_is_400_naming_the_field(
    app_client: Callable[..., TestClient], home: SmallHome, field: str
) -> None:
    client = app_client()
    event = {"type": "post_delete", "user_id": home.user_id, "post_id": 1, field: 2**63}
    message = is_json_error(
        client.post("/api/v1/platform/events", json=event, headers=home.platform_headers),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert f"events[0].{field}: expected a non-negative integer id up to {2**63 - 1}" in message, message


def test_a_signed_user_missing_from_the_lake_gets_the_error_page(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    client = app_client()
    missing = 10**12
    key = Workspace(settings(home.home)).master_key
    signed_in = client.get("/login", params={"token": user_token(key, missing)})
    assert signed_in.status_code == 303, signed_in.text
    is_error_page(client.get(f"/users/{missing}/settings"), 404)
    demo = app_client(demo_login=True)
    is_error_page(demo.post("/login/demo", data={"user_id": str(2**64), "csrf": login_csrf(demo)}), 404)
