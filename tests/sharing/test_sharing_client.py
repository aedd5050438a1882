"""Partners read their releases with the official `delta-sharing` client, in both response formats;
what they get equals the Delta tables read independently (deltalake), minus the partition column."""

from __future__ import annotations

import json

import delta_sharing
import pandas as pd
import pytest
from delta_sharing import SharingClient
from release_world import LUMEN, SENTIMETRICS
from sharing_world import (
    CDF_COLUMNS,
    NEW_POST_TEXT,
    PARTITION,
    SCHEMA,
    Served,
    TableFacts,
    get,
    iso_ms,
    post,
    rows_of,
)

FORMATS = pytest.mark.parametrize("delta", [False, True], ids=["parquet", "delta"])
# A table with texts (posts) and one whose identity is two keys (likes), in each agreement.
TABLES = pytest.mark.parametrize(
    ("agreement", "partner", "name"),
    [(LUMEN, "lumen-labs", "posts"), (SENTIMETRICS, "sentimetrics", "likes")],
    ids=["lumen-posts", "sentimetrics-likes"],
)


def facts(served: Served, agreement: str, name: str) -> TableFacts:
    return served.world.table(agreement, name)


def assert_snapshot(frame: pd.DataFrame, table: TableFacts, version: int | None = None) -> None:
    assert list(frame.columns) == list(table.columns)
    assert PARTITION not in frame.columns
    expected = table.snapshot(version)
    assert len(frame) == len(expected)
    assert rows_of(frame, table.columns) == rows_of(expected, table.columns)


def assert_changes(frame: pd.DataFrame, table: TableFacts, start: int, end: int) -> None:
    assert list(frame.columns) == [*table.columns, *CDF_COLUMNS]
    columns = [*table.columns, "_change_type", "_commit_version"]
    assert rows_of(frame, columns) == rows_of(table.changes(start, end), columns)
    deletes = frame[frame["_change_type"] == "delete"]
    for column in table.columns:
        if column not in table.keys:
            assert deletes[column].isna().all(), f"delete rows carry {column}"
        else:
            assert deletes[column].notna().all(), f"delete rows lack {column}"


# --- catalogue ------------------------------------------------------------------------------------


def test_list_all_tables_shows_each_partner_its_own_tables(served: Served) -> None:
    shared = served.world.shared
    for partner, agreement in (("lumen-labs", LUMEN), ("sentimetrics", SENTIMETRICS)):
        client = SharingClient(str(served.profile(partner).path))
        assert [s.name for s in client.list_shares()] == [agreement]
        tables = sorted((t.share, t.schema, t.name) for t in client.list_all_tables())
        assert tables == [(agreement, SCHEMA, name) for name in shared[agreement]]
    assert {"posts", "reposts"} <= set(shared[LUMEN])
    assert {"posts", "likes"} <= set(shared[SENTIMETRICS])
    # acme's agreement has never been released: no share at all
    acme = SharingClient(str(served.profile("acme").path))
    assert list(acme.list_shares()) == []
    assert list(acme.list_all_tables()) == []


def test_list_endpoints_paginate_with_max_results_and_page_token(served: Served) -> None:
    profile = served.profile("lumen-labs")
    for path in (f"/shares/{LUMEN}/all-tables", f"/shares/{LUMEN}/schemas/{SCHEMA}/tables"):
        seen: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"maxResults": 1}
            if token:
                params["pageToken"] = token
            response = get(profile, path, params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["items"]) <= 1
            seen.extend(item["name"] for item in body["items"])
            for item in body["items"]:
                assert item["share"] == LUMEN and item["schema"] == SCHEMA
            pages += 1
            token = body.get("nextPageToken")
            if not token:
                break
            assert pages < 5, body
        assert seen == list(served.world.shared[LUMEN]), path
        assert pages >= 2
    whole = get(profile, f"/shares/{LUMEN}/all-tables").json()
    assert [i["name"] for i in whole["items"]] == list(served.world.shared[LUMEN])
    assert not whole.get("nextPageToken")
    shares = get(profile, "/shares", params={"maxResults": 1}).json()
    assert [s["name"] for s in shares["items"]] == [LUMEN]
    assert not shares.get("nextPageToken")
    schemas = get(profile, f"/shares/{LUMEN}/schemas").json()
    assert [s["name"] for s in schemas["items"]] == [SCHEMA]


def test_dataset_card_is_served_as_markdown(served: Served) -> None:
    response = get(served.profile("lumen-labs"), f"/shares/{LUMEN}/card")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text == (served.home / "shares" / LUMEN / "README.md").read_text(encoding="utf-8")


# --- version and metadata -------------------------------------------------------------------------


@TABLES
def test_get_table_version(served: Served, agreement: str, partner: str, name: str) -> None:
    table = facts(served, agreement, name)
    url = served.profile(partner).url(agreement, name)
    assert delta_sharing.get_table_version(url) == table.latest
    # the first version committed at or after the instant
    for version in table.released:
        stamp = table.timestamps[version]
        assert delta_sharing.get_table_version(url, starting_timestamp=iso_ms(stamp)) == version
        if version > 0:
            assert delta_sharing.get_table_version(url, starting_timestamp=iso_ms(stamp - 1)) == version
    first = table.timestamps[table.released[0]]
    assert delta_sharing.get_table_version(url, starting_timestamp=iso_ms(first + 1)) == table.released[1]


@FORMATS
@TABLES
def test_get_table_metadata_hides_the_partition_column(
    served: Served, agreement: str, partner: str, name: str, delta: bool
) -> None:
    table = facts(served, agreement, name)
    metadata = delta_sharing.get_table_metadata(
        served.profile(partner).url(agreement, name), use_delta_format=delta
    )
    assert metadata.partition_columns == []
    schema = json.loads(metadata.schema_string)
    assert [f["name"] for f in schema["fields"]] == list(table.columns)
    assert metadata.format.provider == "parquet"
    assert metadata.configuration.get("delta.enableChangeDataFeed") == "true"
    protocol = delta_sharing.get_table_protocol(
        served.profile(partner).url(agreement, name), use_delta_format=delta
    )
    assert protocol.min_reader_version == 1


def test_every_table_answer_carries_delta_table_version(served: Served) -> None:
    profile = served.profile("lumen-labs")
    table = facts(served, LUMEN, "posts")
    base = f"/shares/{LUMEN}/schemas/{SCHEMA}/tables/posts"
    for fmt in ("parquet", "delta"):
        headers = {"delta-sharing-capabilities": f"responseformat={fmt}"}
        answers = {
            "version": (get(profile, base + "/version", headers=headers), table.latest),
            "metadata": (get(profile, base + "/metadata", headers=headers), table.latest),
            "query": (post(profile, base + "/query", {}, headers=headers), table.latest),
            "query v1": (post(profile, base + "/query", {"version": 1}, headers=headers), 1),
            "changes": (get(profile, base + "/changes", params={"startingVersion": 1}, headers=headers), 1),
        }
        for what, (response, version) in answers.items():
            assert response.status_code == 200, (fmt, what, response.text)
            assert response.headers.get("Delta-Table-Version") == str(version), (fmt, what, response.headers)
            if what != "version":
                assert f"responseformat={fmt}" in response.headers.get("delta-sharing-capabilities", ""), what


# --- snapshots ------------------------------------------------------------------------------------


@FORMATS
@TABLES
def test_load_as_pandas_latest(served: Served, agreement: str, partner: str, name: str, delta: bool) -> None:
    frame = delta_sharing.load_as_pandas(served.profile(partner).url(agreement, name), use_delta_format=delta)
    assert_snapshot(frame, facts(served, agreement, name))


def test_load_as_pandas_negotiates_the_format(served: Served) -> None:
    """Without use_delta_format the client offers `responseformat=delta,parquet` and follows the answer."""
    frame = delta_sharing.load_as_pandas(served.profile("lumen-labs").url(LUMEN, "reposts"))
    assert_snapshot(frame, facts(served, LUMEN, "reposts"))


@FORMATS
def test_load_as_pandas_at_each_readable_version(served: Served, delta: bool) -> None:
    table = facts(served, LUMEN, "posts")
    url = served.profile("lumen-labs").url(LUMEN, "posts")
    for version in (1, 2):
        frame = delta_sharing.load_as_pandas(url, version=version, use_delta_format=delta)
        assert_snapshot(frame, table, version)
        assert (NEW_POST_TEXT in set(frame["text"])) == (version == 2)


@FORMATS
def test_load_as_pandas_at_a_timestamp(served: Served, delta: bool) -> None:
    table = facts(served, LUMEN, "posts")
    url = served.profile("lumen-labs").url(LUMEN, "posts")
    # the latest released version committed at or before the instant
    cases = {
        table.timestamps[2]: 2,
        table.timestamps[2] - 1: 1,
        table.timestamps[1]: 1,
    }
    for stamp, version in cases.items():
        frame = delta_sharing.load_as_pandas(url, timestamp=iso_ms(stamp), use_delta_format=delta)
        assert_snapshot(frame, table, version)


@FORMATS
@TABLES
def test_load_as_pandas_with_a_limit(
    served: Served, agreement: str, partner: str, name: str, delta: bool
) -> None:
    table = facts(served, agreement, name)
    url = served.profile(partner).url(agreement, name)
    frame = delta_sharing.load_as_pandas(url, limit=5, use_delta_format=delta)
    assert list(frame.columns) == list(table.columns)
    assert len(frame) == 5
    every = set(rows_of(table.snapshot(), table.columns))
    assert set(rows_of(frame, table.columns)) <= every


# --- change feed ----------------------------------------------------------------------------------


@FORMATS
@TABLES
def test_changes_between_versions(
    served: Served, agreement: str, partner: str, name: str, delta: bool
) -> None:
    table = facts(served, agreement, name)
    url = served.profile(partner).url(agreement, name)
    frame = delta_sharing.load_table_changes_as_pandas(
        url, starting_version=1, ending_version=table.latest, use_delta_format=delta
    )
    assert_changes(frame, table, 1, table.latest)
    assert (frame["_change_type"] == "delete").sum() > 0


@FORMATS
def test_changes_from_before_the_floor_never_replay_revoked_rows(served: Served, delta: bool) -> None:
    """Version 0 held the victim's rows; replaying from 0 gives every insert except theirs."""
    world = served.world
    table = facts(served, LUMEN, "posts")
    url = served.profile("lumen-labs").url(LUMEN, "posts")
    frame = delta_sharing.load_table_changes_as_pandas(url, starting_version=0, use_delta_format=delta)
    assert_changes(frame, table, 0, table.latest)
    inserts = frame[frame["_change_type"] == "insert"]
    assert world.victim_keys[LUMEN] not in set(inserts["user_key"])
    assert not set(frame["text"].dropna()) & world.victim_texts
    deleted = frame[frame["_change_type"] == "delete"]
    assert set(deleted["user_key"]) == {world.victim_keys[LUMEN]}


@FORMATS
def test_changes_by_timestamps(served: Served, delta: bool) -> None:
    table = facts(served, LUMEN, "posts")
    url = served.profile("lumen-labs").url(LUMEN, "posts")
    stamps = table.timestamps
    both = delta_sharing.load_table_changes_as_pandas(
        url, starting_timestamp=iso_ms(stamps[1]), ending_timestamp=iso_ms(stamps[2]), use_delta_format=delta
    )
    assert_changes(both, table, 1, 2)
    only_first = delta_sharing.load_table_changes_as_pandas(
        url,
        starting_timestamp=iso_ms(stamps[1]),
        ending_timestamp=iso_ms(stamps[2] - 1),
        use_delta_format=delta,
    )
    assert_changes(only_first, table, 1, 1)
    assert set(only_first["_commit_version"]) == {1}
    only_last = delta_sharing.load_table_changes_as_pandas(
        url, starting_timestamp=iso_ms(stamps[1] + 1), use_delta_format=delta
    )
    assert_changes(only_last, table, 2, 2)
    assert list(only_last["text"]) == [NEW_POST_TEXT]
