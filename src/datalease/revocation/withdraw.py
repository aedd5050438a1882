"""A revocation batch applied to one agreement's share: deletes only, computed by the release plan.

The rows to withdraw are found exactly as an incremental build finds them — the compiled policy over
the affected users, posts and engagement, keyed with the agreement's HMAC secret — and only the diff's
deletes are committed (opting back in waits for the next release). The diff is taken against the
table version the latest release pinned, so a batch retried after a crash finds the same rows even
though its first attempt already deleted them; commits of a build that died are undone first
(`restore`), while commits of a revocation that died are kept and pinned now.

One instant for everyone: the affected people's facts (settings, account state, deletions) are taken
at the batch's instant, under the policy revision and version the agreement's current release was
built with (`policy_at` = that release's as-of). A policy that changed since is the next build's
business — or a bulk withdrawal's — never an accident of who happened to be in this batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from datalease.consent.snapshot import ConsentSnapshot
from datalease.faults import crashpoint
from datalease.licensing.model import Agreement
from datalease.policy.model import Policy
from datalease.releases import delta
from datalease.releases.changes import IDS, PAIRS, POST_IDS, Changes, source_versions
from datalease.releases.diff import DiffSession
from datalease.releases.keys import agreement_secret
from datalease.releases.model import KIND_REVOCATION, Release, ReleaseTable
from datalease.releases.plan import plan_release
from datalease.releases.support_tables import is_licensed_data
from datalease.revocation.subjects import AffectedIds
from datalease.workspace import Workspace


@dataclass(frozen=True)
class Withdrawn:
    """What one batch withdrew from one agreement's share."""

    tables: tuple[ReleaseTable, ...]  # every table of the previous release, at its version after the batch
    deleted: dict[str, pa.Table]  # category → the key columns of the rows deleted
    # (post_id, author_id) of every post by an affected person, as the diff read the lake: which
    # deleted likes (reposts, bookmarks) point at a revoked author's posts (revocation/claims.py)
    authored: pa.Table
    changed: bool  # a commit was made (deletes, or a dead build's commits undone)


def withdraw(
    ws: Workspace,
    policy: Policy,
    agreement: Agreement,
    previous: Release,
    ids: AffectedIds,
    snapshot: ConsentSnapshot,
    batch: str,
) -> Withdrawn:
    """Withdraw the affected rows no longer allowed at `snapshot.at`, the batch's instant (the
    snapshot is the batch's, read once for all its agreements)."""
    at = snapshot.at
    directory = ws.share_dir(agreement.agreement_id)
    restored = undo_dead_builds(directory, previous)
    changes = Changes(
        None,
        users=pa.table({"user_id": pa.array(ids.users, pa.int64())}, schema=IDS),
        posts=pa.table({"post_id": pa.array(ids.posts, pa.int64())}, schema=POST_IDS),
        engagement={
            c: pa.table(
                {
                    "user_id": pa.array([u for u, _ in p], pa.int64()),
                    "post_id": pa.array([q for _, q in p], pa.int64()),
                },
                schema=PAIRS,
            )
            for c, p in ids.engagement.items()
        },
    )
    secret = agreement_secret(ws.master_key, agreement.agreement_id)
    commit_info = delta.commit_info(agreement.agreement_id, KIND_REVOCATION, batch=batch)
    tables: list[ReleaseTable] = []
    deleted: dict[str, pa.Table] = {}
    changed = restored
    with DiffSession(
        ws.lake, source_versions(ws.lake), snapshot.table, memory_limit=ws.settings.engine_memory
    ) as session:
        session.register_changes(changes)
        plan = plan_release(policy, agreement, secret, at, incremental=True, policy_at=previous.as_of)
        session.prepare(plan)
        plans = {p.category: p for p in plan.categories}
        authored = session.con.sql(
            "SELECT post_id, author_id FROM candidate_post_rows "
            "WHERE author_id IN (SELECT user_id FROM affected_users)"
        ).to_arrow_table()
        for pinned in previous.tables:
            path = directory / pinned.category
            category_plan = plans.get(pinned.category)
            # Support tables (forget list, ledger head) hold no one's rows: carried as they stand.
            if (
                not is_licensed_data(pinned.category)
                or category_plan is None
                or delta.table_version(path) is None
            ):
                tables.append(_unchanged(pinned, path))
                continue
            existing = session.existing(pinned.category, path, version=pinned.table_version)
            doomed = f"__doomed_{pinned.category}"
            session.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {doomed} AS SELECT * FROM "
                f"({session.diff_sql(category_plan, existing)}) WHERE {delta.OP} = 'delete'"
            )
            keys = [c for c in category_plan.columns if c.endswith("_key")]
            deleted[pinned.category] = session.con.sql(
                f"SELECT {', '.join(keys)} FROM {doomed}"
            ).to_arrow_table()
            crashpoint("revoke:before_commit")
            if deleted[pinned.category].num_rows:
                stats = delta.rewrite(
                    path,
                    session.con,
                    doomed,
                    category_plan.columns,
                    category_plan.identity,
                    commit_info=commit_info,
                )
                changed = True
                tables.append(
                    ReleaseTable(
                        pinned.category,
                        stats.version,
                        delta.row_count(path),
                        0,
                        stats.rows_removed,
                        stats.files_added,
                        stats.files_removed,
                    )
                )
            else:
                tables.append(_unchanged(pinned, path))
    return Withdrawn(tuple(tables), deleted, authored, changed)


def _unchanged(pinned: ReleaseTable, path: Path) -> ReleaseTable:
    """The table as it now stands (a dead revocation's commits adopted), nothing added or removed now."""
    version = delta.table_version(path)
    if version is None or version == pinned.table_version:
        return ReleaseTable(pinned.category, pinned.table_version, pinned.rows_total, 0, 0, 0, 0)
    return ReleaseTable(pinned.category, version, delta.row_count(path), 0, 0, 0, 0)


def undo_dead_builds(directory: Path, previous: Release) -> bool:
    """Restore a table to its pinned version when a build died after committing to it."""
    restored = False
    for pinned in previous.tables:
        path = directory / pinned.category
        current = delta.table_version(path)
        if current is None or current == pinned.table_version:
            continue
        kinds = set(delta.commit_kinds(path, after=pinned.table_version))
        if kinds != {KIND_REVOCATION}:
            delta.restore(path, pinned.table_version)
            restored = True
    return restored
