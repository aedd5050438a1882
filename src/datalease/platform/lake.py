"""The source lake: one Delta table per platform table under a root directory.

Layout: `root/source/<name>` for users, posts, likes, reposts and bookmarks, `root/curated/posts` for
`posts_curated`. Every write is one Delta commit (a merge on the table's primary key), so a reader
sees a batch entirely or not at all. Deletion vectors stay off (delta-rs cannot read them back);
the change data feed is on, so later readers can ask exactly which rows a commit changed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from datalease.platform.schemas import POSTS_CURATED, PRIMARY_KEYS, SOURCE_SCHEMAS

if TYPE_CHECKING:  # pyarrow.dataset imports pandas (~0.4 s): only what scans a dataset pays for it
    import pyarrow.dataset as ds

CURATED_POSTS: Final = "posts_curated"
TABLE_SCHEMAS: Final[dict[str, pa.Schema]] = {**SOURCE_SCHEMAS, CURATED_POSTS: POSTS_CURATED}
TABLE_KEYS: Final[dict[str, tuple[str, ...]]] = {**PRIMARY_KEYS, CURATED_POSTS: ("post_id",)}
# The change data feed lets an incremental release find exactly the rows that changed.
TABLE_CONFIGURATION: Final = {"delta.enableDeletionVectors": "false", "delta.enableChangeDataFeed": "true"}

_COMMIT_FILE: Final = re.compile(r"[0-9]{20}\.json")

# Marks the source rows of a merge that delete their match instead of upserting it.
_DELETE_FLAG: Final = "_datalease_delete"


class Lake:
    """The Delta tables of one platform, addressed by table name."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        """Where table `name` lives; ValueError naming the valid tables for an unknown name."""
        _schema(name)
        if name == CURATED_POSTS:
            return self.root / "curated" / "posts"
        return self.root / "source" / name

    def exists(self, name: str) -> bool:
        """Whether table `name` has been created (by a first write)."""
        return DeltaTable.is_deltatable(str(self.path(name)))

    def version(self, name: str) -> int | None:
        """The table's current Delta version, None if it does not exist yet.

        Read from the log's file names (the version is the highest commit `<n>.json`, which log
        clean-up never removes) rather than by opening the table: cheap enough to poll every second
        (services/decision_context.py), where opening the table cost ~5 ms of the GIL each time.
        """
        try:
            names = [entry.name for entry in os.scandir(self.path(name) / "_delta_log")]
        except FileNotFoundError:
            return None
        commits = [int(n[:-5]) for n in names if _COMMIT_FILE.fullmatch(n)]
        return max(commits) if commits else None

    def dataset(self, name: str) -> ds.Dataset:
        """A lazily scanned dataset of the table (an empty in-memory one if the table does not exist).

        DuckDB scans it zero-copy: `con.register(name, lake.dataset(name))`.
        """
        import pyarrow.dataset as ds

        if not self.exists(name):
            return ds.dataset(_schema(name).empty_table())
        return delta_dataset(DeltaTable(str(self.path(name))), _schema(name))

    def register(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        *,
        version: int | None = None,
        alias: str | None = None,
    ) -> None:
        """Expose table `name` (at `version`) to DuckDB as a view, read by DuckDB's Parquet reader."""
        if self.exists(name):
            register_delta(con, alias or name, self.path(name), version=version)
        else:
            con.register(alias or name, _schema(name).empty_table())

    def read(self, name: str) -> pa.Table:
        """The whole table in its schema; an empty table with that schema if it does not exist."""
        schema = _schema(name)
        return self.dataset(name).to_table(columns=schema.names).cast(schema)

    def upsert(self, name: str, table: pa.Table, *, delete: pa.Table | None = None) -> int:
        """Merge `table` on the primary key (update matches, insert the rest) in ONE Delta commit.

        `delete` optionally holds primary keys whose rows the same commit removes. Creates the table
        if it does not exist. Returns the table's version after the commit.
        """
        schema, keys = _schema(name), TABLE_KEYS[name]
        rows = _conform(name, table, schema)
        doomed_keys = _key_columns(name, delete, schema, keys)
        _require_unique_keys(name, pa.concat_tables([rows.select(keys), doomed_keys]), keys)
        path = str(self.path(name))
        if not self.exists(name):
            write_deltalake(path, rows, mode="error", configuration=TABLE_CONFIGURATION)
            return int(DeltaTable(path).version())
        target = DeltaTable(path)
        doomed = _delete_rows(_present(doomed_keys, target, keys), schema)
        source = pa.concat_tables([_flagged(rows, False), _flagged(doomed, True)])
        if source.num_rows:
            _merge(target, source, keys)
        return int(DeltaTable(path).version())

    def delete_keys(self, name: str, keys: pa.Table) -> int | None:
        """Remove the rows whose primary key is in `keys` (one commit); the version after, if any."""
        if not self.exists(name):
            return None
        return self.upsert(name, _schema(name).empty_table(), delete=keys)


def _schema(name: str) -> pa.Schema:
    try:
        return TABLE_SCHEMAS[name]
    except KeyError:
        raise ValueError(f"unknown lake table {name!r}: expected one of {', '.join(TABLE_SCHEMAS)}") from None


def _conform(name: str, table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The rows in exactly the table's schema (column order, types, nullability)."""
    missing = [field.name for field in schema if field.name not in table.column_names]
    if missing:
        raise ValueError(f"rows for lake table {name!r} lack column(s) {', '.join(missing)}")
    return table.select(schema.names).cast(schema)


def _require_unique_keys(name: str, table: pa.Table, keys: tuple[str, ...]) -> None:
    distinct = table.group_by(list(keys)).aggregate([]).num_rows
    if distinct != table.num_rows:
        raise ValueError(
            f"rows for lake table {name!r}: {table.num_rows - distinct} row(s) repeat a primary key "
            f"({', '.join(keys)}) already upserted or deleted in the same batch"
        )


def _key_columns(name: str, delete: pa.Table | None, schema: pa.Schema, keys: tuple[str, ...]) -> pa.Table:
    """The primary keys to delete, typed as in the table (none if `delete` is None)."""
    key_schema = pa.schema([schema.field(key) for key in keys])
    if delete is None:
        return key_schema.empty_table()
    missing = [key for key in keys if key not in delete.column_names]
    if missing:
        raise ValueError(f"keys to delete from lake table {name!r} lack column(s) {', '.join(missing)}")
    return delete.select(list(keys)).cast(key_schema)


def _present(doomed: pa.Table, target: DeltaTable, keys: tuple[str, ...]) -> pa.Table:
    """Only the keys the target has: delta-rs fails on delete rows that match nothing."""
    if not doomed.num_rows:
        return doomed
    existing = delta_dataset(target).to_table(columns=list(keys))
    return doomed.join(existing, keys=list(keys), join_type="left semi")


def _delete_rows(doomed: pa.Table, schema: pa.Schema) -> pa.Table:
    """Full-width rows (nulls outside the key) for the keys to delete, to join the merge source."""
    columns = [
        doomed.column(field.name)
        if field.name in doomed.column_names
        else pa.nulls(doomed.num_rows, field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=pa.schema([field.with_nullable(True) for field in schema]))


def _flagged(table: pa.Table, delete: bool) -> pa.Table:
    relaxed = pa.schema([field.with_nullable(True) for field in table.schema])
    flag = pa.array([delete] * table.num_rows, pa.bool_())
    return table.cast(relaxed).append_column(pa.field(_DELETE_FLAG, pa.bool_(), nullable=False), flag)


def _merge(target: DeltaTable, source: pa.Table, keys: tuple[str, ...]) -> None:
    on = " AND ".join(f"t.{key} = s.{key}" for key in keys)
    (
        target.merge(source, on, source_alias="s", target_alias="t")
        .when_matched_delete(predicate=f"s.{_DELETE_FLAG}")
        .when_matched_update_all(predicate=f"NOT s.{_DELETE_FLAG}", except_cols=[_DELETE_FLAG])
        .when_not_matched_insert_all(predicate=f"NOT s.{_DELETE_FLAG}", except_cols=[_DELETE_FLAG])
        .execute()
    )


def register_delta(
    con: duckdb.DuckDBPyConnection,
    name: str,
    path: Path,
    *,
    version: int | None = None,
    partitioned: bool = False,
) -> None:
    """Expose a Delta table (at `version`) to DuckDB as view `name`, read by DuckDB's own Parquet reader.

    The files are exactly the table state (deletion vectors are off). Reading them natively rather than
    through a pyarrow dataset is faster, and immune to delta-rs merges writing `string_view` columns that
    pyarrow's pushed-down filters cannot compare with `string`.
    """
    table = DeltaTable(str(path), version=version)
    files = table.file_uris()
    if not files:
        # Always a view, whatever the table holds: re-registering a name that is a view (or an Arrow
        # table) as the other kind fails in DuckDB, and one session registers many tables.
        empty = f"__empty_{name}"
        con.register(empty, pa.schema(table.schema().to_arrow()).empty_table())
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {empty}")
        return
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    hive = (
        ", hive_partitioning = true, hive_types_autocast = false"
        if partitioned
        else ", hive_partitioning = false"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet([{listing}]{hive}, union_by_name = true)"
    )


def delta_dataset(table: DeltaTable, schema: pa.Schema | None = None) -> ds.Dataset:
    """The table's current files as an Arrow dataset, read through Arrow's own filesystem.

    deltalake's `to_pyarrow_dataset()` reads through a Python filesystem whose handles can outlive the
    interpreter and abort the process at exit. Deletion vectors are off, so the file list is the table;
    `schema` (default: the table's) makes files that delta-rs merges wrote with `string_view` read as
    `string`.
    """
    import pyarrow.dataset as ds

    arrow_schema = schema or pa.schema(table.schema().to_arrow())
    files = table.file_uris()
    if not files:
        return ds.dataset(arrow_schema.empty_table())
    return ds.dataset(files, format="parquet", schema=arrow_schema)
