"""A revocation batch applied to one agreement's share: deletes only, computed by the release plan.

The rows to withdraw are found exactly as an incremental build finds them — the compiled policy
over the affected users, posts and engagement, keyed with the agreement's HMAC secret — and only the
diff's deletes are committed (opting back in waits for the next release). The diff is taken
against the table version the latest release pinned, so a batch retried after a crash finds the
same rows even though its first attempt already deleted them; commits of a build that died are
undone first (`restore`), while commits of a revocation that died are kept and pinned now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from datalease.consent.snapshot import consent_snapshot
from datalease.faults import crashpoint
from datalease.licensing.model import Agreement
from datalease.platform.lake import register_delta
from datalease.policy.model import Policy
from datalease.releases import delta
from datalease.releases.build import _diff_sql, _register_changes, _register_sources, _row_count, share_dir
from datalease.releases.changes import IDS, PAIRS, POST_IDS, Changes, source_versions
from datalease.releases.keys import agreement_secret
from datalease.releases.plan import plan_release
from datalease.sharing.deltalog import read_commit
from datalease.store.releases import Release, ReleaseTable
from datalease.workspace import Workspace

KIND: Final = "revocation"
KIND_PROPERTY: Final = "datalease.kind"


@dataclass(frozen=True)
class Revoked:
    """What one batch withdrew from one agreement's share."""

    tables: tuple[ReleaseTable, ...]  # every table of the previous release, at its version after the batch
    deleted: dict[str, pa.Table]  # category → the key columns of the rows deleted
    changed: bool  # a commit was made (deletes, or a dead build's commits undone)


def revoke(
    ws: Workspace,
    policy: Policy,
    agreement: Agreement,
    previous: Release,
    users: list[int],
    posts: list[int],
    engagement: dict[str, list[tuple[int, int]]],
    at: datetime,
    batch: str,
) -> Revoked:
    directory = share_dir(ws, agreement.agreement_id)
    restored = _undo_dead_builds(directory, previous)
    changes = Changes(
        None,
        users=pa.table({"user_id": pa.array(users, pa.int64())}, schema=IDS),
        posts=pa.table({"post_id": pa.array(posts, pa.int64())}, schema=POST_IDS),
        engagement={
            c: pa.table(
                {
                    "user_id": pa.array([u for u, _ in p], pa.int64()),
                    "post_id": pa.array([q for _, q in p], pa.int64()),
                },
                schema=PAIRS,
            )
            for c, p in engagement.items()
        },
    )
    secret = agreement_secret(ws.master_key, agreement.agreement_id)
    snapshot = consent_snapshot(ws.engine, at)
    commit_info = {
        "datalease.agreement": agreement.agreement_id,
        KIND_PROPERTY: KIND,
        "datalease.batch": batch,
    }
    tables: list[ReleaseTable] = []
    deleted: dict[str, pa.Table] = {}
    changed = restored
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{ws.settings.engine_memory}'")
        _register_sources(con, ws, source_versions(ws.lake))
        con.register("consent", snapshot.table)
        _register_changes(con, changes)
        plan = plan_release(policy, agreement, secret, at, incremental=True)
        for name, sql in plan.prepare:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        plans = {p.category: p for p in plan.categories}
        for pinned in previous.tables:
            path = directory / pinned.category
            category_plan = plans.get(pinned.category)
            if category_plan is None or not DeltaTable.is_deltatable(str(path)):
                tables.append(_unchanged(pinned, path))
                continue
            register_delta(con, "existing", path, partitioned=True, version=pinned.table_version)
            diff = con.sql(_diff_sql(category_plan)).to_arrow_table()
            doomed = diff.filter(pc.equal(diff[delta.OP], "delete"))
            deleted[pinned.category] = doomed.select([c for c in doomed.column_names if c.endswith("_key")])
            crashpoint("revoke:before_commit")
            if doomed.num_rows:
                stats = delta.apply(
                    path, doomed, list(category_plan.columns), category_plan.identity, commit_info=commit_info
                )
                changed = True
                tables.append(
                    ReleaseTable(
                        pinned.category,
                        stats.version,
                        _row_count(path),
                        0,
                        stats.rows_removed,
                        stats.files_added,
                        stats.files_removed,
                    )
                )
            else:
                tables.append(_unchanged(pinned, path))
    finally:
        con.close()
    return Revoked(tuple(tables), deleted, changed)


def _unchanged(pinned: ReleaseTable, path: Path) -> ReleaseTable:
    """The table as it now stands (a dead revocation's commits adopted), nothing added or removed now."""
    version = delta.table_version(path)
    if version is None or version == pinned.table_version:
        return ReleaseTable(pinned.category, pinned.table_version, pinned.rows_total, 0, 0, 0, 0)
    return ReleaseTable(pinned.category, version, _row_count(path), 0, 0, 0, 0)


def _undo_dead_builds(directory: Path, previous: Release) -> bool:
    """Restore a table to its pinned version when a build died after committing to it."""
    restored = False
    for pinned in previous.tables:
        path = directory / pinned.category
        current = delta.table_version(path)
        if current is None or current == pinned.table_version:
            continue
        kinds = {
            read_commit(path, v).info.get(KIND_PROPERTY) for v in range(pinned.table_version + 1, current + 1)
        }
        if kinds != {KIND}:
            DeltaTable(str(path)).restore(pinned.table_version)
            restored = True
    return restored


def deleted_rows(deleted: dict[str, pa.Table], match: dict[str, str]) -> int:
    """How many deleted rows, over every table, have all the given key values."""
    total = 0
    for table in deleted.values():
        if table.num_rows == 0 or any(column not in table.column_names for column in match):
            continue
        mask = None
        for column, value in match.items():
            equal = pc.equal(table[column], value)
            mask = equal if mask is None else pc.and_(mask, equal)
        total += int(pc.sum(mask).as_py() or 0)
    return total
