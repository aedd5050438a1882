"""A shared table whose log was checkpointed and whose older JSON commits are gone (delta-rs cleans them
up after the log retention period) still answers through the official client: the snapshot, time
travel to released versions above the floor, and the change feed from there. Replaying the log from
version 0 — what the server once did — would fail here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import delta_sharing
import pandas as pd
import pyarrow as pa
import pytest
import requests
from delta_sharing.rest_client import DataSharingRestClient
from deltalake import DeltaTable, write_deltalake
from sharing_world import Server
from small_home import AGREEMENT, SCHEMA, TABLE, SmallHome, settings

from datalease.releases import delta
from datalease.releases.model import ReleaseTable
from datalease.store.releases import latest_release, record_release
from datalease.workspace import Workspace

COMMITS = 70
CHECKPOINT_AFTER = 45  # commits; then a checkpoint, as delta-rs writes every 100 commits on its own
RELEASE_EVERY = 10


@pytest.fixture(autouse=True)
def client_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DataSharingRestClient.__init__, "__defaults__", (0,))


def _commit_many(ws: Workspace) -> tuple[list[int], int]:
    """COMMITS one-row appends to the posts table, a release pinned every RELEASE_EVERY and a
    checkpoint after CHECKPOINT_AFTER; the released versions and the checkpoint's."""
    path = ws.table_dir(AGREEMENT, TABLE)
    with ws.session() as session:
        first = latest_release(session, AGREEMENT)
    assert first is not None
    template = DeltaTable(str(path)).to_pyarrow_table().slice(0, 1)
    released = []
    for i in range(COMMITS):
        row = template.set_column(
            template.schema.get_field_index("post_key"), "post_key", pa.array([f"{i:032x}"], pa.string())
        )
        write_deltalake(str(path), row, mode="append", partition_by=[delta.PARTITION])
        if i + 1 == CHECKPOINT_AFTER:
            checkpointed = DeltaTable(str(path))
            checkpointed.create_checkpoint()
            checkpoint = int(checkpointed.version())
        if (i + 1) % RELEASE_EVERY == 0:
            version = int(DeltaTable(str(path)).version())
            table = ReleaseTable(TABLE, version, delta.row_count(path), 1, 0, 1, 0)
            with ws.write_session() as db, db.begin():
                record_release(db, replace(first, release_id=0, kind="revocation", tables=(table,)))
            released.append(version)
    return released, checkpoint


def test_a_table_read_from_its_checkpoint_after_older_commits_were_cleaned_up(
    home: SmallHome, real_server: Callable[..., Server]
) -> None:
    ws = Workspace(settings(home.home))
    released, checkpoint = _commit_many(ws)
    log = ws.table_dir(AGREEMENT, TABLE) / "_delta_log"
    assert sorted(log.glob("*.checkpoint.parquet")), "delta-rs wrote no checkpoint"
    for commit in log.glob("*.json"):
        if int(commit.stem) < checkpoint:  # what delta-rs's log clean-up deletes
            commit.unlink()
    assert DeltaTable(str(log.parent)).version() == released[-1]

    server = real_server()
    profile = home.home / "partner.share"
    profile.write_text(
        json.dumps(
            {"shareCredentialsVersion": 1, "endpoint": server.endpoint, "bearerToken": home.partner_bearer}
        )
    )
    url = f"{profile}#{AGREEMENT}.{SCHEMA}.{TABLE}"
    expected = _rows(DeltaTable(str(log.parent)).to_pandas())
    assert _rows(delta_sharing.load_as_pandas(url)) == expected

    available = [v for v in released if v >= checkpoint]
    assert len(available) >= 2 and released[0] < checkpoint
    floor, later = available[0], available[1]
    older = _rows(DeltaTable(str(log.parent), version=later).to_pandas())
    assert _rows(delta_sharing.load_as_pandas(url, version=later)) == older
    with pytest.raises(requests.HTTPError) as refused:
        delta_sharing.load_as_pandas(url, version=released[0])
    assert refused.value.response is not None and refused.value.response.status_code == 400

    feed = delta_sharing.load_table_changes_as_pandas(url, starting_version=floor + 1)
    assert set(feed["_commit_version"]) == set(available[1:])
    assert set(feed["_change_type"]) == {"insert"}
    at_floor = set(DeltaTable(str(log.parent), version=floor).to_pandas()["post_key"])
    assert set(feed["post_key"]) == {key for key, _user in expected} - at_floor
    with pytest.raises(requests.HTTPError) as purged:
        delta_sharing.load_table_changes_as_pandas(url, starting_version=0)
    assert purged.value.response is not None and purged.value.response.status_code == 400


def _rows(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return {(str(k), str(u)) for k, u in zip(frame["post_key"], frame["user_key"], strict=True)}
