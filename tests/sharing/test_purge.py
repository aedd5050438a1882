"""Physical purge after the retention window: dead files and old change data go, live files stay,
and the Delta log is not touched (a vacuum commit would look like a build that died)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from datalease.sharing.purge import purge_table

CONFIG = {"delta.enableChangeDataFeed": "true", "delta.enableDeletionVectors": "false"}


def _table(path: Path) -> DeltaTable:
    rows = pa.table(
        {"user_key": ["a", "b", "c", "d"], "text": ["t1", "t2", "t3", "t4"], "bucket": ["0", "0", "1", "1"]}
    )
    write_deltalake(str(path), rows, partition_by=["bucket"], configuration=CONFIG)
    table = DeltaTable(str(path))
    table.delete("user_key = 'a'")
    return DeltaTable(str(path))


def _parquet(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*.parquet")}


def test_nothing_is_purged_inside_the_window(tmp_path: Path) -> None:
    path = tmp_path / "posts"
    _table(path)
    before = _parquet(path)
    result = purge_table(path, tmp_path / "cache", retention=timedelta(days=7), now=datetime.now(UTC))
    assert result.files == 0 and _parquet(path) == before


def test_dead_files_and_old_change_data_go_and_the_log_stays(tmp_path: Path) -> None:
    path = tmp_path / "posts"
    table = _table(path)
    live = {str(Path(p)) for p in table.file_uris()}
    live_relative = {str(Path(p).relative_to(path)) for p in live}
    stale = tmp_path / "cache" / "e1"
    stale.mkdir(parents=True)
    (stale / "v0.parquet").write_bytes(b"x")
    log_before = sorted(p.name for p in (path / "_delta_log").iterdir())
    result = purge_table(
        path, tmp_path / "cache", retention=timedelta(days=7), now=datetime.now(UTC) + timedelta(days=8)
    )
    remaining = _parquet(path)
    assert remaining == live_relative
    assert result.files >= 2  # the rewritten bucket-0 file and the delete's change data
    assert not any(p.startswith("_change_data") for p in remaining)
    assert sorted(p.name for p in (path / "_delta_log").iterdir()) == log_before
    assert not stale.exists()
    keys = [
        k
        for uri in DeltaTable(str(path)).file_uris()
        for k in pq.read_table(uri).column("user_key").to_pylist()
    ]
    assert sorted(keys) == ["b", "c", "d"]
