"""PROTOCOL.md details partners' clients rely on, against a real server on the sharing world, by raw
HTTP and with the official client:

- share, schema and table names are case-insensitive (answers use the stored names, file ids and
  metering do not depend on the case the client used);
- a JSON body without a Content-Type is read as JSON;
- page tokens are signed and bound to their listing: a tampered token, or one from another listing or
  another partner, is a 400; following the tokens page by page lists everything exactly once;
- `/metadata?version=` / `?timestamp=` answer that version (with `version` on metaData), below the
  history floor a 400 as for `/query`.
"""

from __future__ import annotations

import delta_sharing
import requests
from release_world import LUMEN, SENTIMETRICS
from sharing_world import HTTP_TIMEOUT, SCHEMA, Served, error_of, get, iso_ms, json_lines, post

TABLE = f"/shares/{LUMEN}/schemas/{SCHEMA}/tables/posts"
SHOUTED = f"/shares/{LUMEN.upper()}/schemas/{SCHEMA.upper()}/tables/POSTS"


def _ids(lines: list[dict[str, object]]) -> set[object]:
    return {line["file"]["id"] for line in lines if "file" in line}  # type: ignore[index]


def test_names_are_case_insensitive(served: Served) -> None:
    lumen = served.profile("lumen-labs")
    assert _ids(json_lines(post(lumen, SHOUTED + "/query", {}))) == _ids(
        json_lines(post(lumen, TABLE + "/query", {}))
    )
    assert get(lumen, f"/shares/{LUMEN.upper()}").json()["share"]["name"] == LUMEN
    assert json_lines(get(lumen, SHOUTED + "/metadata"))[1]["metaData"]["name"] == "posts"
    assert get(lumen, SHOUTED + "/version").headers["Delta-Table-Version"] == str(
        served.world.table(LUMEN, "posts").latest
    )
    frame = delta_sharing.load_as_pandas(lumen.url(LUMEN.upper(), "POSTS", SCHEMA.upper()))
    assert len(frame) == len(served.world.table(LUMEN, "posts").snapshot())
    error_of(get(lumen, f"/shares/{SENTIMETRICS.upper()}"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_a_body_without_content_type_is_json(served: Served) -> None:
    lumen = served.profile("lumen-labs")
    answer = requests.post(
        lumen.endpoint + TABLE + "/query", data=b'{"version": 1}', headers=lumen.headers, timeout=HTTP_TIMEOUT
    )
    assert "content-type" not in {k.lower() for k in answer.request.headers}
    lines = json_lines(answer)
    assert lines[1]["metaData"]["version"] == 1


def test_page_tokens_are_bound_and_signed(served: Served) -> None:
    lumen = served.profile("lumen-labs")
    path = f"/shares/{LUMEN}/all-tables"
    names: list[str] = []
    token = None
    while True:
        params: dict[str, object] = {"maxResults": 1}
        if token:
            params["pageToken"] = token
        body = get(lumen, path, params=params).json()
        names += [item["name"] for item in body["items"]]
        token = body.get("nextPageToken")
        if not token:
            break
    everything = [item["name"] for item in get(lumen, path).json()["items"]]
    assert names == everything and len(everything) > 1
    issued = get(lumen, path, params={"maxResults": 1}).json()["nextPageToken"]
    tampered = issued[:-1] + ("0" if issued[-1] != "0" else "1")
    error_of(get(lumen, path, params={"pageToken": tampered}), 400, "INVALID_PARAMETER_VALUE")
    other_listing = f"/shares/{LUMEN}/schemas/{SCHEMA}/tables"
    error_of(get(lumen, other_listing, params={"pageToken": issued}), 400, "INVALID_PARAMETER_VALUE")
    other = served.profile("sentimetrics")
    theirs = get(other, f"/shares/{SENTIMETRICS}/all-tables", params={"maxResults": 1}).json()
    stolen = theirs["nextPageToken"]
    error_of(get(lumen, path, params={"pageToken": stolen}), 400, "INVALID_PARAMETER_VALUE")


def test_metadata_at_a_version_or_timestamp(served: Served) -> None:
    lumen = served.profile("lumen-labs")
    facts = served.world.table(LUMEN, "posts")
    at_one = json_lines(get(lumen, TABLE + "/metadata", params={"version": 1}))
    assert at_one[1]["metaData"]["version"] == 1
    by_time = json_lines(get(lumen, TABLE + "/metadata", params={"timestamp": iso_ms(facts.timestamps[1])}))
    assert by_time[1]["metaData"]["version"] == 1
    assert "version" not in json_lines(get(lumen, TABLE + "/metadata"))[1]["metaData"]
    error_of(get(lumen, TABLE + "/metadata", params={"version": 0}), 400, "INVALID_PARAMETER_VALUE")
    error_of(
        get(lumen, TABLE + "/metadata", params={"version": 1, "timestamp": "x"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
