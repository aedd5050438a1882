"""The source lake: table paths, one commit per upsert, merges on the primary key, deletes."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from datalease.platform.lake import Lake
from datalease.platform.schemas import ENGAGEMENT, USERS

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def users(*rows: tuple[int, str]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "user_id": i,
                "handle": h,
                "country": "DE",
                "birth_date": None,
                "account_state": "active",
                "created_at": T0,
            }
            for i, h in rows
        ],
        schema=USERS,
    )


def test_paths_and_unknown_names(lake: Lake) -> None:
    assert lake.path("likes") == lake.root / "source" / "likes"
    assert lake.path("posts_curated") == lake.root / "curated" / "posts"
    with pytest.raises(ValueError, match="unknown lake table 'dms': expected one of users, posts, likes"):
        lake.path("dms")


def test_absent_table_reads_empty_with_its_schema(lake: Lake) -> None:
    assert not lake.exists("users")
    assert lake.version("users") is None
    assert lake.read("users").schema == USERS
    assert lake.read("users").num_rows == 0
    assert lake.dataset("likes").schema == ENGAGEMENT
    assert lake.delete_keys("users", pa.table({"user_id": [1]})) is None


def test_upsert_creates_then_merges_in_one_commit_each(lake: Lake) -> None:
    assert lake.upsert("users", users((1, "a"), (2, "b"))) == 0
    assert lake.upsert("users", users((2, "b2"), (3, "c"))) == 1
    table = lake.read("users").sort_by("user_id")
    assert table.column("handle").to_pylist() == ["a", "b2", "c"]
    assert table.schema == USERS
    assert len(DeltaTable(str(lake.path("users"))).history()) == 2


def test_upsert_with_deletes_is_one_commit(lake: Lake) -> None:
    lake.upsert("users", users((1, "a"), (2, "b"), (3, "c")))
    version = lake.upsert("users", users((4, "d")), delete=pa.table({"user_id": [1, 3, 99]}))
    assert version == 1
    assert sorted(lake.read("users").column("user_id").to_pylist()) == [2, 4]
    assert lake.delete_keys("users", pa.table({"user_id": [2]})) == 2
    assert lake.read("users").column("user_id").to_pylist() == [4]


def test_engagement_merges_on_the_composite_key(lake: Lake) -> None:
    def likes(*rows: tuple[int, int, datetime | None]) -> pa.Table:
        return pa.Table.from_pylist(
            [{"user_id": u, "post_id": p, "created_at": T0, "deleted_at": d} for u, p, d in rows],
            schema=ENGAGEMENT,
        )

    lake.upsert("likes", likes((1, 10, None), (1, 11, None), (2, 10, None)))
    lake.upsert("likes", likes((1, 10, T0)))
    table = lake.read("likes").sort_by([("user_id", "ascending"), ("post_id", "ascending")])
    assert table.column("deleted_at").to_pylist() == [T0, None, None]


def test_repeated_keys_in_one_batch_are_refused(lake: Lake) -> None:
    with pytest.raises(ValueError, match="1 row\\(s\\) repeat a primary key"):
        lake.upsert("users", users((1, "a"), (1, "b")))
    lake.upsert("users", users((1, "a")))
    with pytest.raises(ValueError, match="repeat a primary key"):
        lake.upsert("users", users((1, "a")), delete=pa.table({"user_id": [1]}))
    assert lake.version("users") == 0


def test_tables_keep_deletion_vectors_off_and_record_changes(lake: Lake) -> None:
    lake.upsert("users", users((1, "a"), (2, "b")))
    lake.upsert("users", users((2, "b2")), delete=pa.table({"user_id": [1]}))
    table = DeltaTable(str(lake.path("users")))
    assert table.protocol().min_reader_version == 1
    assert table.metadata().configuration["delta.enableDeletionVectors"] == "false"
    changes = pa.table(table.load_cdf(starting_version=1, columns=["user_id", "_change_type"]))
    assert sorted(zip(*changes.to_pydict().values(), strict=True)) == [
        (1, "delete"),
        (2, "update_postimage"),
        (2, "update_preimage"),
    ]


def test_duckdb_scans_the_dataset(lake: Lake) -> None:
    lake.upsert("users", users((1, "a"), (2, "b")))
    con = duckdb.connect()
    con.register("users", lake.dataset("users"))
    assert con.sql("SELECT max(user_id), count(*) FROM users").fetchall() == [(2, 2)]


def test_version_from_the_log_agrees_with_delta_lake_through_checkpoints_and_clean_up(lake: Lake) -> None:
    for i in range(12):
        lake.upsert("users", users((i, f"h{i}")))
        assert lake.version("users") == DeltaTable(str(lake.path("users"))).version() == i
    table = DeltaTable(str(lake.path("users")))
    table.create_checkpoint()
    table.cleanup_metadata()  # removes expired commit files (none as young as these; the newest stays)
    (lake.path("users") / "_delta_log" / "_commit_0123.json.tmp").write_text("{}")  # a commit being written
    assert lake.version("users") == 11
    lake.upsert("users", users((99, "z")))
    assert lake.version("users") == DeltaTable(str(lake.path("users"))).version() == 12
