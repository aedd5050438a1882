"""Bounded input before authentication, on a real `datalease serve`: the bearer token is checked
before any body is read, bodies are capped per endpoint (413 with the usual error body, whether the
size is declared or only found while streaming), and a call takes at most so many events."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from typing import Final

import pytest
import requests
from fastapi.testclient import TestClient
from raw_http import PIECE, post_streaming, rss_bytes
from sharing_world import HTTP_TIMEOUT, Server, start_server
from small_home import AGREEMENT, SCHEMA, TABLE, SmallHome

from datalease.config import Settings

HUGE: Final = 300 * 1024 * 1024  # what a client claims to send
STREAMED_AT_MOST: Final = 96 * PIECE  # what the test sends before it gives up waiting for an answer
# What the client may have sent before it sees an answer sent at once: the kernel's socket buffers.
IN_FLIGHT_AT_MOST: Final = 32 * PIECE
RSS_GROWTH_AT_MOST: Final = 48 * 1024 * 1024
EVENTS: Final = "/api/v1/platform/events"
ACK: Final = "/api/v1/partner/forget/ack"
QUERY: Final = f"/delta-sharing/shares/{AGREEMENT}/schemas/{SCHEMA}/tables/{TABLE}/query"
SMALL_CAPS: Final = {
    "DATALEASE_MAX_BODY_BYTES": str(64 * 1024),
    "DATALEASE_MAX_EVENTS_BODY_BYTES": str(128 * 1024),
    "DATALEASE_MAX_FORM_BODY_BYTES": str(16 * 1024),
}


@pytest.fixture(scope="module")
def server(small_home: SmallHome, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module (on its own copy of the home), with small caps."""
    root = tmp_path_factory.mktemp("body-limits")
    shutil.copytree(small_home.home, root / "home")
    running = start_server(
        root / "home", root / "logs", env={"DATALEASE_REVOCATION_WORKER": "false", **SMALL_CAPS}
    )
    yield running
    running.stop()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_unauthenticated_oversized_post_is_refused_before_its_body_is_read(
    server: Server, chunked: bool
) -> None:
    before = rss_bytes(server.process.pid)
    for path in (EVENTS, ACK, QUERY):
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            answer = post_streaming(
                server.port,
                path,
                total=STREAMED_AT_MOST if chunked else HUGE,
                headers=headers,
                chunked=chunked,
            )
            assert answer.body_sent < IN_FLIGHT_AT_MOST, (path, headers, answer)
            assert answer.status == 401, (path, answer)
            assert json.loads(answer.body)["errorCode"] == "UNAUTHENTICATED", answer
    grown = rss_bytes(server.process.pid) - before
    assert grown < RSS_GROWTH_AT_MOST, f"the server's RSS grew by {grown / 2**20:.0f} MiB"
    assert requests.get(server.endpoint + "/shares", timeout=HTTP_TIMEOUT).status_code == 401  # still up


def _cases(home: SmallHome) -> list[tuple[str, dict[str, str], str, int]]:
    """(path, headers, content type, cap) of every authenticated endpoint that takes a body."""
    return [
        (EVENTS, home.platform_headers, "application/json", 128 * 1024),
        (ACK, home.partner_headers, "application/json", 64 * 1024),
        (QUERY, home.partner_headers, "application/json", 64 * 1024),
        ("/login/operator", {}, "application/x-www-form-urlencoded", 16 * 1024),
    ]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_endpoints_cap_is_413_with_the_usual_error_body(
    server: Server, small_home: SmallHome, chunked: bool
) -> None:
    before = rss_bytes(server.process.pid)
    for path, headers, content_type, cap in _cases(small_home):
        answer = post_streaming(
            server.port,
            path,
            total=STREAMED_AT_MOST if chunked else HUGE,
            headers=headers,
            chunked=chunked,
            content_type=content_type,
        )
        assert answer.status == 413, (path, answer)
        assert answer.body_sent < IN_FLIGHT_AT_MOST, (path, answer.body_sent)
        if path.startswith("/login"):
            assert answer.headers["content-type"].startswith("text/html"), answer.headers
            assert f"{cap:,} bytes" in answer.body.decode(), answer.body[:2000]
        else:
            error = json.loads(answer.body)
            assert error["errorCode"] == "INVALID_PARAMETER_VALUE", error
            assert f"{cap:,} bytes" in error["message"], error
    grown = rss_bytes(server.process.pid) - before
    assert grown < RSS_GROWTH_AT_MOST, f"the server's RSS grew by {grown / 2**20:.0f} MiB"


def test_bodies_within_the_caps_are_served(server: Server, small_home: SmallHome) -> None:
    home = small_home
    query = requests.post(
        server.endpoint + QUERY[len("/delta-sharing") :],
        json={"predicateHints": ["x" * 1000]},
        headers=home.partner_headers,
        timeout=HTTP_TIMEOUT,
    )
    assert query.status_code == 200, query.text
    ack = requests.post(
        server.base + ACK, json={"ids": ["0" * 32]}, headers=home.partner_headers, timeout=HTTP_TIMEOUT
    )
    assert ack.status_code == 403, ack.text  # not its entry: the body was read and judged


def test_a_call_takes_at_most_so_many_events(app_client: Callable[..., TestClient], home: SmallHome) -> None:
    client = app_client()
    limit = Settings().max_events_per_call
    assert limit == 10_000
    event = {"type": "user_protect", "user_id": home.user_id}
    answer = client.post(EVENTS, json={"events": [event] * (limit + 1)}, headers=home.platform_headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["errorCode"] == "INVALID_PARAMETER_VALUE"
    assert f"at most {limit:,} events" in answer.json()["message"], answer.json()
    few = app_client(max_events_per_call=2)
    answer = few.post(EVENTS, json={"events": [event] * 3}, headers=home.platform_headers)
    assert answer.status_code == 400 and "at most 2 events" in answer.json()["message"], answer.text
