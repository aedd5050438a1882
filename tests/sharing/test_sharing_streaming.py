"""The Delta Sharing additions partners' Spark jobs need, by raw HTTP against a real server on the
sharing world (posts released at versions 0, 1 — the victim's rows removed — and 2, floor 1):

- the request sequence of Spark Structured Streaming's (non-CDF) source: metadata, version, a first
  snapshot `/query {"version": v}`, then `/query {"startingVersion": v+1, "endingVersion": latest}`;
  applying its `remove`/`add` lines to the snapshot ends exactly at the latest snapshot, each line
  carries its version and that version's commit timestamp; replaying from 0 (below the floor) ends
  there too and never lists a file holding a revoked row; both response formats;
- predicate hints prune: a one-user `jsonPredicateHints` (and the SQL `predicateHints`) returns at
  most 15% of the table's bytes and every row of that user, before `limitHint` is applied;
- time travel answers carry the version and timestamp on files and metaData.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest
import requests
from sharing_world import LUMEN, Profile, Served, World, error_of, get, json_lines, post

TABLE = "posts"
PATH = f"/shares/{LUMEN}/schemas/platform/tables/{TABLE}"
DELTA = {"delta-sharing-capabilities": "responseformat=delta"}


def _ids(lines: list[dict[str, Any]], kind: str) -> set[str]:
    return {line[kind]["id"] for line in lines if kind in line}


def _delta_ids(lines: list[dict[str, Any]], action: str) -> set[str]:
    return {
        line["file"]["id"]
        for line in lines
        if "file" in line and action in line["file"].get("deltaSingleAction", {})
    }


def _rows(url: str) -> list[dict[str, Any]]:
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    return pq.read_table(io.BytesIO(answer.content)).to_pylist()


def test_the_spark_streaming_sequence(served: Served, world: World) -> None:
    profile = served.profile("lumen-labs")
    facts = world.table(LUMEN, TABLE)
    assert json_lines(get(profile, PATH + "/metadata"))[1]["metaData"]["name"] == TABLE
    latest = int(get(profile, PATH + "/version").headers["Delta-Table-Version"])
    assert latest == facts.latest == 2
    snapshot = json_lines(post(profile, PATH + "/query", {"predicateHints": [], "version": 1}))
    held = _ids(snapshot, "file")
    stream = post(profile, PATH + "/query", {"startingVersion": 2, "endingVersion": latest})
    assert stream.headers["Delta-Table-Version"] == "2"
    lines = json_lines(stream)
    assert lines[1]["metaData"]["version"] == 2
    for kind in ("add", "remove"):
        for line in (item for item in lines if kind in item):
            assert line[kind]["version"] == 2
            assert line[kind]["timestamp"] == facts.timestamps[2]
    assert _ids(lines, "add"), "version 2 added the new post"
    final = (held - _ids(lines, "remove")) | _ids(lines, "add")
    now = json_lines(post(profile, PATH + "/query", {}))
    assert final == _ids(now, "file")


@pytest.mark.parametrize("delta", [False, True])
def test_a_replay_from_zero_ends_at_the_latest_and_serves_nothing_revoked(
    served: Served, world: World, delta: bool
) -> None:
    profile = served.profile("lumen-labs")
    answer = post(profile, PATH + "/query", {"startingVersion": 0}, headers=DELTA if delta else None)
    lines = json_lines(answer)
    held: set[str] = set()
    urls: dict[str, str] = {}
    for line in lines[2:]:
        if delta:
            single = line["file"]["deltaSingleAction"]
            ((action, body),) = single.items()
            identity, version = line["file"]["id"], line["file"]["version"]
            url = body["path"]
        else:
            ((action, body),) = line.items()
            identity, version, url = body["id"], body["version"], body["url"]
        assert version in world.table(LUMEN, TABLE).released
        if action == "add":
            held.add(identity)
            urls[identity] = url
        else:
            assert action == "remove" and identity in held
            held.discard(identity)
    latest = _ids(json_lines(post(profile, PATH + "/query", {})), "file")
    assert held == latest
    victim = world.victim_keys[LUMEN]
    for url in urls.values():
        assert all(row["user_key"] != victim for row in _rows(url))


def test_streaming_refusals(served: Served) -> None:
    profile = served.profile("lumen-labs")
    error_of(post(profile, PATH + "/query", {"startingVersion": 3}), 400, "INVALID_PARAMETER_VALUE")
    error_of(
        post(profile, PATH + "/query", {"startingVersion": 2, "endingVersion": 1}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error_of(post(profile, PATH + "/query", {"endingVersion": 1}), 400, "INVALID_PARAMETER_VALUE")
    error_of(
        post(profile, PATH + "/query", {"startingVersion": 1, "version": 1}), 400, "INVALID_PARAMETER_VALUE"
    )


def _one_user(profile: Profile) -> tuple[str, int, int]:
    lines = json_lines(post(profile, PATH + "/query", {}))
    files = [line["file"] for line in lines if "file" in line]
    total = sum(f["size"] for f in files)
    rows = [row for f in files for row in _rows(f["url"])]
    key = rows[0]["user_key"]
    return key, sum(1 for row in rows if row["user_key"] == key), total


def test_a_one_user_predicate_prunes_files(served: Served) -> None:
    profile = served.profile("lumen-labs")
    key, count, total = _one_user(profile)
    hint = {
        "op": "equal",
        "children": [
            {"op": "column", "name": "user_key", "valueType": "string"},
            {"op": "literal", "value": key, "valueType": "string"},
        ],
    }
    for body in ({"jsonPredicateHints": json.dumps(hint)}, {"predicateHints": [f"user_key = '{key}'"]}):
        files = [line["file"] for line in json_lines(post(profile, PATH + "/query", body)) if "file" in line]
        assert files
        assert sum(f["size"] for f in files) <= 0.15 * total, (body, files)
        assert sum(1 for f in files for row in _rows(f["url"]) if row["user_key"] == key) == count
        limited = {**body, "limitHint": 1}
        first = [
            line["file"] for line in json_lines(post(profile, PATH + "/query", limited)) if "file" in line
        ]
        assert any(row["user_key"] == key for f in first for row in _rows(f["url"]))
    nonsense = {"jsonPredicateHints": "{not json", "predicateHints": ["frobnicate(user_key)"]}
    every = [line for line in json_lines(post(profile, PATH + "/query", nonsense)) if "file" in line]
    assert sum(line["file"]["size"] for line in every) == total


def test_time_travel_answers_carry_version_and_timestamp(served: Served, world: World) -> None:
    profile = served.profile("lumen-labs")
    lines = json_lines(post(profile, PATH + "/query", {"version": 1}))
    assert lines[1]["metaData"]["version"] == 1
    files = [line["file"] for line in lines if "file" in line]
    assert files and all(f["version"] == 1 for f in files)
    assert all(f["timestamp"] == world.table(LUMEN, TABLE).timestamps[1] for f in files)
    plain = json_lines(post(profile, PATH + "/query", {}))
    assert all("version" not in line["file"] for line in plain if "file" in line)
