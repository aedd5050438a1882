"""Driving the pages in-process: the sign-in form's CSRF token, and what an error page looks like."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf" value="([0-9a-f]*)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:2000]
    return found.group(1)


def login_csrf(client: TestClient) -> str:
    """Open the sign-in page (it sets the pre-session cookie) and return its forms' CSRF token."""
    page = client.get("/login")
    assert page.status_code == 200, page.text
    return csrf_of(page)


def is_error_page(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, (answer.status_code, answer.text[:2000])
    assert answer.headers["content-type"].startswith("text/html"), answer.headers
    assert 'role="alert"' in answer.text, answer.text[:2000]


def is_json_error(answer: httpx.Response, status: int, code: str | None = None) -> str:
    assert answer.status_code == status, (answer.status_code, answer.text[:2000])
    body = answer.json()
    assert set(body) == {"errorCode", "message"}, body
    if code is not None:
        assert body["errorCode"] == code, body
    message: str = body["message"]
    return message
