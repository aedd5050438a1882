"""The release writer: copy-on-write at file level, only the buckets a change names, plain types.

Every table commit is written by the engine (DuckDB) and committed with deltalake's transactions
(`releases/delta.py`): the files holding a changed row are rewritten, the others keep their paths,
and every file carries the plain Arrow types partners' readers expect (never `string_view`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
from deltalake import DeltaTable
from release_oracle import check_release, pinned_contents
from release_world import AGREEMENTS, LUMEN, SENTIMETRICS, T0
from test_release_lake_updates import test_a_post_moved_to_another_author_leaves_no_stale_row as moved_post
from test_release_sequence import SEEDED, run_sequence

from datalease.policy.vocabulary import MASTER_KEY
from datalease.releases import delta
from datalease.releases.keys import agreement_secret, user_key
from datalease.releases.support_tables import is_licensed_data
from datalease.services.releases import build_release
from datalease.store.releases import latest_release
from datalease.workspace import Workspace


def test_seeded_history_matches_the_oracle(world: Workspace, tmp_path: Path) -> None:
    run_sequence(world, tmp_path, SEEDED["each-kind-each-time"])


def test_a_row_moving_bucket(world: Workspace, tmp_path: Path) -> None:
    """The change names two buckets (delete from the old, insert into the new): both are rewritten."""
    moved_post(world, tmp_path, full=False)


def test_opt_outs_remove_rows_and_add_none(world: Workspace) -> None:
    """An opt-out of someone with rows in every table removes exactly their rows."""
    for agreement_id in AGREEMENTS:
        build_release(world, agreement_id, at=T0)
    with world.session() as session:
        first = latest_release(session, LUMEN)
    assert first is not None
    before = pinned_contents(world, first)
    for user_id in (3, 4, 5):
        world.ledger.record(user_id, MASTER_KEY, False, at=T0 + timedelta(minutes=user_id))
    for agreement_id in AGREEMENTS:
        result = build_release(world, agreement_id, at=T0 + timedelta(hours=1))
        assert not result.release.full_build
        check_release(world, agreement_id)
    with world.session() as session:
        second = latest_release(session, LUMEN)
    assert second is not None
    after = pinned_contents(world, second)
    for category, rows in after.items():
        if is_licensed_data(category):  # ledger_head gains the build's row
            assert rows <= before[category], f"{category}: an opt-out added rows"


def _owner_with_posts(world: Workspace, agreement_id: str) -> tuple[int, str]:
    """A user with released posts, and their bucket in the agreement's share."""
    secret = agreement_secret(world.master_key, agreement_id)
    posts = DeltaTable(str(world.table_dir(agreement_id, "posts"))).to_pyarrow_table()
    released = set(posts["user_key"].to_pylist())
    for user_id in world.lake.read("users")["user_id"].to_pylist():
        key = user_key(secret, user_id)
        if key in released:
            return user_id, key[0]
    raise AssertionError("no user with released posts")


def test_an_opt_out_rewrites_only_files_of_its_bucket_and_keeps_the_others(world: Workspace) -> None:
    build_release(world, SENTIMETRICS, at=T0)
    path = world.table_dir(SENTIMETRICS, "posts")
    before = {f.path: f.bucket for f in delta.table_files(path)}
    user_id, bucket = _owner_with_posts(world, SENTIMETRICS)
    world.ledger.record(user_id, MASTER_KEY, False, at=T0 + timedelta(minutes=1))
    build_release(world, SENTIMETRICS, at=T0 + timedelta(hours=1))
    after = {f.path: f.bucket for f in delta.table_files(path)}
    gone = set(before) - set(after)
    assert gone, "the opt-out rewrote nothing"
    assert {before[p] for p in gone} == {bucket}, "files of other buckets were rewritten"
    assert {after[p] for p in set(after) - set(before)} <= {bucket}
    assert {p for p, b in before.items() if b != bucket} <= set(after)


def test_every_file_has_plain_types(world: Workspace) -> None:
    """After full, incremental and updating builds, no data file has a view or large type."""
    build_release(world, LUMEN, at=T0)
    user_id, _ = _owner_with_posts(world, LUMEN)
    world.ledger.record(user_id, MASTER_KEY, False, at=T0 + timedelta(minutes=1))
    build_release(world, LUMEN, at=T0 + timedelta(hours=1))
    world.ledger.record(user_id, MASTER_KEY, True, at=T0 + timedelta(hours=2))
    build_release(world, LUMEN, at=T0 + timedelta(hours=3))
    files = list(world.share_dir(LUMEN).rglob("*.parquet"))
    assert files
    for file in files:
        for field in pq.read_schema(file):
            text = str(field.type)
            assert "view" not in text and "large" not in text, (file, field)
