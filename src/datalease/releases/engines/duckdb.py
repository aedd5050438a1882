"""The embedded engine's explanations: how many records each reason code withholds (DuckDB, over the
relations a `releases.diff.DiffSession` registers)."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from datalease.policy.compile import CATEGORY_SHAPES, CompiledPlan

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
