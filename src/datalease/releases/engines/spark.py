"""The Spark engine: the same compiled plan, in Spark SQL, on `local[*]` or a standalone cluster.

A build's inputs become Spark relations: the lake tables at the versions the release pinned (their
Parquet files, listed by deltalake and read by Spark with the lake's schemas), the consent snapshot,
the change set and the withheld ids (small Arrow tables written as Parquet into a scratch directory,
so a cluster's executors read them like the lake). The plan's prepared relations (`keyed_users`,
`post_keys`, …) are cached: HMAC is computed once per person and per eligible post. Then per table:

- first version (a full build): Spark writes the rows as ZSTD Parquet, partitioned by bucket, into
  the table's staging directory, and `delta.create_from_staged` adopts the files and commits them —
  the path DuckDB's files take;
- later versions: Spark computes the diff (`diff.diff_sql`, the engine-neutral SQL, over the table's
  current files as `existing_<category>`) and writes it as Parquet; `delta.rewrite` applies it (only
  the touched buckets are read and rewritten, one `create_write_transaction` commit).

Spark never touches Delta itself (delta-spark's jars come from Maven, which a closed network lacks).
Executors read and write by path: a cluster needs one filesystem (one machine or a shared mount).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyspark.errors import PySparkRuntimeError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import StructType

from datalease.errors import UserError
from datalease.platform.lake import TABLE_SCHEMAS, Lake
from datalease.policy.compile import SPARK
from datalease.policy.vocabulary import ENGAGEMENT
from datalease.releases import delta
from datalease.releases.changes import Changes, Withheld
from datalease.releases.delta import CommitStats
from datalease.releases.diff import EXISTING_PREFIX, diff_sql
from datalease.releases.engines.duckdb import CATEGORY_TABLES, EXACT_EXPLANATION_ROWS, eligibility_sql
from datalease.releases.plan import CategoryPlan, ReleasePlan
from datalease.releases.withheld import withheld_ids, withheld_keys_sql, without_withheld

# One file per bucket per task, cut at this many rows (Spark has no byte target for Parquet files).
MAX_RECORDS_PER_FILE: Final = 2_000_000
SESSION_CONF: Final = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",  # bucket stays text ('0'…'f')
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}
LOCAL_HOSTS: Final = ("127.0.0.1", "localhost")

_current: dict[str, SparkSession] = {}  # master -> the process's one session


def spark_session(master: str, memory: str, conf: Mapping[str, str] | None = None) -> SparkSession:
    """The process's SparkSession for `master` (started once: a JVM start costs seconds).

    `conf` applies only when this call starts the session (tests pass lighter JVM options). A session
    for another master is stopped first: one JVM holds one SparkContext.
    """
    if master in _current:
        return _current[master]
    for other in list(_current):
        _current.pop(other).stop()
    builder = SparkSession.builder.master(master).appName("datalease release")
    settings = {**SESSION_CONF, "spark.driver.memory": memory, "spark.executor.memory": memory}
    if master.startswith("local") or urlparse(master).hostname in LOCAL_HOSTS:
        settings |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
    for key, value in {**settings, **(conf or {})}.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except PySparkRuntimeError as failed:  # no JVM: java missing or too old
        raise UserError(
            f"could not start Spark for {master}: {failed}; it needs a Java runtime >= 17 (make jre)"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    _current[master] = session
    return session


def spark_schema(schema: pa.Schema) -> StructType:
    return from_arrow_schema(schema, prefer_timestamp_ntz=False)


def release_schema(frame: DataFrame) -> pa.Schema:
    """A table's Delta schema from Spark's rows: the types and nullability DuckDB's builds give it."""
    arrow = to_arrow_schema(frame.schema, timezone="UTC")
    return pa.schema([pa.field(f.name, delta.plain_type(f.type), nullable=True) for f in arrow])


def open_release(
    *,
    master: str,
    memory: str,
    lake: Lake,
    versions: dict[str, int | None],
    consent: pa.Table,
    changes: Changes | None,
    con: duckdb.DuckDBPyConnection,
    scratch_parent: Path,
) -> SparkRelease:
    return SparkRelease(spark_session(master, memory), lake, versions, consent, changes, con, scratch_parent)


class SparkRelease:
    """One build's inputs in Spark; `con` is the build's DuckDB connection `delta.rewrite` runs on."""

    name = "spark"

    def __init__(
        self,
        spark: SparkSession,
        lake: Lake,
        versions: dict[str, int | None],
        consent: pa.Table,
        changes: Changes | None,
        con: duckdb.DuckDBPyConnection,
        scratch_parent: Path,
    ) -> None:
        self.spark = spark
        self.con = con
        self.scratch = Path(tempfile.mkdtemp(prefix="spark-", dir=scratch_parent))
        self.views: list[str] = []
        self.cached: list[str] = []
        for name, version in versions.items():
            self._view(name, self._lake_table(lake, name, version))
        self._ship("consent", consent)
        if changes is not None:
            self._ship("affected_users", changes.users)
            self._ship("affected_posts_base", changes.posts)
            empty = pa.table({"user_id": pa.array([], pa.int64()), "post_id": pa.array([], pa.int64())})
            for category in ENGAGEMENT:
                self._ship(f"affected_{category}", changes.engagement.get(category, empty))

    # --- inputs ---------------------------------------------------------------------------------

    def _lake_table(self, lake: Lake, name: str, version: int | None) -> DataFrame:
        schema = TABLE_SCHEMAS[name]
        files = DeltaTable(str(lake.path(name)), version=version).file_uris() if version is not None else []
        return self._files(files, schema)

    def _files(self, files: list[str], schema: pa.Schema, base: Path | None = None) -> DataFrame:
        if not files:
            return self.spark.createDataFrame([], spark_schema(schema))
        reader = self.spark.read.schema(spark_schema(schema))
        if base is not None:
            reader = reader.option("basePath", str(base))
        return reader.parquet(*files)

    def _ship(self, name: str, table: pa.Table) -> None:
        """A small Arrow table as a Parquet file every executor can read, registered as `name`."""
        target = self.scratch / "inputs" / f"{name}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)
        self._view(name, self.spark.read.parquet(str(target)))

    def _view(self, name: str, frame: DataFrame) -> None:
        frame.createOrReplaceTempView(name)
        self.views.append(name)

    def _cache(self, name: str, sql: str) -> None:
        self.spark.catalog.dropTempView(name)
        self.spark.sql(f"CACHE LAZY TABLE {name} AS {sql}")
        self.cached.append(name)

    # --- the engine -----------------------------------------------------------------------------

    def prepare(self, plan: ReleasePlan, on_step: Callable[[str], None] | None = None) -> None:
        for name, sql in plan.prepare:
            if on_step is not None:
                on_step(f"preparing {name} (spark)")
            self._cache(name, sql)

    def excluded(self, plans: tuple[CategoryPlan, ...]) -> tuple[dict[str, int], int]:
        """As DuckDB's, exact up to EXACT_EXPLANATION_ROWS a category; above that a 1-in-N sample by
        `xxhash64` (DuckDB samples by `hash`, so the two engines' estimates differ, exact counts do not)."""
        totals: dict[str, int] = {}
        sampled = 1
        for plan in plans:
            rows = self.spark.table(CATEGORY_TABLES[plan.category]).count()
            every = max(1, rows // EXACT_EXPLANATION_ROWS)
            sampled = max(sampled, every)
            sql, codes = eligibility_sql(plan.compiled, every, "pmod(xxhash64({columns}), {every}) = 0")
            row = self.spark.sql(sql).collect()[0]
            for code, value in zip(codes, list(row)[2:], strict=True):
                totals[code] = totals.get(code, 0) + int(value or 0) * every
        return totals, sampled

    def register_withheld(self, secret: bytes, late: Withheld) -> None:
        for name, table in withheld_ids(late).items():
            self._ship(name, table)
        for name, sql in withheld_keys_sql(secret, SPARK):
            self._cache(name, sql)

    def write_table(self, path: Path, plan: CategoryPlan, commit_info: Mapping[str, str]) -> CommitStats:
        current = delta.table_version(path)
        if current is None:
            rows = self.spark.sql(without_withheld(plan.desired_sql, plan.columns))
            staged = delta.new_staging(path)
            self._write(rows.repartition(delta.PARTITION), staged / "rows", partitioned=True)
            return delta.create_from_staged(path, release_schema(rows), staged, commit_info=commit_info)
        table = DeltaTable(str(path))
        existing = EXISTING_PREFIX + plan.category
        schema = pa.schema(table.schema().to_arrow())
        self._view(existing, self._files(table.file_uris(), schema, base=path))
        changes = self.spark.sql(without_withheld(diff_sql(plan, existing), plan.columns, keep_deletes=True))
        target = self.scratch / f"changes-{plan.category}-{uuid.uuid4().hex}"
        self._write(changes, target, partitioned=False)
        files = sorted(str(f) for f in target.glob("*.parquet"))
        if not files:
            return CommitStats(current, 0, 0, 0, 0)
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        relation = f"read_parquet([{listing}])"
        return delta.rewrite(path, self.con, relation, plan.columns, plan.identity, commit_info=commit_info)

    def _write(self, frame: DataFrame, target: Path, *, partitioned: bool) -> None:
        writer = frame.write.mode("errorifexists").option("compression", "zstd")
        writer = writer.option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
        if partitioned:
            writer = writer.partitionBy(delta.PARTITION)
        writer.parquet(str(target))

    def close(self) -> None:
        """Drop this build's relations (cached ones are evicted) and its scratch files."""
        for name in {*self.views, *self.cached}:
            self.spark.catalog.dropTempView(name)
        self.views.clear()
        self.cached.clear()
        shutil.rmtree(self.scratch, ignore_errors=True)
