"""`POST decide/batch` parses its body with pydantic's JSON parser (one pass instead of `json.loads`
and then validation: issue 16, a 10,000-record batch), and refuses a bad body exactly as FastAPI's
own body handling did before — the same status, `{error, field, message}` and nothing decided. The
expected answers below were recorded from FastAPI's path before the change."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from small_home import SmallHome

PATH = "/api/v1/platform/decide/batch"
GENERATIVE = "train_ai_system.generative"
JSON = {"Content-Type": "application/json"}


def _record(home: SmallHome, **extra: object) -> dict[str, Any]:
    return {"user_id": home.user_id, "category": "posts", "purposes": [GENERATIVE], **extra}


def _bodies(home: SmallHome) -> dict[str, tuple[bytes, dict[str, str]]]:
    good = _record(home)
    return {
        "not json": (b'{"records": [', JSON),
        "trailing garbage": (json.dumps({"records": [good]}).encode() + b" x", JSON),
        "empty": (b"", JSON),
        "a list": (b"[]", JSON),
        "records not a list": (json.dumps({"records": 3}).encode(), JSON),
        "no records": (json.dumps({"records": []}).encode(), JSON),
        "extra field": (json.dumps({"records": [good], "more": 1}).encode(), JSON),
        "record extra field": (json.dumps({"records": [good, _record(home, colour=1)]}).encode(), JSON),
        "user id text": (json.dumps({"records": [good, good, _record(home, user_id="x")]}).encode(), JSON),
        "user id negative": (json.dumps({"records": [_record(home, user_id=-1)]}).encode(), JSON),
        "post id bool": (json.dumps({"records": [_record(home, post_id=False)]}).encode(), JSON),
        "instant number": (json.dumps({"records": [_record(home, at=5)]}).encode(), JSON),
        "instant naive": (json.dumps({"records": [_record(home, at="2026-05-01T00:00:00")]}).encode(), JSON),
        "purposes empty": (json.dumps({"records": [_record(home, purposes=[])]}).encode(), JSON),
        "two errors": (json.dumps({"records": [_record(home, user_id="x", category=5)]}).encode(), JSON),
        "text/plain": (json.dumps({"records": [good]}).encode(), {"Content-Type": "text/plain"}),
        "bad utf-8": (b'{"records": [{"user_id": 1, "category": "\xff"}]}', JSON),
    }


def test_bad_bodies_are_refused_as_before(client: TestClient, home: SmallHome) -> None:
    answers = {}
    for name, (body, headers) in _bodies(home).items():
        answer = client.post(PATH, content=body, headers=headers)
        answers[name] = (answer.status_code, answer.json())
    assert answers == EXPECTED


EXPECTED: dict[str, Any] = {
    "not json": (400, {"error": "invalid", "field": "[13]", "message": "13: JSON decode error"}),
    "trailing garbage": (400, {"error": "invalid", "field": "[95]", "message": "95: JSON decode error"}),
    "empty": (400, {"error": "invalid", "field": None, "message": ": Field required"}),
    "a list": (
        400,
        {
            "error": "invalid",
            "field": None,
            "message": ": Input should be a valid dictionary or object to extract fields from",
        },
    ),
    "records not a list": (
        400,
        {"error": "invalid", "field": "records", "message": "records: Input should be a valid list"},
    ),
    "no records": (
        400,
        {
            "error": "invalid",
            "field": "records",
            "message": "records: List should have at least 1 item after validation, not 0",
        },
    ),
    "extra field": (
        400,
        {"error": "invalid", "field": "more", "message": "more: Extra inputs are not permitted"},
    ),
    "record extra field": (
        400,
        {
            "error": "invalid",
            "field": "records[1].colour",
            "message": "records.1.colour: Extra inputs are not permitted",
        },
    ),
    "user id text": (
        400,
        {
            "error": "invalid",
            "field": "records[2].user_id",
            "message": "records.2.user_id: Input should be a valid integer, unable to parse string as "
            "an integer",
        },
    ),
    "user id negative": (
        400,
        {
            "error": "invalid",
            "field": "records[0].user_id",
            "message": "records.0.user_id: Input should be greater than or equal to 0",
        },
    ),
    "post id bool": (
        400,
        {
            "error": "invalid",
            "field": "records[0].post_id",
            "message": "records.0.post_id: Input should be a valid integer",
        },
    ),
    "instant number": (
        400,
        {
            "error": "invalid",
            "field": "records[0].at",
            "message": "records.0.at: Value error, expected an ISO 8601 date-time text such as "
            "2026-05-01T09:30:00Z",
        },
    ),
    "instant naive": (
        400,
        {
            "error": "invalid",
            "field": "records[0].at",
            "message": "records.0.at: Input should have timezone info",
        },
    ),
    "purposes empty": (
        400,
        {
            "error": "invalid",
            "field": "records[0].purposes",
            "message": "records.0.purposes: List should have at least 1 item after validation, not 0",
        },
    ),
    "two errors": (
        400,
        {
            "error": "invalid",
            "field": "records[0].user_id",
            "message": "records.0.user_id: Input should be a valid integer, unable to parse string as "
            "an integer; records.0.category: Input should be a valid string",
        },
    ),
    "text/plain": (
        400,
        {
            "error": "invalid",
            "field": None,
            "message": ": Input should be a valid dictionary or object to extract fields from",
        },
    ),
    "bad utf-8": (400, {"error": "invalid", "field": None, "message": "There was an error parsing the body"}),
}


def test_bodies_only_json_loads_reads_are_still_answered(client: TestClient, home: SmallHome) -> None:
    """pydantic's parser takes UTF-8 only; FastAPI's `json.loads` also reads a BOM and UTF-16."""
    records = [
        _record(home),
        _record(home, category="likes"),
        _record(home, at="2026-05-03T00:00:00Z", post_id=None, partner="lumen-labs"),
    ]
    text = json.dumps({"records": records})
    plain = client.post(PATH, content=text.encode(), headers=JSON)
    assert plain.status_code == 200, plain.text
    assert len(plain.json()["decisions"]) == 3
    for encoded in (b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16")):
        answer = client.post(PATH, content=encoded, headers=JSON)
        assert (answer.status_code, answer.json()) == (200, plain.json())


def test_the_body_is_documented_as_before(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"][PATH]["post"]["requestBody"]
    assert body["required"] is True
    records = body["content"]["application/json"]["schema"]["properties"]["records"]
    assert records["items"] == {"$ref": "#/components/schemas/DecideIn"}
    assert records["maxItems"] == 10_000
    assert "DecideIn" in schema["components"]["schemas"]
