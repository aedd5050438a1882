"""What an incremental build costs, and which changes force a full one.

An opt-out must reach the partner as a small incremental commit that removes exactly that person's
rows (their own and the engagement with their posts) and rewrites only the files of the buckets
those rows live in. Global changes — a new policy revision, building as of an earlier T than the last
release, a policy version or rule boundary passing — must recompute everything, and still match the
oracle.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from release_oracle import Row, check_release, hkey, pinned_contents, secret_for, share_table
from release_world import (
    AGREEMENTS,
    LUMEN,
    SENTIMETRICS,
    T0,
    Platform,
    apply_policy,
    birth_date_turning_18,
    example_text,
)

from datalease.policy.vocabulary import MASTER_KEY, category_key
from datalease.releases.model import Release, ReleaseTable
from datalease.releases.support_tables import is_licensed_data
from datalease.revocation.worker import process_pending
from datalease.services.releases import build_release
from datalease.store.releases import latest_release
from datalease.workspace import Workspace

# Run again with the homes on PostgreSQL (make test, README "Tests").
pytestmark = pytest.mark.postgresql_homes


def latest(ws: Workspace, agreement_id: str) -> Release:
    with ws.session() as session:
        release = latest_release(session, agreement_id)
    assert release is not None
    return release


def files_by_bucket(path: Path, version: int) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for uri in DeltaTable(str(path), version=version).file_uris():
        bucket = uri.split("bucket=")[1].split("/")[0]
        out.setdefault(bucket, set()).add(uri)
    return out


def related_rows(
    contents: dict[str, Counter[Row]], user_key: str, post_keys: set[str]
) -> dict[str, Counter[Row]]:
    """Rows that name the user: their own (user_key) and engagement with their posts (post_key)."""
    return {
        category: Counter(
            {
                r: n
                for r, n in rows.items()
                if dict(r)["user_key"] == user_key or dict(r).get("post_key") in post_keys
            }
        )
        for category, rows in contents.items()
    }


def keys_of(
    ws: Workspace, agreement_id: str, user_id: int, posts: list[dict[str, Any]] | None = None
) -> tuple[str, set[str]]:
    """The user's key and the keys of every post they wrote, for one agreement."""
    secret = secret_for(ws, agreement_id)
    posts = ws.lake.read("posts").to_pylist() if posts is None else posts
    return hkey(secret, f"user:{user_id}"), {
        hkey(secret, f"post:{p['post_id']}") for p in posts if p["author_id"] == user_id
    }


def pick_user(ws: Workspace, contents: dict[str, Counter[Row]]) -> tuple[int, str]:
    """A user with posts and reposts in the lumen release whose rows sit in at most two buckets per table."""
    best: tuple[int, int, str] | None = None
    posts = ws.lake.read("posts").to_pylist()
    for user_id in ws.lake.read("users").column("user_id").to_pylist():
        key, post_keys = keys_of(ws, LUMEN, user_id, posts)
        related = related_rows(contents, key, post_keys)
        if not related["posts"] or not related["reposts"]:
            continue
        buckets = [{dict(r)["bucket"] for r in rows} for rows in related.values()]
        size = sum(sum(rows.values()) for rows in related.values())
        if all(len(b) <= 2 for b in buckets) and (best is None or size > best[0]):
            best = (size, user_id, key)
    assert best is not None, "no suitable user in the world"
    return best[1], best[2]


def data_tables(release: Release) -> list[ReleaseTable]:
    """The release's licensed tables (a build also appends to its ledger_head support table)."""
    return [t for t in release.tables if is_licensed_data(t.category)]


def licensed(contents: dict[str, Counter[Row]]) -> dict[str, Counter[Row]]:
    return {c: rows for c, rows in contents.items() if is_licensed_data(c)}


def test_an_opt_out_is_a_small_incremental_commit(world: Workspace) -> None:
    for agreement_id in AGREEMENTS:
        build_release(world, agreement_id, at=T0)
    first = {a: latest(world, a) for a in AGREEMENTS}
    before = {a: licensed(pinned_contents(world, first[a])) for a in AGREEMENTS}
    user_id, lumen_key = pick_user(world, before[LUMEN])
    world.ledger.record(user_id, MASTER_KEY, False, at=T0 + timedelta(hours=1))

    at = T0 + timedelta(hours=2)
    # The opt-out is a revocation: the worker withdraws the rows in a small commit per table ...
    process_pending(world, now=at)
    revoked = {a: latest(world, a) for a in AGREEMENTS}
    for agreement_id in AGREEMENTS:
        result = build_release(world, agreement_id, at=at)
        assert result.full_reason is None and not result.release.full_build
        assert 1 <= result.changed_inputs <= 3, result.changed_inputs
        check_release(world, agreement_id)
        # ... so the build that follows finds nothing left to remove and commits nothing (but its
        # ledger_head row).
        for table in data_tables(result.release):
            assert table.rows_removed == table.rows_added == 0
            pinned = revoked[agreement_id].table(table.category)
            assert pinned is not None and table.table_version == pinned.table_version
        gone = related_rows(before[agreement_id], *keys_of(world, agreement_id, user_id))
        after = pinned_contents(world, latest(world, agreement_id))
        assert revoked[agreement_id].kind == ("revocation" if any(gone.values()) else "build")
        if revoked[agreement_id].kind == "build":  # none of the user's rows went to this partner
            assert licensed(after) == licensed(before[agreement_id])
            continue
        for table in revoked[agreement_id].tables:
            category = table.category
            if category == "forget":  # the forget list the revocation added (keys only)
                assert table.rows_added == 1 and revoked[agreement_id].kind == "revocation"
                continue
            if category == "ledger_head":  # a revocation reads no consent state: pinned as it stands
                pinned = first[agreement_id].table(category)
                assert pinned is not None and table == replace(pinned, rows_added=0, files_added=0)
                continue
            assert after[category] == before[agreement_id][category] - gone[category], category
            assert table.rows_removed == sum(gone[category].values())
            assert table.rows_added == 0
            previous_version = first[agreement_id].table(category)
            assert previous_version is not None
            if not gone[category]:
                # Nothing to remove: no new Delta version at all.
                assert table.table_version == previous_version.table_version
                continue
            touched = {dict(r)["bucket"] for r in gone[category]}
            path = share_table(world, agreement_id, category)
            old_files = files_by_bucket(path, previous_version.table_version)
            new_files = files_by_bucket(path, table.table_version)
            assert table.table_version == previous_version.table_version + 1
            for bucket in set(old_files) | set(new_files):
                if bucket not in touched:
                    assert old_files.get(bucket) == new_files.get(bucket), (
                        f"{category}: bucket {bucket} rewritten"
                    )
            assert table.files_removed <= len(touched)
            if agreement_id == LUMEN:
                assert len(touched) <= 2 and table.files_removed <= 2
    assert lumen_key == hkey(secret_for(world, LUMEN), f"user:{user_id}")


def test_a_build_with_nothing_new_commits_nothing(world: Workspace) -> None:
    build_release(world, LUMEN, at=T0)
    first = latest(world, LUMEN)
    result = build_release(world, LUMEN, at=T0 + timedelta(minutes=5))
    assert result.full_reason is None
    assert result.changed_inputs == 0
    assert result.release.release_id == first.release_id + 1
    for table in data_tables(result.release):
        pinned = first.table(table.category)
        assert pinned is not None
        assert (table.table_version, table.rows_total) == (pinned.table_version, pinned.rows_total)
        assert (table.rows_added, table.rows_removed, table.files_added, table.files_removed) == (0, 0, 0, 0)
    check_release(world, LUMEN)


# --- global changes --------------------------------------------------------------------------------

V2024_11_RULES = """\
      - region: "*"
        categories: [posts, likes, reposts, profile]
        mechanism: opt_out
      - region: "*"
        categories: [bookmarks]
        mechanism: opt_in
      - region: EEA
        mechanism: excluded
"""


def with_version_excluding_us(effective_from: str) -> str:
    text = example_text("x-2024.yaml")
    assert text.rstrip().endswith("mechanism: excluded")
    return (
        text.rstrip()
        + f'\n  - id: "2026-06"\n    effective_from: {effective_from}\n    note: US carved out.\n    rules:\n'
        + V2024_11_RULES
        + "      - region: US\n        mechanism: excluded\n"
    )


def with_uk_rule_from(starts: str) -> str:
    text = example_text("x-2024.yaml")
    return text.rstrip() + f"\n      - region: UK\n        mechanism: excluded\n        from: {starts}\n"


def us_and_uk_users(ws: Workspace) -> tuple[set[int], set[int]]:
    users = ws.lake.read("users").to_pylist()
    return {u["user_id"] for u in users if u["country"] == "US"}, {
        u["user_id"] for u in users if u["country"] == "GB"
    }


def owners_in(ws: Workspace, agreement_id: str, category: str, user_ids: set[int]) -> int:
    """How many rows of the latest pinned table belong to `user_ids` (by recomputed user_key)."""
    secret = secret_for(ws, agreement_id)
    keys = {hmac.new(secret, f"user:{u}".encode(), hashlib.sha256).hexdigest()[:32] for u in user_ids}
    contents = pinned_contents(ws, latest(ws, agreement_id))[category]
    return sum(n for r, n in contents.items() if dict(r)["user_key"] in keys)


def test_a_new_policy_revision_forces_a_full_build(world: Workspace) -> None:
    for agreement_id in (LUMEN, SENTIMETRICS):
        build_release(world, agreement_id, at=T0)
    us, _uk = us_and_uk_users(world)
    assert owners_in(world, LUMEN, "posts", us) > 0
    apply_policy(world, with_version_excluding_us("2026-06-10"))
    at = datetime(2026, 6, 15, tzinfo=UTC)
    for agreement_id in (LUMEN, SENTIMETRICS):
        result = build_release(world, agreement_id, at=at)
        assert result.full_reason == "a new policy revision was applied"
        assert result.release.full_build and result.release.policy_version == "2026-06"
        check_release(world, agreement_id)
    assert owners_in(world, LUMEN, "posts", us) == 0
    # Sentimetrics licenses US data only: nothing is left, and the deletions are in the tables.
    assert all(t.rows_total == 0 for t in data_tables(latest(world, SENTIMETRICS)))


def test_building_as_of_an_earlier_time_is_a_full_build(world: Workspace) -> None:
    earlier = T0 - timedelta(days=1)
    build_release(world, LUMEN, at=earlier)
    posts = latest_contents_of(world, LUMEN)["posts"]
    author_key = Counter(dict(r)["user_key"] for r in posts).most_common(1)[0][0]
    secret = secret_for(world, LUMEN)
    author = next(
        u
        for u in world.lake.read("users").column("user_id").to_pylist()
        if hkey(secret, f"user:{u}") == author_key
    )
    world.ledger.record(author, category_key("posts"), False, at=T0 - timedelta(hours=6))
    result = build_release(world, LUMEN, at=T0)
    assert result.full_reason is None
    check_release(world, LUMEN)
    assert owners_in(world, LUMEN, "posts", {author}) == 0
    result = build_release(world, LUMEN, at=earlier)
    assert result.full_reason is not None and result.full_reason.startswith("building as of"), (
        result.full_reason
    )
    check_release(world, LUMEN)
    assert owners_in(world, LUMEN, "posts", {author}) > 0  # their opt-out was not yet in effect


def latest_contents_of(ws: Workspace, agreement_id: str) -> dict[str, Counter[Row]]:
    return pinned_contents(ws, latest(ws, agreement_id))


@pytest.mark.parametrize(
    ("policy_text", "excluded", "reason"),
    [
        pytest.param(
            with_uk_rule_from("2026-06-10"), "GB", "a policy version or rule boundary passed", id="rule"
        ),
        pytest.param(
            with_version_excluding_us("2026-06-10"),
            "US",
            "a policy version or rule boundary passed",
            id="version",
        ),
    ],
)
def test_a_boundary_passing_between_builds_forces_a_full_build(
    world: Workspace, policy_text: str, excluded: str, reason: str
) -> None:
    apply_policy(world, policy_text)
    us, uk = us_and_uk_users(world)
    people = us if excluded == "US" else uk
    first = build_release(world, LUMEN, at=datetime(2026, 6, 5, tzinfo=UTC))
    assert first.full_reason == "first release of this agreement"
    check_release(world, LUMEN)
    assert owners_in(world, LUMEN, "posts", people) > 0
    # Same policy revision, nothing else changed: only the boundary on 2026-06-10 lies in between.
    result = build_release(world, LUMEN, at=datetime(2026, 6, 15, tzinfo=UTC))
    assert result.full_reason is not None and result.full_reason.startswith(reason), result.full_reason
    assert "2026-06-10" in result.full_reason
    check_release(world, LUMEN)
    assert owners_in(world, LUMEN, "posts", people) == 0


def test_a_missing_table_forces_a_full_build(world: Workspace) -> None:
    build_release(world, LUMEN, at=T0)
    shutil.rmtree(share_table(world, LUMEN, "reposts"))
    result = build_release(world, LUMEN, at=T0 + timedelta(hours=1))
    assert result.full_reason == "a table of the share does not exist yet"
    release = check_release(world, LUMEN)
    reposts = release.table("reposts")
    assert reposts is not None and reposts.table_version == 0 and reposts.rows_total > 0


def test_coming_of_age_between_two_builds_is_seen_by_the_incremental_one(
    world: Workspace, tmp_path: Path
) -> None:
    """Nothing about the person changes in the lake or the ledger between the two builds: only time
    passes their 18th birthday, and the incremental build must notice."""
    build_release(world, LUMEN, at=T0)
    posts = latest_contents_of(world, LUMEN)["posts"]
    author_key = Counter(dict(r)["user_key"] for r in posts).most_common(1)[0][0]
    secret = secret_for(world, LUMEN)
    platform = Platform.read(world, tmp_path / "input")
    author = next(u for u in platform.user_ids() if hkey(secret, f"user:{u}") == author_key)
    platform.update("users", (author,), birth_date=birth_date_turning_18(T0 + timedelta(days=1)))
    platform.flush()

    result = build_release(world, LUMEN, at=T0 + timedelta(hours=1))
    assert result.full_reason is None
    check_release(world, LUMEN)
    assert owners_in(world, LUMEN, "posts", {author}) == 0  # a minor for one more day

    result = build_release(world, LUMEN, at=T0 + timedelta(days=2))
    assert result.full_reason is None
    check_release(world, LUMEN)
    assert owners_in(world, LUMEN, "posts", {author}) > 0
