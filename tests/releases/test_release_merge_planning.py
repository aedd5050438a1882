"""Both ways a release merge is planned must leave exactly the oracle's rows.

A merge whose source (the diff) has at most `PRUNED_MERGE_MAX_ROWS` rows is planned from the source's
statistics: delta-rs then reads only the files of the buckets the source names. Larger sources are
streamed and every file is read. The test worlds are small, so every other test exercises the pruned
planner; these run the same histories with the streamed one forced, and the pruned one forced, and
compare with the oracle after every build (a wrong pruning would keep a stale row or duplicate one).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from release_oracle import check_release, pinned_contents
from release_world import AGREEMENTS, LUMEN, T0
from test_release_lake_updates import test_a_post_moved_to_another_author_leaves_no_stale_row as moved_post
from test_release_sequence import SEEDED, run_sequence

from datalease.policy.vocabulary import MASTER_KEY
from datalease.releases import delta
from datalease.releases.build import build_release
from datalease.store.releases import latest_release
from datalease.workspace import Workspace

PLANNERS = {"streamed": -1, "pruned": 10**12}


@pytest.mark.parametrize("planner", sorted(PLANNERS))
def test_seeded_history_matches_the_oracle_with_either_merge_planner(
    world: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planner: str
) -> None:
    monkeypatch.setattr(delta, "PRUNED_MERGE_MAX_ROWS", PLANNERS[planner])
    run_sequence(world, tmp_path, SEEDED["each-kind-each-time"])


@pytest.mark.parametrize("planner", sorted(PLANNERS))
def test_a_row_moving_bucket_with_either_merge_planner(
    world: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planner: str
) -> None:
    """The source names two buckets (delete from the old, insert into the new): both must be read."""
    monkeypatch.setattr(delta, "PRUNED_MERGE_MAX_ROWS", PLANNERS[planner])
    moved_post(world, tmp_path, full=False)


def test_opt_outs_with_the_pruned_planner_remove_rows_and_add_none(
    world: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An opt-out of someone with rows in every table: the pruned merge removes exactly their rows."""
    monkeypatch.setattr(delta, "PRUNED_MERGE_MAX_ROWS", 10**12)
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
        assert rows <= before[category], f"{category}: an opt-out added rows"
