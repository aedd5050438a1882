"""The embedded engine (DuckDB, over the relations a `releases.diff.DiffSession` registers): a
build's tables, and its explanations — how many records each reason code withholds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import duckdb

from datalease.policy.compile import CATEGORY_SHAPES, CompiledPlan
from datalease.releases import delta
from datalease.releases.changes import Withheld
from datalease.releases.delta import CommitStats
from datalease.releases.diff import DiffSession, diff_sql
from datalease.releases.plan import CategoryPlan, ReleasePlan
from datalease.releases.withheld import withheld_ids, withheld_keys_sql, without_withheld

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


DUCKDB_SAMPLE: Final = "hash({columns}) % {every} = 0"


def eligibility_sql(
    plan: CompiledPlan, sample_every: int = 1, sample: str = DUCKDB_SAMPLE
) -> tuple[str, list[str]]:
    """SQL counting records, eligible ones and one sum per reason code (the codes, in order).

    With `sample_every` N > 1 only records whose (owner, created_at) hash falls in one of N buckets
    are evaluated: `sample` is the engine's hash test over `{columns}` and `{every}`.
    """
    codes = list(plan.reason_conditions)
    sums = ", ".join(f"SUM(CASE WHEN {code} THEN 1 ELSE 0 END)" for code in codes)
    alias, owner = (
        ("u", "user_id") if plan.category == "profile" else ("r", CATEGORY_SHAPES[plan.category].owner)
    )
    columns = f"{alias}.{owner}, {alias}.created_at"
    where = sample.format(columns=columns, every=sample_every) if sample_every > 1 else None
    sql = (
        f"SELECT COUNT(*), SUM(CASE WHEN allowed THEN 1 ELSE 0 END){', ' + sums if sums else ''} "
        f"FROM ({plan.reasons_sql(where=where)})"
    )
    return sql, codes


def count_eligibility(
    con: duckdb.DuckDBPyConnection, plan: CompiledPlan, *, sample_every: int = 1
) -> EligibilityCount:
    """Totals, eligible rows and rows per reason code for one compiled plan.

    With `sample_every` N > 1 only records whose (owner, created_at) hash falls in one of N buckets
    are evaluated and the counts are scaled by N: explanations of a huge release cost 1/N.
    """
    sql, codes = eligibility_sql(plan, sample_every)
    row = con.execute(sql).fetchall()[0]
    scale = max(1, sample_every)
    return EligibilityCount(
        category=plan.category,
        total=int(row[0] or 0) * scale,
        eligible=int(row[1] or 0) * scale,
        reasons={code: int(value or 0) * scale for code, value in zip(codes, row[2:], strict=True)},
        sample_every=scale,
    )


EXACT_EXPLANATION_ROWS = 1_000_000


class DuckDBRelease:
    """The embedded engine: the build's own `DiffSession` runs the plan and writes the files."""

    name = "duckdb"

    def __init__(self, session: DiffSession) -> None:
        self.session = session
        self.con = session.con

    def prepare(self, plan: ReleasePlan, on_step: Callable[[str], None] | None = None) -> None:
        self.session.prepare(plan, on_step)

    def excluded(self, plans: tuple[CategoryPlan, ...]) -> tuple[dict[str, int], int]:
        """Rows withheld per reason code over every category; exact up to EXACT_EXPLANATION_ROWS
        records per category, estimated from a deterministic sample above that (returns the 1-in-N)."""
        totals: dict[str, int] = {}
        sampled = 1
        for plan in plans:
            table = CATEGORY_TABLES[plan.category]
            rows = int(self.con.execute(f"SELECT COUNT(*) FROM {table}").fetchall()[0][0])
            every = max(1, rows // EXACT_EXPLANATION_ROWS)
            sampled = max(sampled, every)
            for code, count in count_eligibility(self.con, plan.compiled, sample_every=every).reasons.items():
                totals[code] = totals.get(code, 0) + count
        return totals, sampled

    def register_withheld(self, secret: bytes, late: Withheld) -> None:
        for name, table in withheld_ids(late).items():
            self.con.register(name, table)
        for name, sql in withheld_keys_sql(secret):
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def write_table(self, path: Path, plan: CategoryPlan, commit_info: Mapping[str, str]) -> CommitStats:
        if delta.table_version(path) is None:
            rows = without_withheld(plan.desired_sql, plan.columns)
            return delta.create(path, self.con, rows, commit_info=commit_info)
        existing = self.session.existing(plan.category, path)
        changes = without_withheld(diff_sql(plan, existing), plan.columns, keep_deletes=True)
        return delta.rewrite(
            path, self.con, f"({changes})", plan.columns, plan.identity, commit_info=commit_info
        )

    def close(self) -> None:
        """Nothing of its own: the build closes its DiffSession."""
