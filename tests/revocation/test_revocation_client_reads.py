"""The official client reads every table we serve, after every kind of build and revocation, and a
dead build's commits never reach the change feed (issue 11, items 0b and 4).

delta-rs merges once wrote `string_view` columns into shared files: `load_as_pandas` then failed
(`Not implemented type for Arrow list to pandas: string_view`, the `pii_types` list) and `/changes`
answered 500. And after a build died between table commits and a revocation restored and deleted, a
partner reading `/changes` from its last version saw the dead build's deletes, a RESTORE's deletes and
re-inserts of rows it already held, and keys never released. Here every table of an agreement of
five categories (posts with their PII types) is read through the official client, in both response
formats, after a full build, incremental builds (inserts, updates, deletes), revocation batches, a
build killed halfway and the batch that cleans up after it: the snapshot is what the platform
committed, and a partner replaying the feed from 0 and one syncing version by version both end with
exactly the snapshot.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import delta_sharing
import pandas as pd
from release_oracle import Row
from release_world import run_cli
from revocation_world import (
    FIVE,
    FIVE_PARTNER,
    IDENTITY,
    Partner,
    Served,
    as_rows,
    delta_rows,
    frame_rows,
    heavy_users,
    identity,
    license_five,
    replay,
)

from datalease.policy.vocabulary import MASTER_KEY
from datalease.revocation.worker import process_pending
from datalease.services.events import submit_events
from datalease.services.releases import build_release
from datalease.sharing.profiles import issue_profile
from datalease.store.releases import list_releases
from datalease.workspace import Workspace

CATEGORIES = ("posts", "likes", "reposts", "bookmarks", "profile")


class Reader:
    """A partner that keeps its own copy of each table by following the feed release by release."""

    def __init__(self, partner: Partner) -> None:
        self.partner = partner
        self.copies: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
        self.versions: dict[str, int] = {}

    def check(self, ws: Workspace, table: str) -> None:
        latest = self.partner.version(FIVE, table)
        for delta_format in (False, True):
            snapshot = frame_rows(self._snapshot(table, delta_format))
            assert as_rows(snapshot) == _pinned(ws, table), f"{table}: snapshot"
            whole = frame_rows(self._changes(table, 0, delta_format))
            _check_removals(whole, table)
            assert as_rows(replay({}, whole, table).values()) == as_rows(snapshot), f"{table}: feed from 0"
        last = self.versions.get(table)
        if last is None:
            feed = frame_rows(self._changes(table, 0, False))
            self.copies[table] = replay({}, feed, table)
        elif last < latest:
            feed = frame_rows(self._changes(table, last + 1, False))
            _check_removals(feed, table)
            versions = {int(c["_commit_version"]) for c in feed}
            assert versions <= set(_released(ws, table)), f"{table}: an unreleased version in the feed"
            held = set(self.copies[table])
            for change in feed:
                if change["_change_type"] == "insert":
                    assert identity(change, table) not in held, f"{table}: re-inserts a row the partner holds"
            self.copies[table] = replay(self.copies[table], feed, table)
        assert as_rows(self.copies[table].values()) == _pinned(ws, table), f"{table}: synced"
        self.versions[table] = latest

    def _snapshot(self, table: str, delta_format: bool) -> pd.DataFrame:
        return delta_sharing.load_as_pandas(self.partner.url(FIVE, table), use_delta_format=delta_format)

    def _changes(self, table: str, start: int, delta_format: bool) -> pd.DataFrame:
        return delta_sharing.load_table_changes_as_pandas(
            self.partner.url(FIVE, table), starting_version=start, use_delta_format=delta_format
        )


def _check_removals(feed: list[dict[str, Any]], table: str) -> None:
    keys = set(IDENTITY[table]) | {"user_key", "post_key"}
    for change in feed:
        if change["_change_type"] in ("delete", "update_preimage"):
            extra = {
                k: v for k, v in change.items() if k not in keys and not k.startswith("_") and v is not None
            }
            assert not extra, f"{table}: a removal carries data {extra}"


def _pinned(ws: Workspace, table: str) -> Counter[Row]:
    """The table at the version the latest release pins (a dead build's later commits are not it)."""
    return as_rows(delta_rows(ws, FIVE, table, _released(ws, table)[-1]))


def _released(ws: Workspace, table: str) -> list[int]:
    with ws.session() as session:
        return sorted(
            {t.table_version for r in list_releases(session, FIVE) for t in r.tables if t.category == table}
        )


def test_every_table_after_every_kind_of_build_and_revocation(
    home: Workspace, server: Callable[..., Served], tmp_path: Path
) -> None:
    ws = home
    license_five(ws)
    build_release(ws, FIVE)
    served = server(ws.settings.resolved_home)
    out = tmp_path / "five.share"
    issue_profile(ws, FIVE_PARTNER, out, expires="1d", endpoint_base=served.server.base)
    reader = Reader(
        Partner(FIVE_PARTNER, out, json.loads(out.read_text())["bearerToken"], served.server.endpoint)
    )

    def read_all() -> None:
        for table in CATEGORIES:
            reader.check(ws, table)

    read_all()
    users = heavy_users(ws, FIVE, 4)
    # An incremental build with deletes and updates (opt-out; a country change moves a profile).
    ws.ledger.record(users[0], MASTER_KEY, False)
    submit_events(ws, [{"type": "user_country_change", "user_id": users[1], "country": "GB"}])
    build_release(ws, FIVE)
    read_all()
    # The person opts back in: an incremental build that inserts.
    ws.ledger.record(users[0], MASTER_KEY, True)
    build_release(ws, FIVE)
    read_all()
    # A revocation batch.
    ws.ledger.record(users[2], MASTER_KEY, False)
    process_pending(ws)
    read_all()
    # A build that dies after committing its first tables, then a revocation that cleans up after it.
    ws.ledger.record(users[0], MASTER_KEY, False)
    ws.ledger.record(users[2], MASTER_KEY, True)
    killed = run_cli(ws.settings.resolved_home, "release", "build", FIVE, crashpoint="after_table:reposts")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    read_all()
    ws.ledger.record(users[3], MASTER_KEY, False)
    process_pending(ws)
    read_all()
    # A full build, then the next incremental one completes everything.
    build_release(ws, FIVE, full=True)
    read_all()
