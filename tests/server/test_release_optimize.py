"""`release optimize` compacts a share's small files as a dataChange=false commit pinned by an `optimize`
release (issue 13, item 4): partners' snapshots hold the same rows, their change feeds show nothing
new, time travel to earlier released versions still answers (the history floor did not move), the
files stay plain-typed, and the next build is incremental against the same rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import delta_sharing
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from fastapi.testclient import TestClient
from sharing_world import Server
from small_home import AGREEMENT, RELEASED_AT, SCHEMA, TABLE, SmallHome, settings

from datalease.errors import UserError
from datalease.policy.vocabulary import MASTER_KEY
from datalease.releases import delta
from datalease.releases.keys import agreement_secret, user_key
from datalease.releases.model import KIND_BUILD, KIND_OPTIMIZE, ReleaseTable
from datalease.revocation.forget_table import TABLE as FORGET_TABLE
from datalease.revocation.worker import process_pending
from datalease.services.releases import build_release, optimize_release
from datalease.store.releases import latest_release, list_releases, record_release
from datalease.workspace import Workspace

AppClient = Callable[..., TestClient]
APPENDS = 5
OPT_OUTS = 3


def _table_path(table: str) -> str:
    return f"/delta-sharing/shares/{AGREEMENT}/schemas/{SCHEMA}/tables/{table}"


def _small_files(ws: Workspace) -> None:
    """Small files the way a busy share gets them: upsert commits by the release writer that each add a
    file to a bucket (new posts), and revocation batches that each add a file to the forget list."""
    path = ws.table_dir(AGREEMENT, TABLE)
    template = DeltaTable(str(path)).to_pyarrow_table().slice(0, 1)
    columns = template.column_names
    con = duckdb.connect()
    for i in range(APPENDS):
        with ws.session() as session:
            previous = latest_release(session, AGREEMENT)
        assert previous is not None
        fresh = template.set_column(
            columns.index("post_key"), "post_key", pa.array([f"{i:064x}"], pa.string())
        ).append_column(delta.OP, pa.array(["upsert"]))
        con.register("fresh", fresh)
        stats = delta.rewrite(
            path,
            con,
            "fresh",
            columns,
            ("post_key",),
            commit_info=delta.commit_info(AGREEMENT, KIND_BUILD),
        )
        tables = tuple(
            ReleaseTable(TABLE, stats.version, delta.row_count(path), 1, 0, 1, 0)
            if t.category == TABLE
            else t
            for t in previous.tables
        )
        with ws.write_session() as db, db.begin():
            record_release(db, replace(previous, release_id=0, tables=tables))
    secret = agreement_secret(ws.master_key, AGREEMENT)
    authors = set(DeltaTable(str(path)).to_pyarrow_table()["user_key"].to_pylist())
    users = [u for u in ws.lake.read("users")["user_id"].to_pylist() if user_key(secret, u) in authors]
    for n, user in enumerate(users[:OPT_OUTS]):
        ws.ledger.record(user, MASTER_KEY, False, at=RELEASED_AT + timedelta(minutes=n + 1))
        process_pending(ws, now=RELEASED_AT + timedelta(minutes=n + 1, seconds=30))


def _rows(path: Path, version: int | None = None) -> set[str]:
    frame = DeltaTable(str(path), version=version).to_pyarrow_table()
    return {json.dumps(row, sort_keys=True, default=str) for row in frame.to_pylist()}


def _ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _feed(client: TestClient, headers: dict[str, str], table: str) -> set[tuple[int, str]]:
    answer = client.get(_table_path(table) + "/changes", params={"startingVersion": 0}, headers=headers)
    assert answer.status_code == 200, answer.text
    return {
        (line["cdf"]["version"], line["cdf"]["url"].split("?")[0].rsplit("/", 1)[-1])
        for line in _ndjson(answer.text)
        if "cdf" in line
    }


def test_optimize_compacts_without_a_change_partners_can_see(home: SmallHome, app_client: AppClient) -> None:
    ws = Workspace(settings(home.home))
    _small_files(ws)
    client = app_client()
    tables = (TABLE, FORGET_TABLE)
    paths = {t: ws.table_dir(AGREEMENT, t) for t in tables}
    files_before = {t: len(delta.table_files(paths[t])) for t in tables}
    rows_before = {t: _rows(paths[t]) for t in tables}
    feeds_before = {t: _feed(client, home.partner_headers, t) for t in tables}
    with ws.session() as session:
        previous = latest_release(session, AGREEMENT)
    assert previous is not None and files_before[FORGET_TABLE] >= 2

    result = optimize_release(ws, AGREEMENT)

    assert result.release is not None and result.release.kind == KIND_OPTIMIZE
    assert {c.category for c in result.compactions} >= set(tables)
    for done in result.compactions:
        assert done.files_after < done.files_before and done.bytes_rewritten > 0
    for table in tables:
        path = paths[table]
        pinned = result.release.table(table)
        assert pinned is not None and pinned.table_version == delta.table_version(path)
        assert len(delta.table_files(path)) < files_before[table]
        assert _rows(path) == rows_before[table]
        for file in delta.table_files(path):
            for field in pq.read_schema(path / file.path):
                assert "view" not in str(field.type) and "large" not in str(field.type), field
        version = client.get(_table_path(table) + "/version", headers=home.partner_headers)
        assert version.headers["Delta-Table-Version"] == str(pinned.table_version)
        # The change feed from 0 is what it was: no version of the compaction in it.
        assert _feed(client, home.partner_headers, table) == feeds_before[table]
        # The floor did not move: the version before the compaction is still readable.
        before = previous.table(table)
        assert before is not None
        older = client.post(
            _table_path(table) + "/query",
            json={"version": before.table_version},
            headers=home.partner_headers,
        )
        assert older.status_code == 200, older.text
    # The diff base was carried over: same watermark, sources and instant.
    assert (result.release.consent_watermark, result.release.source_versions, result.release.as_of) == (
        previous.consent_watermark,
        previous.source_versions,
        previous.as_of,
    )

    # Nothing more to compact: no release recorded.
    count = len(list_releases_of(ws))
    assert optimize_release(ws, AGREEMENT).release is None
    assert len(list_releases_of(ws)) == count

    # The next build diffs against the compacted tables.
    built = build_release(ws, AGREEMENT, at=RELEASED_AT + timedelta(hours=2))
    assert built.full_reason is None and built.release.kind == KIND_BUILD


def list_releases_of(ws: Workspace) -> list[object]:
    with ws.session() as session:
        return list(list_releases(session, AGREEMENT))


def test_optimize_refuses_a_table_a_writer_left_unfinished(home: SmallHome) -> None:
    ws = Workspace(settings(home.home))
    _small_files(ws)
    path = ws.table_dir(AGREEMENT, TABLE)
    con = duckdb.connect()
    rows = DeltaTable(str(path)).to_pyarrow_table().slice(0, 1)
    con.register("doomed", rows.append_column(delta.OP, pa.array(["delete"])))
    delta.rewrite(path, con, "doomed", rows.column_names, ("post_key",), commit_info={"test": "dead"})
    count = len(list_releases_of(ws))
    version = delta.table_version(path)
    with pytest.raises(UserError, match="did not finish"):
        optimize_release(ws, AGREEMENT)
    assert len(list_releases_of(ws)) == count and delta.table_version(path) == version


def test_optimize_of_an_unknown_agreement_is_a_clear_error(home: SmallHome) -> None:
    ws = Workspace(settings(home.home))
    with pytest.raises(UserError, match="no agreement 'nope'"):
        optimize_release(ws, "nope")


def test_the_official_client_reads_the_same_rows_and_feed_after_optimize(
    home: SmallHome, real_server: Callable[..., Server]
) -> None:
    ws = Workspace(settings(home.home))
    _small_files(ws)
    server = real_server(DATALEASE_REVOCATION_WORKER="false")
    profile = home.home / "partner.share"
    profile.write_text(
        json.dumps(
            {"shareCredentialsVersion": 1, "endpoint": server.endpoint, "bearerToken": home.partner_bearer}
        )
    )
    urls = {t: f"{profile}#{AGREEMENT}.{SCHEMA}.{t}" for t in (TABLE, FORGET_TABLE)}
    before = {t: (_frame(delta_sharing.load_as_pandas(u)), _feed_frame(u)) for t, u in urls.items()}
    assert optimize_release(ws, AGREEMENT).release is not None
    for table, url in urls.items():
        snapshot, feed = before[table]
        assert _frame(delta_sharing.load_as_pandas(url)) == snapshot, table
        assert _feed_frame(url) == feed, table


def _frame(frame: pd.DataFrame) -> set[str]:
    return {json.dumps(r, sort_keys=True, default=str) for r in frame.to_dict(orient="records")}


def _feed_frame(url: str) -> set[str]:
    return _frame(delta_sharing.load_table_changes_as_pandas(url, starting_version=0))
