"""Downloads are metered by the bytes the client actually received, on a real `datalease serve`:
a full GET, a range, several ranges (a multipart answer), an unsatisfiable range, a malformed one,
a range under a stale If-Range (the whole file), and HEAD (nothing)."""

from __future__ import annotations

import json
from collections.abc import Callable

import requests
from cli_harness import expect, run
from sharing_world import HTTP_TIMEOUT, Server, file_urls
from small_home import AGREEMENT, PARTNER, SCHEMA, TABLE, SmallHome


def test_usage_counts_the_bytes_the_client_received(
    real_server: Callable[..., Server], home: SmallHome
) -> None:
    server = real_server()
    query = requests.post(
        f"{server.endpoint}/shares/{AGREEMENT}/schemas/{SCHEMA}/tables/{TABLE}/query",
        json={},
        headers=home.partner_headers,
        timeout=HTTP_TIMEOUT,
    )
    assert query.status_code == 200, query.text
    url = file_urls([json.loads(line) for line in query.text.splitlines()])[0]
    size = len(requests.get(url, timeout=HTTP_TIMEOUT).content)
    assert size > 100
    received = size
    cases = {
        "bytes=0-9": 206,
        "bytes=0-9,20-29,40-": 206,
        f"bytes={size + 10}-": 416,
        "bytes=oops": 400,
    }
    for header, status in cases.items():
        answer = requests.get(url, headers={"Range": header}, timeout=HTTP_TIMEOUT)
        assert answer.status_code == status, (header, answer.status_code, answer.text[:200])
        received += len(answer.content)
    stale = requests.get(
        url, headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'}, timeout=HTTP_TIMEOUT
    )
    assert stale.status_code == 200 and len(stale.content) == size
    received += size
    head = requests.head(url, headers={"Range": "bytes=0-9"}, timeout=HTTP_TIMEOUT)
    assert head.status_code == 206 and head.content == b""
    server.stop()  # flushes the download meter

    usage = expect(run("usage", "--partner", PARTNER, "--json", home=home.home), 0).json()
    assert sum(row["bytes"] for row in usage) == received, (usage, received)
