"""Posts deleted after T are released as docs/policy.md says (issue 11, item 0d).

"A record deleted after T was still live at T": curation once skipped every post with any
`deleted_at`, so a post deleted after the release instant (or in the future, or under a policy with
`deleted_content: false`) was never curated and never released although `decide` allowed it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable
from release_oracle import check_release, hkey, secret_for
from release_world import LUMEN, T0, Platform, apply_policy, example_text

from datalease.services.releases import build_release
from datalease.workspace import Workspace


def _released_post_ids(ws: Workspace, agreement: str) -> set[str]:
    return set(DeltaTable(str(ws.table_dir(agreement, "posts"))).to_pyarrow_table()["post_key"].to_pylist())


def _a_released_post(ws: Workspace, platform: Platform) -> int:
    keys = _released_post_ids(ws, LUMEN)
    secret = secret_for(ws, LUMEN)
    return next(p for p in platform.post_ids() if hkey(secret, f"post:{p}") in keys)


@pytest.mark.parametrize("when", ["after T", "in the future"])
def test_a_post_deleted_after_the_release_instant_is_released(
    world: Workspace, tmp_path: Path, when: str
) -> None:
    build_release(world, LUMEN, at=T0)
    platform = Platform.read(world, tmp_path / "scratch")
    post = _a_released_post(world, platform)
    deleted_at = T0 + (timedelta(days=2) if when == "after T" else timedelta(days=3650))
    platform.update("posts", (post,), deleted_at=deleted_at)
    platform.flush()
    at = T0 + timedelta(days=1)
    build_release(world, LUMEN, at=at, full=True)
    check_release(world, LUMEN)
    assert hkey(secret_for(world, LUMEN), f"post:{post}") in _released_post_ids(world, LUMEN)


def test_deleted_content_is_released_under_a_policy_that_allows_it(world: Workspace, tmp_path: Path) -> None:
    policy = example_text("x-2024.yaml").replace("deleted_content: true", "deleted_content: false")
    assert "deleted_content: false" in policy
    apply_policy(world, policy)
    platform = Platform.read(world, tmp_path / "scratch")
    build_release(world, LUMEN, at=T0)
    post = _a_released_post(world, platform)
    platform.update("posts", (post,), deleted_at=T0 - timedelta(days=30))
    platform.flush()
    build_release(world, LUMEN, at=T0 + timedelta(hours=1))
    check_release(world, LUMEN)
    assert hkey(secret_for(world, LUMEN), f"post:{post}") in _released_post_ids(world, LUMEN)
