"""The fast middle tier: the diff, the withdrawal path and the sharing service in-process (a small home,
FastAPI TestClient, no subprocess), for the edge cases an end-to-end test would be slow to reach."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pyarrow as pa
from deltalake import DeltaTable
from fastapi.testclient import TestClient
from small_home import AGREEMENT, RELEASED_AT, SCHEMA, TABLE, SmallHome, settings

from datalease.consent.snapshot import consent_snapshot
from datalease.licensing.registry import get_agreement
from datalease.policy.vocabulary import MASTER_KEY
from datalease.releases import delta
from datalease.releases.diff import DiffSession
from datalease.releases.keys import agreement_secret, user_key
from datalease.releases.model import Release
from datalease.revocation.subjects import AffectedIds
from datalease.revocation.withdraw import withdraw
from datalease.store.releases import latest_release
from datalease.workspace import Workspace

AppClient = Callable[..., TestClient]
TABLE_PATH = f"/delta-sharing/shares/{AGREEMENT}/schemas/{SCHEMA}/tables/{TABLE}"


def _ndjson(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _released(ws: Workspace) -> Release:
    with ws.session() as session:
        release = latest_release(session, AGREEMENT)
    assert release is not None
    return release


def _author_with_posts(ws: Workspace) -> int:
    posts = DeltaTable(str(ws.table_dir(AGREEMENT, TABLE))).to_pyarrow_table()
    keys = set(posts["user_key"].to_pylist())
    secret = agreement_secret(ws.master_key, AGREEMENT)
    return next(u for u in ws.lake.read("users")["user_id"].to_pylist() if user_key(secret, u) in keys)


# --- the diff -----------------------------------------------------------------------------------------


def test_the_diff_registers_empty_and_full_tables_under_their_own_names(home: SmallHome) -> None:
    """An empty table after one with files once collided with it under one view name."""
    ws = Workspace(settings(home.home))
    release = _released(ws)
    empty = pa.table({"post_key": pa.array([], pa.string()), "bucket": pa.array([], pa.string())})
    other = ws.table_dir(AGREEMENT, "empty-probe")
    with DiffSession(
        ws.lake, release.source_versions, pa.table({"user_id": [1], "key": ["k"], "value": [True]})
    ) as session:
        session.con.register("probe", empty)
        delta.create(other, session.con, "SELECT * FROM probe", commit_info={"test": "probe"})
        full = session.existing(TABLE, ws.table_dir(AGREEMENT, TABLE))
        again = session.existing("empty-probe".replace("-", "_"), other)
        assert session.count(full) > 0
        assert session.count(again) == 0
        # registering the same names again (a second category, a retry) is fine
        assert session.existing(TABLE, ws.table_dir(AGREEMENT, TABLE)) == full


# --- the withdrawal path ------------------------------------------------------------------------------


def test_a_withdrawal_deletes_only_and_a_retry_deletes_nothing_more(home: SmallHome) -> None:
    ws = Workspace(settings(home.home))
    release = _released(ws)
    user = _author_with_posts(ws)
    policy = ws.require_policy()
    with ws.session() as session:
        agreement = get_agreement(session, AGREEMENT, policy)
    ws.ledger.record(user, MASTER_KEY, False, at=RELEASED_AT + timedelta(hours=1))
    snapshot = consent_snapshot(ws.engine, RELEASED_AT + timedelta(hours=2))
    ids = AffectedIds((user,), (), {})
    first = withdraw(ws, policy, agreement, release, ids, snapshot, "test")
    deleted = first.deleted[TABLE]
    key = user_key(agreement_secret(ws.master_key, AGREEMENT), user)
    assert deleted.num_rows > 0 and set(deleted["user_key"].to_pylist()) == {key}
    posts = first.tables[[t.category for t in first.tables].index(TABLE)]
    assert posts.rows_added == 0 and posts.rows_removed == deleted.num_rows
    # Retried against the same pinned release (a crash before the ledger row): the same rows are found,
    # the table is not changed again.
    version = delta.table_version(ws.table_dir(AGREEMENT, TABLE))
    second = withdraw(ws, policy, agreement, release, ids, snapshot, "test")
    assert second.deleted[TABLE].num_rows == deleted.num_rows
    assert delta.table_version(ws.table_dir(AGREEMENT, TABLE)) == version


# --- the sharing service ------------------------------------------------------------------------------


def test_a_commit_no_release_pinned_is_not_served(home: SmallHome, app_client: AppClient) -> None:
    """A commit no release pinned (a build that died) is invisible: the version, the change feed."""
    ws = Workspace(settings(home.home))
    path = ws.table_dir(AGREEMENT, TABLE)
    pinned = _released(ws).table(TABLE)
    assert pinned is not None
    # A dead commit: rows deleted from the table with no ledger row pinning the version.
    with DiffSession(ws.lake, {}, pa.table({"user_id": [1], "key": ["k"], "value": [True]})) as session:
        existing = session.existing(TABLE, path)
        session.con.execute(f"CREATE TEMP TABLE doomed AS SELECT *, 'delete' AS _op FROM {existing} LIMIT 3")
        columns = list(session.con.sql(f"SELECT * FROM {existing}").columns)
        delta.rewrite(path, session.con, "doomed", columns, ("post_key",), commit_info={"test": "dead"})
    assert delta.table_version(path) == pinned.table_version + 1
    client: TestClient = app_client()
    version = client.get(TABLE_PATH + "/version", headers=home.partner_headers)
    assert version.headers["Delta-Table-Version"] == str(pinned.table_version)
    answer = client.get(TABLE_PATH + "/changes", params={"startingVersion": 0}, headers=home.partner_headers)
    assert answer.status_code == 200, answer.text
    versions = {line["cdf"]["version"] for line in _ndjson(answer.text) if "cdf" in line}
    assert versions == {pinned.table_version}
    past = client.get(
        TABLE_PATH + "/changes",
        params={"startingVersion": pinned.table_version + 1},
        headers=home.partner_headers,
    )
    assert past.status_code == 400 and "outside" in past.json()["message"]


def test_the_catalogue_and_metadata_answer_in_process(home: SmallHome, app_client: AppClient) -> None:
    client: TestClient = app_client()
    shares = client.get("/delta-sharing/shares", headers=home.partner_headers).json()
    assert [s["name"] for s in shares["items"]] == [AGREEMENT]
    metadata = _ndjson(client.get(TABLE_PATH + "/metadata", headers=home.partner_headers).text)
    assert metadata[0] == {"protocol": {"minReaderVersion": 1}}
    fields = json.loads(metadata[1]["metaData"]["schemaString"])["fields"]
    assert "bucket" not in {f["name"] for f in fields}
