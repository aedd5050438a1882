"""Signed file URLs: the bytes of the right file, HEAD and Range; refused when altered, expired, bent
into a path traversal, or once a later release removed the file."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pyarrow.parquet as pq
import pytest
import requests
from cli_harness import expect, run
from deltalake import DeltaTable
from release_world import LUMEN, T0
from sharing_world import HTTP_TIMEOUT, SCHEMA, Served, World, error_of, file_urls, get, json_lines, post

from datalease.sharing.signing import signed_url, signing_key

TABLE = f"/shares/{LUMEN}/schemas/{SCHEMA}/tables/posts"


def query_urls(served: Served, body: dict[str, object] | None = None, fmt: str = "parquet") -> list[str]:
    headers = {"delta-sharing-capabilities": f"responseformat={fmt}"}
    return file_urls(
        json_lines(post(served.profile("lumen-labs"), f"{TABLE}/query", body or {}, headers=headers))
    )


def local_file(home: Path, url: str) -> Path:
    """The table file a URL names: /delta-sharing/files/<share>/<table>/<path inside the table>."""
    path = urlsplit(url).path
    share, table, relative = path.split("/files/", 1)[1].split("/", 2)
    return home / "shares" / share / table / requests.utils.unquote(relative)


def with_params(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return urlunsplit(parts._replace(query=urlencode(params)))


def key_of(home: Path) -> bytes:
    return signing_key(bytes.fromhex((home / "keys" / "master.key").read_text().strip()))


def raw_get(url_base: str, raw_path: str) -> tuple[int, bytes, str]:
    """GET with the path sent byte for byte (requests/urllib3 would normalise `..` away)."""
    parts = urlsplit(url_base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=HTTP_TIMEOUT)
    try:
        connection.request("GET", raw_path)
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("content-type") or ""
    finally:
        connection.close()


# --- serving --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_file_url_serves_the_files_bytes(served: Served, fmt: str) -> None:
    urls = query_urls(served, fmt=fmt)
    assert len(urls) == len(DeltaTable(str(served.world.table(LUMEN, "posts").path)).file_uris())
    for url in urls[:3]:
        assert "X-Amz-Signature=" in url
        answer = requests.get(url, timeout=HTTP_TIMEOUT)
        assert answer.status_code == 200, answer.text
        assert answer.content == local_file(served.home, url).read_bytes()
        assert answer.content[:4] == b"PAR1"


def test_head_and_range_on_a_file_url(served: Served, tmp_path: Path) -> None:
    url = query_urls(served)[0]
    content = local_file(served.home, url).read_bytes()
    size = len(content)
    head = requests.head(url, timeout=HTTP_TIMEOUT)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == size
    assert head.content == b""
    assert head.headers.get("accept-ranges") == "bytes"
    cases = {
        "bytes=0-3": (0, 3),
        f"bytes={size - 8}-": (size - 8, size - 1),
        "bytes=-8": (size - 8, size - 1),
        "bytes=4-99999999": (4, size - 1),
    }
    for header, (first, last) in cases.items():
        part = requests.get(url, headers={"Range": header}, timeout=HTTP_TIMEOUT)
        assert part.status_code == 206, (header, part.status_code)
        assert part.content == content[first : last + 1], header
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}", header
    outside = requests.get(url, headers={"Range": f"bytes={size + 10}-"}, timeout=HTTP_TIMEOUT)
    assert outside.status_code == 416
    # a reader that only uses ranges (pyarrow over HTTP) reads the file
    (tmp_path / "f.parquet").write_bytes(requests.get(url, timeout=HTTP_TIMEOUT).content)
    assert pq.read_table(tmp_path / "f.parquet").num_rows > 0


# --- refusals -------------------------------------------------------------------------------------


def test_altered_file_urls_are_403(served: Served) -> None:
    urls = query_urls(served)
    url, other = urls[0], urls[1]
    params = dict(parse_qsl(urlsplit(url).query))
    signature = params["X-Amz-Signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    tampered = {
        "signature": with_params(url, **{"X-Amz-Signature": flipped}),
        "expiry extended": with_params(url, **{"X-Amz-Expires": str(int(params["X-Amz-Expires"]) + 3600)}),
        "no signature": with_params(url, **{"X-Amz-Signature": None}),
        "another token": with_params(url, **{"X-Amz-Credential": "0123456789abcdef"}),
        "another file": urlunsplit(urlsplit(other)._replace(query=urlsplit(url).query)),
    }
    for what, bad in tampered.items():
        answer = requests.get(bad, timeout=HTTP_TIMEOUT)
        error_of(answer, 403, "PERMISSION_DENIED")
        assert answer.content[:4] != b"PAR1", what
    head = requests.head(tampered["signature"], timeout=HTTP_TIMEOUT)
    assert head.status_code == 403


def test_expired_file_url_is_403(served: Served) -> None:
    url = query_urls(served)[0]
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    base, path = parts.path.split("/files/", 1)
    expired = signed_url(
        f"{parts.scheme}://{parts.netloc}{base}/files",
        key_of(served.home),
        requests.utils.unquote(path),
        params["X-Amz-Credential"],
        int(time.time()) - 60,
    )
    assert urlsplit(expired).path == parts.path
    message = error_of(requests.get(expired, timeout=HTTP_TIMEOUT), 403, "PERMISSION_DENIED")
    assert "expired" in message


def test_path_traversal_never_serves_anything_outside_the_tables(served: Served) -> None:
    url = query_urls(served)[0]
    parts = urlsplit(url)
    prefix, relative = parts.path.split("/files/", 1)
    query = parts.query
    token = dict(parse_qsl(query))["X-Amz-Credential"]
    key = key_of(served.home)
    share_table = "/".join(relative.split("/")[:2])
    attempts = [
        f"{prefix}/files/{share_table}/../../../datalease.db?{query}",
        f"{prefix}/files/{share_table}/%2e%2e/%2e%2e/%2e%2e/datalease.db?{query}",
        f"{prefix}/files/{share_table}/..%2F..%2F..%2Fdatalease.db?{query}",
        f"{prefix}/files/../../keys/master.key?{query}",
        f"{prefix}/files/{LUMEN}/posts/%2Fetc%2Fpasswd?{query}",
    ]
    # validly signed paths that climb out (as if the signing key were used on a bad path)
    for target in (f"{LUMEN}/posts/../../../datalease.db", f"{LUMEN}/../../keys/master.key"):
        forged = signed_url(
            f"{parts.scheme}://{parts.netloc}{prefix}/files", key, target, token, int(time.time()) + 600
        )
        forged_parts = urlsplit(forged)
        attempts.append(f"{prefix}/files/{quote(target)}?{forged_parts.query}")
        attempts.append(f"{prefix}/files/{target}?{forged_parts.query}")
    secrets = (b"SQLite format 3", (served.home / "keys" / "master.key").read_bytes().strip())
    for raw_path in attempts:
        status, body, content_type = raw_get(url, raw_path)
        assert status in (400, 403, 404), (raw_path, status, body[:200])
        assert not any(secret in body for secret in secrets), (raw_path, body[:200])
        assert body[:4] != b"PAR1", raw_path
        assert content_type.startswith("application/json"), (raw_path, content_type)
        error = json.loads(body)
        expected = {400: "INVALID_PARAMETER_VALUE", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST"}
        assert error["errorCode"] == expected[status], (raw_path, error)


def test_a_file_removed_by_a_later_release_is_404_and_its_rows_never_come_back(
    world: World, private_server: Callable[..., Served]
) -> None:
    """Serve the world as it was after release 1, take URLs, revoke, release: the old URL of the file
    that held the victim's rows answers 404, old versions are refused, other URLs still work."""
    running: Served = private_server(world.home_r1, ("lumen-labs",))
    lumen = running.profile("lumen-labs")
    bucket = world.victim_keys[LUMEN][0]
    before = query_urls(running)
    victims_file = [u for u in before if f"/bucket={bucket}/" in requests.utils.unquote(urlsplit(u).path)]
    assert len(victims_file) == 1, before
    assert requests.get(victims_file[0], timeout=HTTP_TIMEOUT).status_code == 200

    opt_out, release = (T0 + timedelta(days=1)).isoformat(), (T0 + timedelta(days=2)).isoformat()
    expect(
        run(
            "consent",
            "set",
            str(world.victim),
            "share_with_partners",
            "false",
            "--at",
            opt_out,
            home=running.home,
        ),
        0,
    )
    expect(run("release", "build", LUMEN, "--at", release, home=running.home), 0)

    error_of(requests.get(victims_file[0], timeout=HTTP_TIMEOUT), 404, "RESOURCE_DOES_NOT_EXIST")
    head = requests.head(victims_file[0], timeout=HTTP_TIMEOUT)
    assert head.status_code == 404
    for url in before:
        if url != victims_file[0]:
            answer = requests.get(url, timeout=HTTP_TIMEOUT)
            assert answer.status_code == 200, (url, answer.text)
    # the release (or the server's revocation worker, whichever ran first) removed the rows
    latest = int(get(lumen, f"{TABLE}/version").headers["Delta-Table-Version"])
    assert latest >= 1
    message = error_of(post(lumen, f"{TABLE}/query", {"version": 0}), 400, "INVALID_PARAMETER_VALUE")
    assert "oldest readable version" in message
    after = query_urls(running)
    assert victims_file[0] not in after
    assert len(after) == len(before)
