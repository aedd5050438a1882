"""Sessions end: signing out ends a session at once (its cookie is refused afterwards), rotating the
API token ends every operator session opened with the old token, and sessions live in the store, so
every server on the same database agrees."""

from __future__ import annotations

from collections.abc import Callable

from cli_harness import expect, run, single_error
from fastapi.testclient import TestClient
from pages import csrf_of, is_error_page, login_csrf
from small_home import SmallHome, settings

from datalease.web.routes import SESSION_COOKIE
from datalease.web.sessions import user_token
from datalease.workspace import Workspace


def _user_session(client: TestClient, home: SmallHome) -> str:
    key = Workspace(settings(home.home)).master_key
    signed_in = client.get("/login", params={"token": user_token(key, home.user_id)})
    assert signed_in.status_code == 303, signed_in.text
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie, signed_in.headers
    return cookie


def _operator_session(client: TestClient, token: str) -> str:
    signed_in = client.post("/login/operator", data={"token": token, "csrf": login_csrf(client)})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/operator", signed_in.text
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie, signed_in.headers
    return cookie


def test_after_signing_out_the_old_cookie_is_refused(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    client = app_client()
    cookie = _user_session(client, home)
    page = client.get(f"/users/{home.user_id}/settings")
    assert page.status_code == 200, page.text
    signed_out = client.post("/logout", data={"csrf": csrf_of(page)})
    assert signed_out.status_code == 303, signed_out.text
    replay = app_client()  # a client that kept the cookie
    replay.cookies.set(SESSION_COOKIE, cookie)
    is_error_page(replay.get(f"/users/{home.user_id}/settings"), 401)


def test_an_operator_signing_out_ends_that_session(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    client = app_client()
    cookie = _operator_session(client, home.api_token)
    console = client.get("/operator")
    assert console.status_code == 200, console.text
    assert client.post("/logout", data={"csrf": csrf_of(console)}).status_code == 303
    replay = app_client()
    replay.cookies.set(SESSION_COOKIE, cookie)
    is_error_page(replay.get("/operator"), 401)


def test_rotating_the_api_token_ends_the_operators_sessions(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    client = app_client()
    old = _operator_session(client, home.api_token)
    user = app_client()
    _user_session(user, home)
    assert client.get("/operator").status_code == 200

    rotated = expect(run("api-token", "rotate", home=home.home), 0)
    token_file = home.home / "keys" / "api.token"
    assert str(token_file) in rotated.out, rotated.describe()
    new_token = token_file.read_text().strip()
    assert new_token != home.api_token and new_token.startswith("dlp_")
    assert token_file.stat().st_mode & 0o777 == 0o600

    replay = app_client()
    replay.cookies.set(SESSION_COOKIE, old)
    is_error_page(replay.get("/operator"), 401)
    assert user.get(f"/users/{home.user_id}/settings").status_code == 200  # users are not affected
    # the old token is refused by the API and the sign-in form, the new one works
    event = {"type": "user_protect", "user_id": home.user_id}
    assert (
        client.post("/api/v1/platform/events", json=event, headers=home.platform_headers).status_code == 401
    )
    fresh = app_client()
    is_error_page(
        fresh.post("/login/operator", data={"token": home.api_token, "csrf": login_csrf(fresh)}), 401
    )
    _operator_session(fresh, new_token)
    assert fresh.get("/operator").status_code == 200


def test_a_replaced_token_file_ends_the_operators_sessions(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    """What rotation is underneath (and what an operator who edits the file does)."""
    client = app_client()
    _operator_session(client, home.api_token)
    assert client.get("/operator").status_code == 200
    (home.home / "keys" / "api.token").write_text("dlp_replaced-by-hand\n")
    is_error_page(client.get("/operator"), 401)


def test_rotation_with_the_token_in_the_environment_says_where_to_change_it(home: SmallHome) -> None:
    message = single_error(run("api-token", "rotate", home=home.home, env={"DATALEASE_API_TOKEN": "dlp_env"}))
    assert "DATALEASE_API_TOKEN" in message, message


def test_a_session_opened_on_one_server_holds_on_another(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    first, second = app_client(), app_client()  # two apps, one store
    cookie = _user_session(first, home)
    second.cookies.set(SESSION_COOKIE, cookie)
    page = second.get(f"/users/{home.user_id}/settings")
    assert page.status_code == 200, page.text
    assert second.post("/logout", data={"csrf": csrf_of(page)}).status_code == 303
    is_error_page(first.get(f"/users/{home.user_id}/settings"), 401)
