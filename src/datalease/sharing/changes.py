"""Change-feed files as partners receive them: only released transitions, and revoked content never
leaves, only keys do.

A partner sees a table only at the versions releases pinned, so its change feed is the list of
*released transitions*: for each released version, what changed since the released version before it.
The server computes that itself from the files that differ between the two versions (rows of files
the earlier version had and the later one no longer has, against rows of files the later one added),
matched on the table's identity (its partner keys): rows only before are `delete`s, rows only after are
`insert`s, rows in both with other values are an `update_preimage` + `update_postimage`. That is exact
whatever happened in between — commits of a build that died, the RESTORE that undid them, a copy-on-write
rewrite that carried unchanged rows into a new file: none of it reaches a partner, and a partner that
syncs release by release ends where one that reads from version 0 does.

Each transition is stored once (`transitions/v<version>.parquet`) with its removals already reduced to
keys (`delete` and `update_preimage` rows keep their key columns and nothing else: the text of a
revoked post must not travel even inside the instruction to delete it). What a partner downloads is
then redacted against the table's *current* state: an `insert` / `update_postimage` row whose identity
a later released transition removed is dropped, so replaying the feed from any version never hands
out rows that have been revoked since. That redaction depends on the latest removing version (the
table's *epoch*), so served files live under `e<epoch>/`; when a new removal moves the epoch, older
directories are deleted and their signed URLs stop resolving.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from datalease.sharing.deltalog import LogError
from datalease.sharing.tables import SharedTable

CHANGE_TYPE: Final = "_change_type"
REMOVED_TYPES: Final = ("delete", "update_preimage")
TRANSITIONS: Final = "transitions"
_PRIMITIVES: Final[dict[str, pa.DataType]] = {
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


def arrow_type(kind: Any) -> pa.DataType:
    """The plain Arrow type of a Delta schema type (nested types included)."""
    if isinstance(kind, str):
        if kind.startswith("decimal("):
            precision, scale = (int(x) for x in kind[len("decimal(") : -1].split(","))
            return pa.decimal128(precision, scale)
        return _PRIMITIVES[kind]
    if kind["type"] == "array":
        return pa.list_(arrow_type(kind["elementType"]))
    if kind["type"] == "map":
        return pa.map_(arrow_type(kind["keyType"]), arrow_type(kind["valueType"]))
    if kind["type"] == "struct":
        return pa.struct([pa.field(f["name"], arrow_type(f["type"])) for f in kind["fields"]])
    raise ValueError(f"unsupported Delta type {kind!r}")


def arrow_schema(fields: list[dict[str, Any]]) -> pa.Schema:
    return pa.schema([pa.field(f["name"], arrow_type(f["type"])) for f in fields])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _write_atomically(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        con.execute(f"COPY ({query}) TO {_literal(str(temporary))} (FORMAT parquet, COMPRESSION zstd)")
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def differing_files(table: SharedTable, version: int) -> tuple[list[str], list[str]]:
    """(files the previous released version had and `version` has not, files `version` added)."""
    before = table.previous_released(version)
    try:
        after = {f.path for f in table.log.files(version)}
        earlier = {f.path for f in table.log.files(before)} if before is not None else set()
    except LogError as exc:  # the log was cleaned up below a checkpoint: these versions are gone
        raise PurgedVersionError(version) from exc
    return sorted(earlier - after), sorted(after - earlier)


def transition(table: SharedTable, version: int, cache: Path) -> Path | None:
    """The stored transition of released `version` (None when it changed no row: no file differs, or
    only a compaction ran since the previous released version)."""
    if not table.changes_data(version):
        return None
    old, new = differing_files(table, version)
    if not old and not new:
        return None
    target = cache / TRANSITIONS / f"v{version}.parquet"
    if not target.exists():
        _materialise_transition(table, version, old, new, target)
    return target


def _materialise_transition(
    table: SharedTable, version: int, old: Sequence[str], new: Sequence[str], target: Path
) -> None:
    files = [table.path / unquote(p) for p in (*old, *new)]
    if any(not f.is_file() for f in files):
        raise PurgedVersionError(version)
    fields = table.fields(version)
    schema = arrow_schema(fields)
    names = [f["name"] for f in fields]
    identity = [c for c in table.identity if c in names]
    keys = set(table.key_columns(version))
    con = duckdb.connect()
    try:
        for alias, paths in (("o", old), ("n", new)):
            if paths:
                listing = ", ".join(_literal(str(table.path / unquote(p))) for p in paths)
                columns = ", ".join(_quote(c) for c in names)
                con.execute(
                    f"CREATE TEMP VIEW {alias} AS SELECT {columns} FROM read_parquet([{listing}], "
                    "hive_partitioning = false, union_by_name = true)"
                )
            else:
                con.register(f"__{alias}", schema.empty_table())
                con.execute(f"CREATE TEMP VIEW {alias} AS SELECT * FROM __{alias}")
        same = " AND ".join(f"o.{_quote(c)} = n.{_quote(c)}" for c in identity)
        differ = (
            " OR ".join(f"o.{_quote(c)} IS DISTINCT FROM n.{_quote(c)}" for c in names if c not in identity)
            or "FALSE"
        )

        def removal(alias: str) -> str:
            # A typed NULL (the column's own type) outside the keys.
            return ", ".join(
                f"{alias}.{_quote(c)}"
                if c in keys
                else f"CASE WHEN FALSE THEN {alias}.{_quote(c)} END AS {_quote(c)}"
                for c in names
            )

        full = ", ".join(f"n.{_quote(c)}" for c in names)
        query = f"""
            SELECT {removal("o")}, 'delete' AS {CHANGE_TYPE} FROM o
            WHERE NOT EXISTS (SELECT 1 FROM n WHERE {same})
            UNION ALL
            SELECT {removal("o")}, 'update_preimage' FROM o JOIN n ON {same} WHERE {differ}
            UNION ALL
            SELECT {full}, 'update_postimage' FROM o JOIN n ON {same} WHERE {differ}
            UNION ALL
            SELECT {full}, 'insert' FROM n WHERE NOT EXISTS (SELECT 1 FROM o WHERE {same})"""
        _write_atomically(con, query, target)
    finally:
        con.close()


def removed_identities(table: SharedTable, version: int, cache: Path) -> Path | None:
    """A Parquet file of the identities released `version` removed (cached: transitions never change)."""
    target = cache / "removed" / f"v{version}.parquet"
    if target.exists():
        return target
    source = transition(table, version, cache)
    if source is None:
        return None
    keys = ", ".join(_quote(c) for c in table.identity)
    removed = ", ".join(f"'{t}'" for t in REMOVED_TYPES)
    con = duckdb.connect()
    try:
        _write_atomically(
            con,
            f"SELECT DISTINCT {keys} FROM read_parquet({_literal(str(source))}) WHERE {CHANGE_TYPE} IN ({removed})",
            target,
        )
    finally:
        con.close()
    return target


def change_file(table: SharedTable, version: int, epoch: int, cache: Path) -> ChangeFile | None:
    """The redacted change file of released `version` (None when it changed no rows)."""
    source = transition(table, version, cache)
    if source is None:
        return None
    name = f"e{epoch}/v{version}.parquet"
    target = cache / name
    if not target.exists():
        _redact(table, version, epoch, cache, source, target)
    rows = pq.ParquetFile(target).metadata.num_rows
    if rows == 0:
        return None
    if not table.log.available(version):
        raise PurgedVersionError(version)
    return ChangeFile(name, target, version, table.log.timestamp(version), target.stat().st_size, rows)


def _redact(table: SharedTable, version: int, epoch: int, cache: Path, source: Path, target: Path) -> None:
    later = [
        found
        for v in table.released
        if version < v <= epoch and table.removes_rows(v)
        if (found := removed_identities(table, v, cache)) is not None
    ]
    removed_types = ", ".join(f"'{t}'" for t in REMOVED_TYPES)
    where = ""
    if later:
        files = ", ".join(_literal(str(p)) for p in later)
        match = " AND ".join(f"r.{_quote(c)} = t.{_quote(c)}" for c in table.identity)
        where = (
            f"WHERE {CHANGE_TYPE} IN ({removed_types}) OR NOT EXISTS "
            f"(SELECT 1 FROM read_parquet([{files}]) AS r WHERE {match})"
        )
    con = duckdb.connect()
    try:
        _write_atomically(con, f"SELECT * FROM read_parquet({_literal(str(source))}) AS t {where}", target)
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
