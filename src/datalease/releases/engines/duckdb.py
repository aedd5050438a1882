"""The embedded engine: DuckDB scanning the lake's Delta tables and the consent snapshot zero-copy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from datalease.platform.lake import Lake
from datalease.policy.compile import CATEGORY_SHAPES, CompiledPlan, quote

# The lake table each category's records live in (profile records are the users' rows).
CATEGORY_TABLES = {
    "posts": "posts",
    "likes": "likes",
    "reposts": "reposts",
    "bookmarks": "bookmarks",
    "profile": "users",
}


@dataclass(frozen=True)
class EligibilityCount:
    category: str
    total: int
    eligible: int
    reasons: dict[str, int] = field(default_factory=dict)  # reason code -> rows it applies to
    sample_every: int = 1  # 1 = exact; N = counted on a deterministic 1-in-N sample and scaled up


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
        con.register(name, table.to_pyarrow_dataset().to_table())
        return
    listing = ", ".join(quote(f) for f in files)
    hive = (
        ", hive_partitioning = true, hive_types_autocast = false"
        if partitioned
        else ", hive_partitioning = false"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet([{listing}]{hive}, union_by_name = true)"
    )


@contextmanager
def connect(
    lake: Lake, consent: pa.Table, *, threads: int | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with `users`, the category tables and `consent` registered as views."""
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        for name in sorted(set(CATEGORY_TABLES.values()) | {"posts_curated"}):
            if lake.exists(name):
                register_delta(con, name, lake.path(name))
            else:
                con.register(name, lake.read(name))
        con.register("consent", consent)
        yield con
    finally:
        con.close()


def count_eligibility(
    con: duckdb.DuckDBPyConnection, plan: CompiledPlan, *, sample_every: int = 1
) -> EligibilityCount:
    """Totals, eligible rows and rows per reason code for one compiled plan.

    With `sample_every` N > 1 only records whose (owner, created_at) hash falls in one of N buckets
    are evaluated and the counts are scaled by N: explanations of a huge release cost 1/N.
    """
    codes = list(plan.reason_conditions)
    sums = ", ".join(f"SUM(CASE WHEN {code} THEN 1 ELSE 0 END)" for code in codes)
    alias, owner = (
        ("u", "user_id") if plan.category == "profile" else ("r", CATEGORY_SHAPES[plan.category].owner)
    )
    where = f"hash({alias}.{owner}, {alias}.created_at) % {sample_every} = 0" if sample_every > 1 else None
    sql = (
        f"SELECT COUNT(*), SUM(CASE WHEN allowed THEN 1 ELSE 0 END){', ' + sums if sums else ''} "
        f"FROM ({plan.reasons_sql(where=where)})"
    )
    row = con.execute(sql).fetchall()[0]
    scale = max(1, sample_every)
    return EligibilityCount(
        category=plan.category,
        total=int(row[0] or 0) * scale,
        eligible=int(row[1] or 0) * scale,
        reasons={code: int(value or 0) * scale for code, value in zip(codes, row[2:], strict=True)},
        sample_every=scale,
    )
