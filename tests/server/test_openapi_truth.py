"""The OpenAPI document tells the truth (media types, empty answers, refusals, no refused
parameters), file URLs come from the configured public base URL whatever the Host header says, and
pages carry security headers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from fastapi.testclient import TestClient
from sharing_world import file_urls
from small_home import AGREEMENT, SCHEMA, TABLE, SmallHome

TABLE_PATH: Final = f"/delta-sharing/shares/{AGREEMENT}/schemas/{SCHEMA}/tables/{TABLE}"
DOC_TABLE: Final = "/delta-sharing/shares/{share}/schemas/{schema}/tables/{name}"
PUBLIC: Final = "https://share.example.com"


def test_file_urls_are_built_on_the_configured_base_never_on_the_host_header(
    app_client: Callable[..., TestClient], home: SmallHome
) -> None:
    client = app_client(public_url=PUBLIC + "/")
    forged = {**home.partner_headers, "Host": "evil.example"}
    query = client.post(TABLE_PATH + "/query", json={}, headers=forged)
    changes = client.get(TABLE_PATH + "/changes", params={"startingVersion": 0}, headers=forged)
    for answer in (query, changes):
        assert answer.status_code == 200, answer.text
        urls = file_urls([json.loads(line) for line in answer.text.splitlines()])
        assert urls, answer.text
        assert all(u.startswith(PUBLIC + "/delta-sharing/files/") for u in urls), urls
    # the URL works where it points (the app is the configured base)
    path = file_urls([json.loads(line) for line in query.text.splitlines()])[0].removeprefix(PUBLIC)
    assert client.get(path).status_code == 200


def test_pages_carry_security_headers(app_client: Callable[..., TestClient], home: SmallHome) -> None:
    client = app_client()
    for answer in (client.get("/login"), client.get(f"/users/{home.user_id}/settings"), client.get("/nope")):
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy, policy
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"


def _operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path][method]
    return found


def test_the_document_names_ndjson_empty_answers_and_refusals(app_client: Callable[..., TestClient]) -> None:
    document = app_client().get("/openapi.json").json()
    for path, method in (
        (DOC_TABLE + "/query", "post"),
        (DOC_TABLE + "/changes", "get"),
        (DOC_TABLE + "/metadata", "get"),
    ):
        ok = _operation(document, path, method)["responses"]["200"]
        assert list(ok["content"]) == ["application/x-ndjson"], (path, ok)
        assert "Delta-Table-Version" in ok["headers"], ok
    version = _operation(document, DOC_TABLE + "/version", "get")["responses"]["200"]
    assert "content" not in version and "Delta-Table-Version" in version["headers"], version
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "422" not in codes, (path, method)  # validation errors are 400 here
            if path.startswith(("/delta-sharing/shares", "/api/")):
                assert {"400", "401"} <= codes, (path, method, codes)
            if method == "post":
                assert "413" in codes, (path, method, codes)
    query_body = _operation(document, DOC_TABLE + "/query", "post")["requestBody"]["content"][
        "application/json"
    ]
    schema = query_body["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    elif "anyOf" in schema:
        ref = next(s["$ref"] for s in schema["anyOf"] if "$ref" in s)
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"startingVersion", "endingVersion"} <= set(schema["properties"]), schema  # streaming (issue 16)
    events = _operation(document, "/api/v1/platform/events", "post")["requestBody"]["content"][
        "application/json"
    ]
    assert json.dumps(events).count('"maxItems": 10000') == 1, events
