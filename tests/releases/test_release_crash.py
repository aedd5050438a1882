"""A release build killed with SIGKILL at every crash point, in a real `datalease` process.

Whatever moment the build dies at, the previous release stays the latest ledger row, the table
versions it pins still read exactly what they read before, no ledger row points at nothing, and
running the build again completes it correctly (checked against the oracle).
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from release_oracle import Row, check_release, hkey, pinned_contents, secret_for, share_table
from release_world import LUMEN, T0, Platform, run_cli
from sqlalchemy import text

from datalease.policy.vocabulary import MASTER_KEY, category_key
from datalease.releases import delta
from datalease.releases.model import Release
from datalease.revocation.worker import process_pending
from datalease.services.releases import build_release
from datalease.store.releases import latest_release, list_releases
from datalease.workspace import Workspace

# Run again with the homes on PostgreSQL (make test, README "Tests").
pytestmark = pytest.mark.postgresql_homes

# after_ledger_head: the ledger_head row is committed to Delta, its release row's transaction is not.
CRASH_POINTS = (
    "after_table:posts",
    "after_table:reposts",
    "before_ledger",
    "after_ledger_head",
    "after_ledger",
)


def latest(ws: Workspace) -> Release:
    with ws.session() as session:
        release = latest_release(session, LUMEN)
    assert release is not None
    return release


def heavy_users(ws: Workspace, contents: dict[str, Counter[Row]], count: int) -> list[int]:
    """Users with rows in both lumen tables, most rows first."""
    secret = secret_for(ws, LUMEN)
    by_key = {hkey(secret, f"user:{u}"): u for u in ws.lake.read("users").column("user_id").to_pylist()}
    posts = Counter(dict(r)["user_key"] for r in contents["posts"])
    reposts = Counter(dict(r)["user_key"] for r in contents["reposts"])
    both = sorted((k for k in posts if k in reposts), key=lambda k: -(posts[k] + reposts[k]))
    return [by_key[k] for k in both[:count]]


def change_things(ws: Workspace, scratch: Path, contents: dict[str, Counter[Row]]) -> None:
    """Opt-outs that hit both tables, a deleted post, a new post and its repost: every table changes."""
    users = heavy_users(ws, contents, 3)
    ws.ledger.record(users[0], MASTER_KEY, False, at=T0 + timedelta(hours=1))
    ws.ledger.record(users[1], category_key("posts"), False, at=T0 + timedelta(hours=2))
    platform = Platform.read(ws, scratch)
    secret = secret_for(ws, LUMEN)
    released = [
        p
        for p in platform.post_ids()
        if hkey(secret, f"post:{p}") in {dict(r)["post_key"] for r in contents["posts"]}
    ]
    platform.update("posts", (released[len(released) // 2],), deleted_at=T0 + timedelta(hours=3))
    new_id = max(platform.post_ids()) + 1
    post = {
        "post_id": new_id,
        "author_id": users[2],
        "text": "a brand new post, mail me at new.post@example.com",
        "lang": "en",
        "created_at": T0 + timedelta(hours=4),
        "visibility": "public",
        "deleted_at": None,
    }
    platform.insert("posts", (new_id,), post)
    repost = {
        "user_id": users[2],
        "post_id": new_id,
        "created_at": T0 + timedelta(hours=5),
        "deleted_at": None,
    }
    platform.insert("reposts", (users[2], new_id), repost)
    platform.flush()


def ledger_integrity(ws: Workspace) -> tuple[int, int]:
    """(release rows, release_tables rows pointing at no release) — the latter must be 0."""
    with ws.engine.connect() as connection:
        releases = connection.execute(text("SELECT COUNT(*) FROM releases")).scalar_one()
        orphans = connection.execute(
            text(
                "SELECT COUNT(*) FROM release_tables WHERE release_id NOT IN (SELECT release_id FROM releases)"
            )
        ).scalar_one()
    return int(releases), int(orphans)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_killed_build_leaves_the_previous_release_and_a_rerun_completes_it(
    world: Workspace, tmp_path: Path, point: str
) -> None:
    home = world.settings.resolved_home
    build_release(world, LUMEN, at=T0)
    previous = latest(world)
    before = pinned_contents(world, previous)
    card_before = (home / "shares" / LUMEN / "README.md").read_text()
    change_things(world, tmp_path / "input", before)
    at = T0 + timedelta(days=1)
    # The opt-outs among the changes are revocations: delivered first (a build would do it as it starts).
    process_pending(world, now=at)
    previous = latest(world)
    before = pinned_contents(world, previous)
    count_before, _ = ledger_integrity(world)

    killed = run_cli(home, "release", "build", LUMEN, "--at", at.isoformat(), crashpoint=point)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stdout, killed.stderr)

    count, orphans = ledger_integrity(world)
    assert orphans == 0
    now_latest = latest(world)
    versions = {
        t.category: delta.table_version(share_table(world, LUMEN, t.category))
        for t in previous.tables
        if t.category != "forget"  # written by revocations only, never by a build
    }
    if point == "after_ledger":
        # The ledger row committed before the kill: it is the release, and it is complete.
        assert count == count_before + 1 and now_latest.release_id == previous.release_id + 1
        assert now_latest.as_of == at
        assert {t.category: t.table_version for t in now_latest.tables} == versions
        check_release(world, LUMEN)
    else:
        assert count == count_before and now_latest == previous
        written = {
            "after_table:posts": {"posts"},
            "after_ledger_head": {"posts", "reposts", "ledger_head"},
        }.get(point, {"posts", "reposts"})
        for table in previous.tables:
            if table.category == "forget":
                continue
            expected = table.table_version + (1 if table.category in written else 0)
            assert versions[table.category] == expected, (table.category, versions)
        # The card is written after the ledger row only.
        assert (home / "shares" / LUMEN / "README.md").read_text() == card_before
    # Whatever the dead build committed, the pinned versions of the previous release read as before.
    assert pinned_contents(world, previous) == before

    rerun = run_cli(home, "release", "build", LUMEN, "--at", at.isoformat())
    assert rerun.returncode == 0, rerun.stderr
    release = check_release(world, LUMEN)
    assert release.as_of == at
    assert ledger_integrity(world) == (count + 1, 0)
    card = (home / "shares" / LUMEN / "README.md").read_text()
    assert f"release: {release.release_id}\n" in card
    # And the next release, built in this process, is still right.
    world.ledger.record(heavy_users(world, pinned_contents(world, release), 1)[0], MASTER_KEY, False, at=at)
    result = build_release(world, LUMEN, at=at + timedelta(hours=1))
    assert result.full_reason is None
    check_release(world, LUMEN)


def test_a_rerun_as_of_an_earlier_time_than_the_killed_build_is_still_right(world: Workspace) -> None:
    """A person who opted out, with an opt-back-in scheduled for T0+2d: the killed build ran at
    T0+3d and committed their posts to the table (not pinned by any release); the operator then
    builds the release as of T0+1d, when the opt-out still holds. Their posts must not be in it: the
    next build cannot trust the tables to hold the previous release, only the ledger says what they
    held."""
    home = world.settings.resolved_home
    build_release(world, LUMEN, at=T0)
    users = heavy_users(world, pinned_contents(world, latest(world)), 1)
    world.ledger.record(users[0], category_key("posts"), False, at=T0 - timedelta(days=10))
    world.ledger.record(users[0], category_key("posts"), True, at=T0 + timedelta(days=2))
    build_release(world, LUMEN, at=T0 + timedelta(hours=1))
    check_release(world, LUMEN)

    killed = run_cli(
        home,
        "release",
        "build",
        LUMEN,
        "--at",
        (T0 + timedelta(days=3)).isoformat(),
        crashpoint="after_table:posts",
    )
    assert killed.returncode == -signal.SIGKILL
    with world.session() as session:
        assert sum(r.kind == "build" for r in list_releases(session, LUMEN)) == 2

    build_release(world, LUMEN, at=T0 + timedelta(days=1))
    check_release(world, LUMEN)
