"""`datalease partner token | tokens | token-revoke` and `datalease usage`: profiles, refusals written
for people, and the metering figures after real reads."""

from __future__ import annotations

import io
import json
import shutil
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import requests
from cli_harness import count, expect, rows, run, single_error
from release_world import LUMEN, SENTIMETRICS
from sharing_world import HTTP_TIMEOUT, SCHEMA, Served, World, file_urls, get, json_lines, post


@pytest.fixture
def home(world: World, tmp_path: Path) -> Path:
    """A private copy of the world, for commands that write (no server)."""
    target = tmp_path / "home"
    shutil.copytree(world.home, target)
    return target


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def tokens(home: Path, partner: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = expect(run("partner", "tokens", partner, "--json", home=home), 0).json()
    return listed


# --- partner token ----------------------------------------------------------------------------------


def test_partner_token_writes_a_profile_with_the_default_endpoint(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "lumen.share"
    before = datetime.now(UTC)
    result = expect(run("partner", "token", "lumen-labs", "--out", out, home=home), 0)
    profile = json.loads(out.read_text())
    assert set(profile) == {"shareCredentialsVersion", "endpoint", "bearerToken", "expirationTime"}
    assert profile["shareCredentialsVersion"] == 1
    assert profile["endpoint"] == "http://127.0.0.1:8000/delta-sharing"
    expires = instant(profile["expirationTime"])
    assert (
        before + timedelta(days=90) - timedelta(minutes=1)
        <= expires
        <= datetime.now(UTC) + timedelta(days=90)
    )
    assert stat.S_IMODE(out.stat().st_mode) & 0o077 == 0, "the profile holds a secret: owner-only"
    token_id = profile["bearerToken"].split("_")[1]
    assert token_id in result.out
    assert profile["bearerToken"] not in result.out + result.err
    listed = tokens(home, "lumen-labs")
    assert [t["token_id"] for t in listed] == [token_id]
    assert profile["bearerToken"].split("_")[-1] not in json.dumps(listed)
    assert {"created_at", "expires_at", "revoked_at"} <= set(listed[0])
    assert listed[0]["revoked_at"] is None


def test_partner_token_expires_and_endpoint_options(home: Path, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    out = tmp_path / "short.share"
    expect(
        run(
            "partner",
            "token",
            "acme",
            "--out",
            out,
            "--expires",
            "12h",
            "--endpoint",
            "https://share.example.com/",
            home=home,
        ),
        0,
    )
    profile = json.loads(out.read_text())
    assert profile["endpoint"] == "https://share.example.com/delta-sharing"
    assert abs(instant(profile["expirationTime"]) - (now + timedelta(hours=12))) < timedelta(minutes=1)
    at = "2030-01-02T03:04:05Z"
    expect(run("partner", "token", "acme", "--out", out, "--expires", at, home=home), 0)
    assert instant(json.loads(out.read_text())["expirationTime"]) == instant(at)
    assert count(home, "partner_tokens", "partner = ?", ("acme",)) == 2


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("nobody",), "nobody"),
        (("lumen-labs", "--expires", "tomorrow"), "--expires"),
        (("lumen-labs", "--expires", "0d"), "--expires"),
        (("lumen-labs", "--expires", "-3h"), "--expires"),
        (("lumen-labs", "--expires", "2020-01-01T00:00:00Z"), "past"),
        (("lumen-labs", "--endpoint", "ftp://example.com"), "--endpoint"),
    ],
    ids=["unknown-partner", "words", "zero", "negative", "past-instant", "bad-endpoint"],
)
def test_partner_token_refuses_bad_inputs(
    home: Path, tmp_path: Path, args: tuple[str, ...], mentions: str
) -> None:
    out = tmp_path / "p.share"
    message = single_error(run("partner", "token", args[0], "--out", out, *args[1:], home=home))
    assert mentions in message, message
    assert not out.exists()
    assert count(home, "partner_tokens") == 0


def test_partner_token_refuses_an_out_path_it_cannot_write(home: Path, tmp_path: Path) -> None:
    message = single_error(
        run("partner", "token", "acme", "--out", tmp_path / "missing" / "p.share", home=home)
    )
    assert "missing" in message
    message = single_error(run("partner", "token", "acme", "--out", tmp_path, home=home))
    assert "directory" in message
    assert count(home, "partner_tokens") == 0


def test_token_revoke(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.share"
    expect(run("partner", "token", "sentimetrics", "--out", out, home=home), 0)
    token_id = json.loads(out.read_text())["bearerToken"].split("_")[1]
    revoked = expect(run("partner", "token-revoke", token_id, home=home), 0)
    assert token_id in revoked.out
    sql = "SELECT revoked_at FROM partner_tokens WHERE token_id = ?"
    first = rows(home, sql, (token_id,))
    assert first[0][0] is not None
    expect(run("partner", "token-revoke", token_id, home=home), 0)  # idempotent, keeps the first time
    assert rows(home, sql, (token_id,)) == first
    message = single_error(run("partner", "token-revoke", "0000000000000000", home=home))
    assert "0000000000000000" in message


# --- usage ----------------------------------------------------------------------------------------


def usage(home: Path, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = expect(run("usage", "--json", *args, home=home), 0).json()
    return rows


def stats_rows(lines: list[dict[str, Any]]) -> int:
    return sum(json.loads(line["file"]["stats"])["numRecords"] for line in lines if "file" in line)


def test_usage_counts_queries_files_rows_and_bytes(
    world: World, private_server: Callable[..., Served]
) -> None:
    running = private_server(world.home, ("lumen-labs", "sentimetrics"))
    lumen, sentimetrics = running.profile("lumen-labs"), running.profile("sentimetrics")
    base = f"/shares/{LUMEN}/schemas/{SCHEMA}/tables/posts"

    listed = get(lumen, "/shares")  # a request, not a query
    assert listed.status_code == 200
    query = json_lines(post(lumen, base + "/query", {}))
    urls = file_urls(query)
    changes = json_lines(get(lumen, base + "/changes", params={"startingVersion": 1}))
    change_urls = file_urls(changes)
    change_rows = 0
    for url in change_urls:
        change_rows += pq.read_table(io.BytesIO(requests.get(url, timeout=HTTP_TIMEOUT).content)).num_rows
    sent = sum(len(requests.get(url, timeout=HTTP_TIMEOUT).content) for url in change_urls)
    sent *= 2  # each change file was downloaded twice
    sent += sum(len(requests.get(url, timeout=HTTP_TIMEOUT).content) for url in urls[:2])
    ranged = requests.get(urls[2], headers={"Range": "bytes=0-3"}, timeout=HTTP_TIMEOUT)
    assert ranged.status_code == 206
    sent += 4
    assert requests.head(urls[3], timeout=HTTP_TIMEOUT).status_code == 200  # no bytes
    refused = post(lumen, base + "/query", {"version": 0})  # refused: nothing served
    assert refused.status_code == 400

    other = json_lines(post(sentimetrics, f"/shares/{SENTIMETRICS}/schemas/{SCHEMA}/tables/likes/query", {}))

    # Download byte counts are summed in memory and written at least once a second and at shutdown.
    running.server.stop()
    month = datetime.now(UTC).strftime("%Y-%m")
    figures = {(r["partner"], r["agreement_id"]): r for r in usage(running.home)}
    assert set(figures) == {("lumen-labs", LUMEN), ("sentimetrics", SENTIMETRICS)}
    mine = figures[("lumen-labs", LUMEN)]
    assert mine["month"] == month
    assert mine["queries"] == 2
    assert mine["files"] == len(urls) + len(change_urls)
    assert mine["rows"] == stats_rows(query) + change_rows
    assert mine["bytes"] == sent
    theirs = figures[("sentimetrics", SENTIMETRICS)]
    assert (theirs["queries"], theirs["files"], theirs["rows"], theirs["bytes"]) == (
        1,
        len(file_urls(other)),
        stats_rows(other),
        0,
    )
    assert usage(running.home, "--partner", "sentimetrics", "--month", month) == [theirs]
    assert "--month" in single_error(run("usage", "--month", "2026-13", home=running.home))


def test_partner_token_and_revoke_while_the_server_meters_requests(served: Served, tmp_path: Path) -> None:
    """Operators issue and revoke tokens while partners read: every read writes a usage row, and
    the commands must wait for the write lock rather than fail with "database is locked"."""
    profile = served.profile("lumen-labs")
    url = f"{profile.endpoint}/shares/{LUMEN}/schemas/{SCHEMA}/tables/posts/version"  # metered
    stop = threading.Event()

    def hammer() -> int:
        sent = 0
        with requests.Session() as session:
            while not stop.is_set():
                session.get(url, headers=profile.headers, timeout=HTTP_TIMEOUT)
                sent += 1
        return sent

    results = []
    with ThreadPoolExecutor(2) as pool:
        load = [pool.submit(hammer) for _ in range(2)]
        try:
            for i in range(2):
                results.append(
                    run("partner", "token", "acme", "--out", tmp_path / f"{i}.share", home=served.home)
                )
            for issued in tmp_path.glob("*.share"):
                token = json.loads(issued.read_text())["bearerToken"].split("_")[1]
                results.append(run("partner", "token-revoke", token, home=served.home))
        finally:
            stop.set()
        assert all(f.result() > 0 for f in load)
    failed = [r.describe() for r in results if r.code != 0]
    assert not failed, "\n\n".join(failed)
