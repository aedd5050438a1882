"""What changed since the previous release, so an incremental build touches only that.

A record's eligibility can change only if one of its inputs changed: its owner's settings (consent
events recorded since the last watermark, or taking effect since the last T), its owner's platform
row, the record itself (the source tables' change data feed), or time (a birthday, a creation or
deletion instant passing). Anything global — a new policy revision, a changed agreement, a version or
rule boundary passing, building as of an earlier T — asks for a full build instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from sqlalchemy import Engine

from datalease.platform.lake import Lake, delta_dataset
from datalease.policy.model import Policy
from datalease.policy.resolve import adult_cutoff
from datalease.policy.vocabulary import ENGAGEMENT
from datalease.releases.model import Release
from datalease.store.consent_events import ConsentEventStore

SOURCE_TABLES = ("users", "posts", "likes", "reposts", "bookmarks", "posts_curated")

IDS = pa.schema([pa.field("user_id", pa.int64())])
POST_IDS = pa.schema([pa.field("post_id", pa.int64())])
PAIRS = pa.schema([pa.field("user_id", pa.int64()), pa.field("post_id", pa.int64())])


@dataclass(frozen=True)
class Changes:
    full_reason: str | None
    users: pa.Table = field(default_factory=IDS.empty_table)
    posts: pa.Table = field(default_factory=POST_IDS.empty_table)
    engagement: dict[str, pa.Table] = field(default_factory=dict)

    @property
    def size(self) -> int:
        engagement = sum(int(t.num_rows) for t in self.engagement.values())
        return int(self.users.num_rows) + int(self.posts.num_rows) + engagement


@dataclass(frozen=True)
class Withheld:
    """People, posts and (user, post) engagement pairs a build must not (re)send."""

    users: tuple[int, ...] = ()
    posts: tuple[int, ...] = ()
    pairs: tuple[tuple[int, int], ...] = ()


def source_versions(lake: Lake) -> dict[str, int | None]:
    return {name: lake.version(name) for name in SOURCE_TABLES}


def global_change(
    policy: Policy, previous: Release | None, policy_revision_id: int, agreement_sha256: str, at: datetime
) -> str | None:
    """Why the whole agreement must be recomputed, or None when an incremental build is exact."""
    if previous is None:
        return "first release of this agreement"
    if previous.agreement_sha256 != agreement_sha256:
        return "the agreement changed"
    if previous.policy_revision_id != policy_revision_id:
        return "a new policy revision was applied"
    if at < previous.as_of:
        return f"building as of {at.isoformat()}, before the previous release's {previous.as_of.isoformat()}"
    edges = [v.effective_from for v in policy.versions] + [
        e for v in policy.versions for r in v.rules for e in (r.starts, r.ends) if e is not None
    ]
    passed = sorted(e for e in edges if previous.as_of < e <= at)
    if passed:
        return f"a policy version or rule boundary passed ({passed[0].isoformat()})"
    return None


def _changed_keys(
    lake: Lake, name: str, since: int | None, until: int | None, columns: list[str]
) -> pa.Table | None:
    """Keys of rows changed in table `name` between two versions; None if the feed cannot say."""
    if until is None or since == until:
        return pa.table({c: pa.array([], pa.int64()) for c in columns})
    path = str(lake.path(name))
    if since is None:
        return delta_dataset(DeltaTable(path, version=until)).to_table(columns=columns)
    if until < since:
        return None
    try:
        feed = pa.table(
            DeltaTable(path).load_cdf(starting_version=since + 1, ending_version=until, columns=columns)
        )
    except Exception:  # the feed was not enabled, or history was vacuumed: recompute everything
        return None
    return feed.select(columns)


def detect_changes(
    lake: Lake,
    engine: Engine,
    policy: Policy,
    previous: Release,
    versions: dict[str, int | None],
    at: datetime,
    con: duckdb.DuckDBPyConnection,
) -> Changes:
    """Affected users, posts and engagement rows since `previous` (lake tables registered on `con`)."""
    before = previous.source_versions
    feeds: dict[str, pa.Table] = {}
    for name, columns in (
        ("users", ["user_id"]),
        ("posts", ["post_id"]),
        ("posts_curated", ["post_id"]),
        *((n, ["user_id", "post_id"]) for n in ENGAGEMENT),
    ):
        changed = _changed_keys(lake, name, before.get(name), versions.get(name), columns)
        if changed is None:
            return Changes(full_reason=f"the change feed of {name} cannot tell what changed")
        feeds[name] = changed
    since, now = previous.as_of.isoformat(), at.isoformat()
    window = f"TIMESTAMPTZ '{since}' < {{c}} AND {{c}} <= TIMESTAMPTZ '{now}'"

    def in_window(column: str) -> str:
        return window.format(c=column)

    old_cutoff = adult_cutoff(previous.as_of, policy.hard_exclusions.minimum_age)
    new_cutoff = adult_cutoff(at, policy.hard_exclusions.minimum_age)
    users = set(ConsentEventStore(engine).users_changed(previous.consent_watermark, previous.as_of, at))
    users |= set(feeds["users"].column("user_id").to_pylist())
    users |= {
        int(r[0])
        for r in con.execute(
            f"SELECT user_id FROM users WHERE (birth_date > DATE '{old_cutoff}' AND birth_date <= DATE '{new_cutoff}') "
            f"OR {in_window('created_at')}"
        ).fetchall()
    }
    posts = set(feeds["posts"].column("post_id").to_pylist()) | set(
        feeds["posts_curated"].column("post_id").to_pylist()
    )
    posts |= {
        int(r[0])
        for r in con.execute(
            f"SELECT post_id FROM posts WHERE {in_window('created_at')} OR {in_window('deleted_at')}"
        ).fetchall()
    }
    engagement: dict[str, pa.Table] = {}
    for name in ENGAGEMENT:
        windowed = con.sql(
            f"SELECT user_id, post_id FROM {name} WHERE {in_window('created_at')} OR {in_window('deleted_at')}"
        ).to_arrow_table()
        engagement[name] = pa.concat_tables([feeds[name].cast(PAIRS), windowed.cast(PAIRS)])
    return Changes(
        full_reason=None,
        users=pa.table({"user_id": pa.array(sorted(users), pa.int64())}),
        posts=pa.table({"post_id": pa.array(sorted(posts), pa.int64())}),
        engagement=engagement,
    )
