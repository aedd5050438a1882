"""Release tables as Delta: Parquet files the engine writes, committed with deltalake's transactions.

A table changes only through `create` (the first release) and `rewrite` (one commit carrying a
release's upserts and deletes). Both are copy-on-write at file level: the engine writes the new files
into a staging directory inside the table (DuckDB's `COPY … PARTITION_BY`; Spark writes the same
layout), this module moves them into place, reads their statistics from the Parquet footers and
commits `add`/`remove` actions in one Delta commit (`create_table_with_add_actions`,
`create_write_transaction`). The engine, not delta-rs, writes every data file, so the column types are
the plain Arrow types partners' readers expect (delta-rs merges write `string_view`, which the official
client's pandas path cannot convert).

No change-data files are written: the sharing server derives each released version's changes from the
files that differ between two released versions (`sharing/changes.py`), which is exact whatever wrote
the commits in between.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Schema
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

TABLE_CONFIGURATION: Final = {
    "delta.enableDeletionVectors": "false",
    # Superseded files stay readable for time travel until the sharing layer's floor moves past them.
    "delta.logRetentionDuration": "interval 3650 days",
}
PARTITION: Final = "bucket"
OP: Final = "_op"
# Every commit says who made it (custom commit metadata): a release build or a revocation batch.
AGREEMENT_PROPERTY: Final = "datalease.agreement"
KIND_PROPERTY: Final = "datalease.kind"
STAGING: Final = "_staging"
# ZSTD rather than Snappy: an entropy coder stores hex keys in ~4 bits a character, which Snappy cannot,
# so files are ~45% smaller and a rewrite, being I/O and encoding, is faster too. Partners download less.
TARGET_FILE_SIZE: Final = "16MB"
# zstd level 1 rather than DuckDB's default 3: a 372k-row bucket of posts (13 MiB) is written in 0.17 s
# instead of 0.23 s, and no larger (12.3 vs 12.8 MiB) — a revocation rewrites one on every opt-out.
ZSTD_LEVEL: Final = 1
# Min/max statistics of longer strings (post texts) are left out: nothing prunes on them, and a
# truncated maximum would no longer bound the column.
MAX_STAT_CHARS: Final = 128
_UNKNOWN: Final = object()  # a row group without min/max: the file's bounds are unknown


@dataclass(frozen=True)
class CommitStats:
    version: int
    rows_added: int
    rows_removed: int
    files_added: int
    files_removed: int


@dataclass(frozen=True)
class TableFile:
    """One data file of a table's current version."""

    path: str  # relative to the table, as the log records it
    bucket: str | None
    size: int
    num_records: int


def table_version(path: Path) -> int | None:
    return int(DeltaTable(str(path)).version()) if DeltaTable.is_deltatable(str(path)) else None


def table_files(path: Path, version: int | None = None) -> list[TableFile]:
    actions = pa.table(DeltaTable(str(path), version=version).get_add_actions(flatten=True)).to_pylist()
    return [
        TableFile(
            a["path"],
            a.get(f"partition.{PARTITION}"),
            int(a["size_bytes"]),
            int(a.get("num_records") or 0),
        )
        for a in actions
    ]


def row_count(path: Path, version: int | None = None) -> int:
    return sum(f.num_records for f in table_files(path, version))


def commit_info(agreement_id: str, kind: str, **extra: str) -> dict[str, str]:
    return {
        AGREEMENT_PROPERTY: agreement_id,
        KIND_PROPERTY: kind,
        **{f"datalease.{k}": v for k, v in extra.items()},
    }


def commit_kinds(path: Path, *, after: int) -> list[str | None]:
    """The kind of every commit after version `after` (None: not made by datalease)."""
    history = DeltaTable(str(path)).history()
    return [h.get(KIND_PROPERTY) for h in history if int(h["version"]) > after]


def restore(path: Path, version: int) -> None:
    """Undo every commit after `version` (a RESTORE commit; the log keeps them)."""
    DeltaTable(str(path)).restore(version)


def create(
    path: Path, con: duckdb.DuckDBPyConnection, rows_sql: str, *, commit_info: Mapping[str, str]
) -> CommitStats:
    """Create the table from the rows of `rows_sql` (streamed by DuckDB into Parquet) in one commit."""
    schema = _arrow_schema(con, rows_sql)
    return create_from_staged(path, schema, _stage(path, con, rows_sql), commit_info=commit_info)


def new_staging(path: Path) -> Path:
    """A fresh directory inside the table for an engine to write a commit's files into (not created)."""
    return path / STAGING / uuid.uuid4().hex


def create_from_staged(
    path: Path, schema: pa.Schema, staged: Path, *, commit_info: Mapping[str, str]
) -> CommitStats:
    """Create the table in one commit from the Parquet files an engine wrote under `staged` (inside
    the table's staging directory, partitioned by bucket), with the table schema `schema`."""
    adds = _adopt(path, staged)
    create_table_with_add_actions(
        str(path),
        Schema.from_arrow(schema),
        adds,
        mode="error",
        partition_by=[PARTITION],
        configuration=TABLE_CONFIGURATION,
        commit_properties=_properties(commit_info),
    )
    _clear_staging(path)
    added = sum(_records(a) for a in adds)
    return CommitStats(int(DeltaTable(str(path)).version()), added, 0, len(adds), 0)


def rewrite(
    path: Path,
    con: duckdb.DuckDBPyConnection,
    changes: str,
    columns: Sequence[str],
    identity: Sequence[str],
    *,
    commit_info: Mapping[str, str],
) -> CommitStats:
    """Apply the DuckDB relation `changes` (the table's columns + `_op` = 'upsert' | 'delete') in one
    commit: every file holding a row that an upsert or delete matches (on the identity AND the bucket) is
    rewritten without it; upserted rows are written into the rewritten buckets. Files of buckets the
    changes do not name are neither read nor rewritten."""
    current = DeltaTable(str(path))
    version = int(current.version())
    con.execute(f"CREATE OR REPLACE TEMP TABLE __changes AS SELECT * FROM {changes}")
    touched = {r[0] for r in con.execute(f"SELECT DISTINCT {PARTITION} FROM __changes").fetchall()}
    if not touched:
        return CommitStats(version, 0, 0, 0, 0)
    candidates = [f for f in table_files(path) if f.bucket in touched]
    match = " AND ".join(f"e.{c} = c.{c}" for c in (*identity, PARTITION))
    select = ", ".join(columns)
    if candidates:
        listing = ", ".join(_literal(str(path / f.path)) for f in candidates)
        con.execute(
            "CREATE OR REPLACE TEMP VIEW __existing AS SELECT *, filename AS __file FROM read_parquet("
            f"[{listing}], filename = true, hive_partitioning = true, hive_types_autocast = false, "
            "union_by_name = true)"
        )
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW __existing AS SELECT {select}, '' AS __file FROM __changes WHERE FALSE"
        )
    # One pass over the candidate files finds the matched rows (a row's identity + bucket is unique
    # in the table, so a change matches at most one): the files to rewrite and the counts both come
    # from it, and the files are read once more only to copy what they keep.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __matches AS SELECT e.__file, c.{OP} FROM __existing AS e "
        f"JOIN __changes AS c ON {match}"
    )
    ((deleted, updated),) = con.execute(
        f"SELECT count(*) FILTER (WHERE {OP} = 'delete'), count(*) FILTER (WHERE {OP} = 'upsert') FROM __matches"
    ).fetchall()
    ((upserts,),) = con.execute(f"SELECT count(*) FROM __changes WHERE {OP} = 'upsert'").fetchall()
    con.execute("CREATE OR REPLACE TEMP TABLE __hits AS SELECT DISTINCT __file FROM __matches")
    hits = [r[0] for r in con.execute("SELECT __file FROM __hits").fetchall()]
    if not hits and not upserts:
        return CommitStats(version, 0, 0, 0, 0)
    kept = (
        f"SELECT {', '.join(f'e.{c}' for c in columns)} FROM __existing AS e "
        "WHERE e.__file IN (SELECT __file FROM __hits) "
        f"AND NOT EXISTS (SELECT 1 FROM __changes AS c WHERE {match})"
    )
    rows_sql = f"{kept} UNION ALL SELECT {select} FROM __changes WHERE {OP} = 'upsert'"
    staged = _stage(path, con, rows_sql)
    adds = _adopt(path, staged)
    by_full_path = {str(path / f.path): f for f in candidates}
    removed = [by_full_path[h] for h in hits]
    now_ms = int(time.time() * 1000)
    removes = [RemoveAction(f.path, True, now_ms, f.size, {PARTITION: f.bucket}) for f in removed]
    current.create_write_transaction(
        [*adds, *removes],
        mode="append",
        schema=current.schema(),
        partition_by=[PARTITION],
        commit_properties=_properties(commit_info),
    )
    _clear_staging(path)
    return CommitStats(
        version=int(DeltaTable(str(path)).version()),
        rows_added=int(upserts),
        rows_removed=int(deleted) + int(updated),
        files_added=len(adds),
        files_removed=len(removes),
    )


# --- files -----------------------------------------------------------------------------------------


def _arrow_schema(con: duckdb.DuckDBPyConnection, rows_sql: str) -> pa.Schema:
    """The rows' schema in the plain types Delta (and partners' readers) know."""
    schema = con.sql(f"SELECT * FROM ({rows_sql}) LIMIT 0").to_arrow_table().schema
    return pa.schema([pa.field(f.name, plain_type(f.type)) for f in schema])


def plain_type(kind: pa.DataType) -> pa.DataType:
    """Timestamps with a zone as UTC (DuckDB says Etc/UTC), view and large strings as strings."""
    if pa.types.is_timestamp(kind):
        return pa.timestamp(kind.unit, tz="UTC" if kind.tz else None)
    if pa.types.is_string_view(kind) or pa.types.is_large_string(kind):
        return pa.string()
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_list_view(kind):
        return pa.list_(plain_type(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, plain_type(f.type)) for f in kind])
    return kind


def _stage(path: Path, con: duckdb.DuckDBPyConnection, rows_sql: str) -> Path:
    """Write the rows as ZSTD Parquet partitioned by bucket into a fresh staging directory."""
    staging = new_staging(path)
    staging.mkdir(parents=True)
    con.execute(
        f"COPY ({rows_sql}) TO {_literal(str(staging))} (FORMAT parquet, PARTITION_BY ({PARTITION}), "
        f"COMPRESSION zstd, COMPRESSION_LEVEL {ZSTD_LEVEL}, FILE_SIZE_BYTES '{TARGET_FILE_SIZE}', "
        "FILENAME_PATTERN 'part-{uuid}', "
        "OVERWRITE_OR_IGNORE)"
    )
    return staging


def _adopt(path: Path, staging: Path) -> list[AddAction]:
    """Move the staged files into the table's partition directories; their add actions."""
    adds: list[AddAction] = []
    for file in sorted(staging.rglob("*.parquet")):
        bucket = _bucket_of(file.relative_to(staging))
        relative = f"{PARTITION}={bucket}/{file.name}" if bucket is not None else file.name
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        file.replace(target)
        stat = target.stat()
        adds.append(
            AddAction(
                path=relative,
                size=stat.st_size,
                partition_values={PARTITION: bucket},
                modification_time=int(stat.st_mtime * 1000),
                data_change=True,
                stats=file_stats(target),
            )
        )
    return adds


def _bucket_of(relative: Path) -> str | None:
    for part in relative.parts[:-1]:
        key, _, value = part.partition("=")
        if key == PARTITION:
            return value
    return None


def _clear_staging(path: Path) -> None:
    shutil.rmtree(path / STAGING, ignore_errors=True)


def _records(action: AddAction) -> int:
    return int(json.loads(action.stats)["numRecords"])


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _properties(commit_info: Mapping[str, str]) -> CommitProperties:
    return CommitProperties(custom_metadata={k: str(v) for k, v in commit_info.items()})


# --- statistics --------------------------------------------------------------------------------------


def file_stats(file: Path) -> str:
    """The Delta `stats` of a Parquet file (numRecords, minValues, maxValues, nullCount) from its footer."""
    metadata = pq.read_metadata(file)
    schema = metadata.schema.to_arrow_schema()
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for field in schema:
        if not _has_stats(field.type):
            continue
        column = _column_index(metadata, field.name)
        if column is None:
            continue
        low, high, missing = _combine(metadata, column)
        if missing is not None:
            nulls[field.name] = missing
        if low is not None and high is not None:
            low_text, high_text = stat_value(low, floor=True), stat_value(high, floor=False)
            if low_text is not None and high_text is not None:
                minimum[field.name], maximum[field.name] = low_text, high_text
    stats = {"numRecords": metadata.num_rows, "minValues": minimum, "maxValues": maximum, "nullCount": nulls}
    return json.dumps(stats, separators=(",", ":"))


def _has_stats(kind: pa.DataType) -> bool:
    return not (pa.types.is_nested(kind) or pa.types.is_binary(kind))


def _column_index(metadata: pq.FileMetaData, name: str) -> int | None:
    for i in range(metadata.num_columns):
        if metadata.schema.column(i).path == name:
            return i
    return None


def _combine(metadata: pq.FileMetaData, column: int) -> tuple[Any, Any, int | None]:
    """min, max and null count of one column over every row group (None where a group lacks them)."""
    low: Any = None
    high: Any = None
    nulls: int | None = 0
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(column).statistics
        if statistics is None:
            return None, None, None
        if statistics.has_null_count and nulls is not None:
            nulls += int(statistics.null_count)
        else:
            nulls = None
        if not statistics.has_min_max:
            if metadata.row_group(group).num_rows > (statistics.null_count or 0):
                low = high = _UNKNOWN
            continue
        if low is _UNKNOWN:
            continue
        low = statistics.min if low is None else min(low, statistics.min)
        high = statistics.max if high is None else max(high, statistics.max)
    if low is _UNKNOWN:
        return None, None, nulls
    return low, high, nulls


def stat_value(value: Any, *, floor: bool) -> Any:
    """A statistic as Delta writes it; timestamps at millisecond precision, widened to stay a bound."""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC)
        millis = moment.replace(microsecond=(moment.microsecond // 1000) * 1000)
        if not floor and millis < moment:
            millis += timedelta(milliseconds=1)
        return millis.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis.microsecond // 1000:03d}Z"
    if isinstance(value, str):
        return value if len(value) <= MAX_STAT_CHARS else None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return None
