"""Change-feed files as partners receive them: revoked content never leaves, only keys do.

For each table version the server materialises one change file from the table's Change Data Feed,
redacted against the table's *current* state:

- `delete` and `update_preimage` rows keep their key columns and nothing else (the text of a revoked
  post must not travel even inside the instruction to delete it);
- an `insert` / `update_postimage` row whose identity a later visible version removed is dropped, so
  replaying the feed from any version never hands out rows that have been revoked since.

The redaction depends on the latest commit that removed rows (the table's *epoch*), so files live
under `e<epoch>/`; when a new removal moves the epoch, older directories are deleted and their
signed URLs stop resolving. Removed identities per version are cached under `removed/`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from datalease.sharing.tables import SharedTable

CHANGE_TYPE: Final = "_change_type"
REMOVED_TYPES: Final = ("delete", "update_preimage")
_DELTA_TO_ARROW: Final[dict[str, pa.DataType]] = {
    "string": pa.string(),
    "long": pa.int64(),
    "integer": pa.int32(),
    "short": pa.int16(),
    "byte": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "timestamp_ntz": pa.timestamp("us"),
    "binary": pa.binary(),
}


class PurgedVersionError(RuntimeError):
    """The files of a version were purged after the retention window."""

    def __init__(self, version: int) -> None:
        super().__init__(f"version {version}'s files were purged after the agreement's retention window")
        self.version = version


@dataclass(frozen=True)
class ChangeFile:
    name: str  # relative to the table's change cache, e.g. e4/v3.parquet
    path: Path
    version: int
    timestamp: int
    size: int
    rows: int


def arrow_schema(fields: list[dict[str, Any]]) -> pa.Schema:
    return pa.schema([pa.field(f["name"], _DELTA_TO_ARROW[f["type"]]) for f in fields])


def _cdf(table: SharedTable, version: int, columns: list[str], schema: pa.Schema) -> pa.RecordBatchReader:
    """The version's change rows (`columns` + _change_type), cast to plain Arrow types."""
    _require_files(table, version)
    stream = DeltaTable(str(table.path)).load_cdf(starting_version=version, ending_version=version)
    reader = pa.RecordBatchReader.from_stream(stream)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            yield pa.RecordBatch.from_arrays(
                [batch.column(name).cast(schema.field(name).type) for name in columns], schema=schema
            )

    return pa.RecordBatchReader.from_batches(schema, batches())


def _require_files(table: SharedTable, version: int) -> None:
    """The files the version's change feed is read from (its change-data files, else the files it
    added and removed) must still exist; the purge deletes them after the retention window."""
    commit = table.log.commit(version)
    needed = (
        [c.path for c in commit.cdcs] if commit.cdcs else [a.path for a in commit.adds] + list(commit.removes)
    )
    if any(not (table.path / unquote(p)).is_file() for p in needed):
        raise PurgedVersionError(version)


def _write_atomically(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        con.execute(f"COPY ({query}) TO '{temporary}' (FORMAT parquet, COMPRESSION zstd)")
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def removed_identities(table: SharedTable, version: int, cache: Path) -> Path:
    """A Parquet file of the identities version `version` removed (cached: commits never change)."""
    target = cache / "removed" / f"v{version}.parquet"
    if target.exists():
        return target
    fields = [f for f in table.fields(version) if f["name"] in table.identity]
    columns = [f["name"] for f in fields] + [CHANGE_TYPE]
    schema = arrow_schema(fields).append(pa.field(CHANGE_TYPE, pa.string()))
    con = duckdb.connect()
    try:
        con.register("cdf", _cdf(table, version, columns, schema))
        keys = ", ".join(_quote(c) for c in table.identity)
        removed = ", ".join(f"'{t}'" for t in REMOVED_TYPES)
        _write_atomically(con, f"SELECT DISTINCT {keys} FROM cdf WHERE {CHANGE_TYPE} IN ({removed})", target)
    finally:
        con.close()
    return target


def change_file(table: SharedTable, version: int, epoch: int, cache: Path) -> ChangeFile | None:
    """The redacted change file of `version` (None when the version changed no rows)."""
    commit = table.log.commit(version)
    if not (commit.adds or commit.removes or commit.cdcs):
        return None
    name = f"e{epoch}/v{version}.parquet"
    target = cache / name
    if not target.exists():
        _materialise(table, version, epoch, cache, target)
    rows = pq.ParquetFile(target).metadata.num_rows
    if rows == 0:
        return None
    return ChangeFile(name, target, version, commit.timestamp, target.stat().st_size, rows)


def _materialise(table: SharedTable, version: int, epoch: int, cache: Path, target: Path) -> None:
    fields = table.fields(table.latest)
    columns = [f["name"] for f in fields] + [CHANGE_TYPE]
    schema = arrow_schema(fields).append(pa.field(CHANGE_TYPE, pa.string()))
    keys = set(table.key_columns(table.latest))
    removed_types = ", ".join(f"'{t}'" for t in REMOVED_TYPES)
    is_removal = f"{CHANGE_TYPE} IN ({removed_types})"
    projection = ", ".join(
        _quote(c)
        if c in keys or c == CHANGE_TYPE
        else f"CASE WHEN {is_removal} THEN NULL ELSE {_quote(c)} END AS {_quote(c)}"
        for c in columns
    )
    later = [
        removed_identities(table, v, cache)
        for v in range(version + 1, epoch + 1)
        if table.log.commit(v).removes_rows
    ]
    con = duckdb.connect()
    try:
        con.register("cdf", _cdf(table, version, columns, schema))
        where = ""
        if later:
            files = ", ".join(f"'{p}'" for p in later)
            match = " AND ".join(f"r.{_quote(c)} = cdf.{_quote(c)}" for c in table.identity)
            where = (
                f"WHERE {is_removal} OR NOT EXISTS (SELECT 1 FROM read_parquet([{files}]) AS r WHERE {match})"
            )
        _write_atomically(con, f"SELECT {projection} FROM cdf {where}", target)
    finally:
        con.close()


def drop_stale_epochs(cache: Path, epoch: int) -> None:
    """Delete change files redacted against an older epoch: they may hold rows revoked since."""
    if not cache.is_dir():
        return
    for child in cache.iterdir():
        if (
            child.is_dir()
            and child.name.startswith("e")
            and child.name[1:].isdigit()
            and int(child.name[1:]) < epoch
        ):
            shutil.rmtree(child, ignore_errors=True)
