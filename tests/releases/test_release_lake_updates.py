"""Releases after the platform rewrites rows it already sent to the lake.

New posts, deleting a post, suspending an account or moving it to another country reach the lake
as a second write to a table (`ingest_file` merges on the primary key, delta-rs rewrites files); an
erasure removes a user row. The next release, incremental or full, must see exactly that.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from release_oracle import check_release, hkey, pinned_contents, secret_for
from release_world import AGREEMENTS, LUMEN, T0, Platform

from datalease.services.releases import build_release
from datalease.store.releases import latest_release
from datalease.workspace import Workspace


def suspend_account(platform: Platform) -> None:
    platform.update("users", (platform.user_ids()[0],), account_state="suspended")


def move_country(platform: Platform) -> None:
    platform.update("users", (platform.user_ids()[1],), country="DE")


def add_posts(platform: Platform) -> None:
    """A second batch of posts (the first one created the table): one public, one for followers."""
    first = max(platform.post_ids()) + 1
    for offset, visibility in enumerate(("public", "followers")):
        author = platform.post(platform.post_ids()[offset])["author_id"]
        row = {
            "post_id": first + offset,
            "author_id": author,
            "text": f"fresh post number {offset}",
            "lang": "en",
            "created_at": T0 + timedelta(hours=1),
            "visibility": visibility,
            "deleted_at": None,
        }
        platform.insert("posts", (first + offset,), row)


def delete_post(platform: Platform) -> None:
    post: dict[str, Any] = platform.post(platform.post_ids()[10])
    platform.update("posts", (post["post_id"],), deleted_at=T0 + timedelta(hours=1))


@pytest.mark.parametrize(
    "change", [suspend_account, move_country, add_posts, delete_post], ids=lambda f: f.__name__
)
@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_a_release_after_lake_rows_were_updated(
    world: Workspace, tmp_path: Path, change: Any, full: bool
) -> None:
    for agreement_id in AGREEMENTS:
        build_release(world, agreement_id, at=T0)
    platform = Platform.read(world, tmp_path / "input")
    change(platform)
    platform.flush()
    for agreement_id in AGREEMENTS:
        build_release(world, agreement_id, at=T0 + timedelta(hours=2), full=full)
        check_release(world, agreement_id)


def erase_account(ws: Workspace, platform: Platform) -> int:
    """The heaviest author's user row removed from the lake (an erasure), their posts left dangling."""
    authors: list[int] = [p["author_id"] for p in platform.rows["posts"].values()]
    user_id = max(set(authors), key=authors.count)
    ws.lake.delete_keys("users", pa.table({"user_id": pa.array([user_id], pa.int64())}))
    return user_id


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_a_release_after_a_user_row_was_erased_from_the_lake(
    world: Workspace, tmp_path: Path, full: bool
) -> None:
    for agreement_id in AGREEMENTS:
        build_release(world, agreement_id, at=T0)
    user_id = erase_account(world, Platform.read(world, tmp_path / "input"))
    for agreement_id in AGREEMENTS:
        result = build_release(world, agreement_id, at=T0 + timedelta(hours=2), full=full)
        assert (result.full_reason is None) is not full
        check_release(world, agreement_id)
    key = hkey(secret_for(world, LUMEN), f"user:{user_id}")
    with world.session() as session:
        release = latest_release(session, LUMEN)
    assert release is not None
    assert not any(dict(r)["user_key"] == key for r in pinned_contents(world, release)["posts"])


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_a_post_moved_to_another_author_leaves_no_stale_row(
    world: Workspace, tmp_path: Path, full: bool
) -> None:
    """A post re-attributed (author_id corrected) to someone whose key starts with another hex digit
    moves bucket: the row with the old author's key must leave the old bucket, also in a full build."""
    build_release(world, LUMEN, at=T0)
    secret = secret_for(world, LUMEN)
    with world.session() as session:
        release = latest_release(session, LUMEN)
    assert release is not None
    released = {dict(r)["post_key"]: dict(r) for r in pinned_contents(world, release)["posts"]}
    platform = Platform.read(world, tmp_path / "input")
    by_key = {hkey(secret, f"user:{u}"): u for u in platform.user_ids()}
    post_id = next(p for p in platform.post_ids() if hkey(secret, f"post:{p}") in released)
    old_key = released[hkey(secret, f"post:{post_id}")]["user_key"]
    new_key = next(r["user_key"] for r in released.values() if r["user_key"][0] != old_key[0])
    platform.update("posts", (post_id,), author_id=by_key[new_key])
    platform.flush()
    build_release(world, LUMEN, at=T0 + timedelta(hours=1), full=full)
    check_release(world, LUMEN)
