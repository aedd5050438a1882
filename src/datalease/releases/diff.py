"""The one DuckDB session that computes what a release changes: the build and the withdrawal path
both open it, register the lake at pinned versions, the consent snapshot and (incremental) the change
set, materialise the plan's prepared relations, and ask it for one category's diff against the table.

The diff of a category is the rows to upsert (new, or different from what the table holds) and to
delete (held, no longer desired), within the plan's reach (`CategoryPlan.existing_filter`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final

import duckdb
import pyarrow as pa

from datalease.platform.lake import Lake, register_delta
from datalease.policy.vocabulary import ENGAGEMENT
from datalease.releases import delta
from datalease.releases.changes import Changes
from datalease.releases.plan import CategoryPlan, ReleasePlan

EXISTING_PREFIX: Final = "existing_"


class DiffSession:
    """A DuckDB connection holding one release's inputs. Use as a context manager."""

    def __init__(
        self,
        lake: Lake,
        versions: dict[str, int | None],
        consent: pa.Table,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        temp_directory: Path | None = None,
    ) -> None:
        self.con = duckdb.connect()
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute("SET preserve_insertion_order = false")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        if temp_directory is not None:
            self.con.execute(f"SET temp_directory = '{temp_directory}'")
        # The lake tables at the versions this release pinned (a concurrent ingest is not half-seen).
        for name, version in versions.items():
            lake.register(self.con, name, version=version)
        self.con.register("consent", consent)

    def __enter__(self) -> DiffSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def register_changes(self, changes: Changes) -> None:
        """The change set an incremental plan narrows to (see `releases.plan`)."""
        self.con.register("affected_users", changes.users)
        self.con.register("affected_posts_base", changes.posts)
        empty = pa.table({"user_id": pa.array([], pa.int64()), "post_id": pa.array([], pa.int64())})
        for category in ENGAGEMENT:
            self.con.register(f"affected_{category}", changes.engagement.get(category, empty))

    def prepare(self, plan: ReleasePlan, on_step: Callable[[str], None] | None = None) -> None:
        """Materialise the plan's prepared relations (keyed users, eligible posts, …) in order."""
        for name, sql in plan.prepare:
            if on_step is not None:
                on_step(f"preparing {name}")
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    def existing(self, category: str, path: Path, version: int | None = None) -> str:
        """Register the table's rows (at `version`, default latest) as `existing_<category>`."""
        name = EXISTING_PREFIX + category
        register_delta(self.con, name, path, version=version, partitioned=True)
        return name

    def diff_sql(self, plan: CategoryPlan, existing: str) -> str:
        return diff_sql(plan, existing)

    def count(self, relation: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0])


def diff_sql(plan: CategoryPlan, existing: str) -> str:
    """Rows to upsert (new or different) and to delete (no longer desired), within the plan's reach."""
    columns = ", ".join(plan.columns)
    # A row is matched on its keys AND its bucket, as the writer does: a row whose owner changed (a
    # post re-attributed) moves bucket, so it is deleted from the old one and inserted into the new.
    matched = (*plan.identity, delta.PARTITION)
    same_row = " AND ".join(f"e.{c} = d.{c}" for c in matched)
    same_values = " AND ".join(f"e.{c} IS NOT DISTINCT FROM d.{c}" for c in plan.columns if c not in matched)
    return f"""
            WITH d AS ({plan.desired_sql}),
                 e AS (SELECT {columns} FROM {existing} AS t WHERE {plan.existing_filter})
            SELECT {columns}, 'upsert' AS {delta.OP} FROM d
            WHERE NOT EXISTS (SELECT 1 FROM e WHERE {same_row} AND {same_values or "TRUE"})
            UNION ALL
            SELECT {columns}, 'delete' AS {delta.OP} FROM e
            WHERE NOT EXISTS (SELECT 1 FROM d WHERE {same_row})"""
