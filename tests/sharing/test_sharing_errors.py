"""Every refusal is an HTTP status the protocol names with a JSON `errorCode` and `message`: tokens,
other partners' shares, unknown tables, versions below the history floor, bad parameters."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import delta_sharing
import pytest
import requests
from cli_harness import expect, run
from delta_sharing import SharingClient
from delta_sharing.protocol import DeltaSharingProfile
from delta_sharing.rest_client import DataSharingRestClient
from release_world import LUMEN, SENTIMETRICS
from requests.exceptions import HTTPError
from sharing_world import HTTP_TIMEOUT, SCHEMA, Profile, Served, error_of, get, iso_ms, post

TABLE = f"/shares/{LUMEN}/schemas/{SCHEMA}/tables/posts"
FORMATS = pytest.mark.parametrize("delta", [False, True], ids=["parquet", "delta"])


def with_bearer(profile: Profile, bearer: str, target: Path) -> Profile:
    document = json.loads(profile.path.read_text())
    document["bearerToken"] = bearer
    target.write_text(json.dumps(document))
    return Profile(profile.partner, target, profile.token_id, bearer, profile.endpoint)


def forged_secret(bearer: str) -> str:
    """The same token id with another (well-formed) secret."""
    prefix, secret = bearer[:-43], bearer[-43:]
    return prefix + ("A" if secret[0] != "A" else "B") + secret[1:]


def status_of(call: object) -> int:
    assert callable(call)
    with pytest.raises(HTTPError) as raised:
        call()
    response = raised.value.response
    assert response is not None
    return int(response.status_code)


# --- tokens ---------------------------------------------------------------------------------------


def test_missing_malformed_and_wrong_tokens_are_401(served: Served, tmp_path: Path) -> None:
    profile = served.profile("lumen-labs")
    endpoint = profile.endpoint
    answer = requests.get(f"{endpoint}/shares", timeout=HTTP_TIMEOUT)
    error_of(answer, 401, "UNAUTHENTICATED")
    for header in ("Bearer", "Bearer not-a-token", "Basic abc", f"Bearer {forged_secret(profile.bearer)}"):
        answer = requests.get(f"{endpoint}/shares", headers={"Authorization": header}, timeout=HTTP_TIMEOUT)
        error_of(answer, 401, "UNAUTHENTICATED")
    answer = requests.post(
        f"{endpoint}{TABLE}/query",
        json={},
        headers={"Authorization": f"Bearer {forged_secret(profile.bearer)}"},
        timeout=HTTP_TIMEOUT,
    )
    error_of(answer, 401, "UNAUTHENTICATED")
    # the official client surfaces it as an HTTP error, at once
    wrong = with_bearer(profile, forged_secret(profile.bearer), tmp_path / "wrong.share")
    client = SharingClient(str(wrong.path))
    assert status_of(client.list_shares) == 401
    assert status_of(lambda: delta_sharing.load_as_pandas(wrong.url(LUMEN, "posts"))) == 401


def test_revoked_token_is_refused_at_once(served: Served) -> None:
    profile = served.new_profile("lumen-labs")
    assert get(profile, "/shares").status_code == 200
    query = post(profile, f"{TABLE}/query", {})
    assert query.status_code == 200, query.text
    url = next(json.loads(line)["file"]["url"] for line in query.text.splitlines() if '"file"' in line)
    assert requests.get(url, timeout=HTTP_TIMEOUT).status_code == 200

    revoked = expect(run("partner", "token-revoke", profile.token_id, home=served.home), 0)
    assert profile.token_id in revoked.out
    error_of(get(profile, "/shares"), 401, "UNAUTHENTICATED")
    error_of(post(profile, f"{TABLE}/query", {}), 401, "UNAUTHENTICATED")
    listed = expect(run("partner", "tokens", "lumen-labs", "--json", home=served.home), 0)
    secret = profile.bearer.split("_", 2)[2]  # dls_<id>_<secret>; the secret may itself hold "_"
    assert profile.bearer not in listed.out and secret not in listed.out
    mine = [t for t in listed.json() if profile.token_id in json.dumps(t)]
    assert len(mine) == 1, listed.out
    assert mine[0].get("revoked_at") or mine[0].get("revoked") or mine[0].get("state") == "revoked", mine
    # the file URLs issued to the token stop working too (the server may cache a token's state briefly)
    deadline = time.monotonic() + 15
    while True:
        answer = requests.get(url, timeout=HTTP_TIMEOUT)
        if answer.status_code != 200 or time.monotonic() > deadline:
            break
        answer.close()
        time.sleep(0.2)  # poll interval; the loop re-checks the answer
    error_of(answer, 403, "PERMISSION_DENIED")
    # the partner's other token still works
    assert get(served.profile("lumen-labs"), "/shares").status_code == 200


def test_expired_token_is_401(served: Served) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=6)
    profile = served.new_profile("lumen-labs", "--expires", expires.isoformat())
    document = json.loads(profile.path.read_text())
    assert document["expirationTime"].startswith(expires.strftime("%Y-%m-%dT%H:%M:%S"))
    first = get(profile, "/shares")
    if time.time() < expires.timestamp() - 0.5:
        assert first.status_code == 200, first.text
    deadline = expires.timestamp() + 15
    while True:
        answer = get(profile, "/shares")
        if answer.status_code != 200 or time.time() > deadline:
            break
        time.sleep(0.2)  # poll interval until the expiry instant has passed
    message = error_of(answer, 401, "UNAUTHENTICATED")
    assert "expired" in message
    client = DataSharingRestClient(DeltaSharingProfile.read_from_file(str(profile.path)), num_retries=0)
    with pytest.raises(HTTPError):
        client.list_shares()


# --- what a partner may see -----------------------------------------------------------------------


def test_another_partners_share_answers_exactly_like_an_unknown_one(served: Served) -> None:
    lumen = served.profile("lumen-labs")
    paths = (
        "/shares/{share}",
        "/shares/{share}/schemas",
        "/shares/{share}/all-tables",
        "/shares/{share}/card",
        "/shares/{share}/schemas/platform/tables",
        "/shares/{share}/schemas/platform/tables/posts/metadata",
        "/shares/{share}/schemas/platform/tables/posts/version",
        "/shares/{share}/schemas/platform/tables/posts/changes?startingVersion=1",
    )
    for path in paths:
        theirs = get(lumen, path.format(share=SENTIMETRICS))
        unknown = get(lumen, path.format(share="no-such-share"))
        assert theirs.status_code == unknown.status_code == 404, (path, theirs.text, unknown.text)
        assert theirs.json()["errorCode"] == unknown.json()["errorCode"] == "RESOURCE_DOES_NOT_EXIST"
        assert theirs.json()["message"].replace(SENTIMETRICS, "X") == unknown.json()["message"].replace(
            "no-such-share", "X"
        ), path
        assert set(theirs.headers) - {"date"} == set(unknown.headers) - {"date"}, path
    theirs = post(lumen, f"/shares/{SENTIMETRICS}/schemas/platform/tables/posts/query", {})
    error_of(theirs, 404, "RESOURCE_DOES_NOT_EXIST")
    assert SENTIMETRICS not in {s.name for s in SharingClient(str(lumen.path)).list_shares()}
    url = lumen.url(SENTIMETRICS, "posts")
    assert status_of(lambda: delta_sharing.load_as_pandas(url, use_delta_format=False)) == 404


def test_unknown_share_schema_and_table_are_404(served: Served) -> None:
    lumen = served.profile("lumen-labs")
    for path in (
        "/shares/nope/schemas",
        f"/shares/{LUMEN}/schemas/nope/tables",
        f"/shares/{LUMEN}/schemas/nope/tables/posts/metadata",
        f"/shares/{LUMEN}/schemas/{SCHEMA}/tables/likes/metadata",  # a category not in this agreement
        f"/shares/{LUMEN}/schemas/{SCHEMA}/tables/nope/version",
        f"/shares/{LUMEN}/schemas/{SCHEMA}/tables/nope/changes?startingVersion=0",
    ):
        error_of(get(lumen, path), 404, "RESOURCE_DOES_NOT_EXIST")
    error_of(
        post(lumen, f"/shares/{LUMEN}/schemas/{SCHEMA}/tables/nope/query", {}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    for delta in (False, True):
        url = lumen.url(LUMEN, "likes")
        assert status_of(lambda u=url, d=delta: delta_sharing.load_as_pandas(u, use_delta_format=d)) == 404
    assert status_of(lambda: delta_sharing.get_table_version(lumen.url(LUMEN, "nope"))) == 404


# --- versions -------------------------------------------------------------------------------------


@FORMATS
def test_version_below_the_history_floor_is_400_naming_the_oldest_readable(
    served: Served, delta: bool
) -> None:
    lumen = served.profile("lumen-labs")
    table = served.world.table(LUMEN, "posts")
    fmt = {"delta-sharing-capabilities": f"responseformat={'delta' if delta else 'parquet'}"}
    message = error_of(
        post(lumen, f"{TABLE}/query", {"version": 0}, headers=fmt), 400, "INVALID_PARAMETER_VALUE"
    )
    assert re.search(rf"oldest readable version\D{{0,20}}\b{table.floor}\b", message), message
    # a timestamp that resolves to version 0 is refused the same way
    at = iso_ms(table.timestamps[1] - 1)
    message = error_of(
        post(lumen, f"{TABLE}/query", {"timestamp": at}, headers=fmt), 400, "INVALID_PARAMETER_VALUE"
    )
    assert re.search(rf"\b{table.floor}\b", message), message
    url = lumen.url(LUMEN, "posts")
    assert status_of(lambda: delta_sharing.load_as_pandas(url, version=0, use_delta_format=delta)) == 400
    assert status_of(lambda: delta_sharing.load_as_pandas(url, timestamp=at, use_delta_format=delta)) == 400


def test_bad_versions_and_timestamps_are_400(served: Served) -> None:
    lumen = served.profile("lumen-labs")
    table = served.world.table(LUMEN, "posts")
    bodies = (
        {"version": table.latest + 1},
        {"version": -1},
        {"version": "two"},
        {"timestamp": "yesterday"},
        {"timestamp": "2020-01-01T00:00:00Z"},  # before the first release
        {"version": 1, "timestamp": iso_ms(table.timestamps[1])},
        {"limitHint": -5},
    )
    for body in bodies:
        error_of(post(lumen, f"{TABLE}/query", body), 400, "INVALID_PARAMETER_VALUE")
    for params in (
        {},
        {"startingVersion": table.latest + 1},
        {"startingVersion": -1},
        {"startingVersion": 2, "endingVersion": 1},
        {"startingVersion": 1, "endingVersion": table.latest + 1},
        {"startingTimestamp": "not-a-time"},
        {"startingVersion": 1, "startingTimestamp": iso_ms(table.timestamps[1])},
        {"startingTimestamp": iso_ms(table.timestamps[table.latest] + 3_600_000)},
    ):
        error_of(get(lumen, f"{TABLE}/changes", params=params), 400, "INVALID_PARAMETER_VALUE")
    error_of(
        get(lumen, f"{TABLE}/version", params={"startingTimestamp": "soon"}), 400, "INVALID_PARAMETER_VALUE"
    )
    for params in ({"maxResults": -1}, {"maxResults": "many"}, {"pageToken": "@@not-base64@@"}):
        error_of(get(lumen, f"/shares/{LUMEN}/all-tables", params=params), 400, "INVALID_PARAMETER_VALUE")
