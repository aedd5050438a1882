"""The embedded engine: DuckDB scanning the lake's Delta tables and the consent snapshot zero-copy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from datalease.platform.lake import Lake
from datalease.policy.compile import CompiledPlan

# The lake table each category's records live in (profile records are the users' rows).
CATEGORY_TABLES = {"posts": "posts", "likes": "likes", "reposts": "reposts", "bookmarks": "bookmarks", "profile": "users"}


@dataclass(frozen=True)
class EligibilityCount:
    category: str
    total: int
    eligible: int
    reasons: dict[str, int] = field(default_factory=dict)  # reason code -> rows it applies to


@contextmanager
def connect(lake: Lake, consent: pa.Table, *, threads: int | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with `users`, the category tables and `consent` registered as views."""
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        for name in sorted(set(CATEGORY_TABLES.values()) | {"posts_curated"}):
            if lake.exists(name):
                con.register(name, lake.dataset(name))
            else:
                con.register(name, lake.read(name))
        con.register("consent", consent)
        yield con
    finally:
        con.close()


def count_eligibility(con: duckdb.DuckDBPyConnection, plan: CompiledPlan) -> EligibilityCount:
    """Totals, eligible rows and rows per reason code for one compiled plan."""
    codes = list(plan.reason_conditions)
    sums = ", ".join(f"SUM(CASE WHEN {code} THEN 1 ELSE 0 END)" for code in codes)
    sql = f"SELECT COUNT(*), SUM(CASE WHEN allowed THEN 1 ELSE 0 END){', ' + sums if sums else ''} FROM ({plan.reasons_sql()})"
    row = con.execute(sql).fetchall()[0]
    return EligibilityCount(
        category=plan.category,
        total=int(row[0] or 0),
        eligible=int(row[1] or 0),
        reasons={code: int(value or 0) for code, value in zip(codes, row[2:], strict=True)},
    )
