"""Bulk engines that run compiled release plans: DuckDB (embedded, the default) and Spark (scale-out).

Both take the same plan (`releases.plan.plan_release` in the engine's SQL dialect), the same diff SQL
(`releases.diff.diff_sql`) and the same withheld filter, and hand their files to the same Delta commit
path (`releases.delta`). Change detection, the share lock and the ledger stay in the build's process.
The Spark module is loaded by name, only when asked for: nothing else imports PySpark (an optional
extra, `pip install 'datalease[spark]'`), and its import costs a second.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol, cast

from datalease.errors import UserError
from datalease.policy.compile import DUCKDB, SPARK, Dialect
from datalease.releases.changes import Withheld
from datalease.releases.delta import CommitStats
from datalease.releases.plan import CategoryPlan, ReleasePlan

ENGINES: Final[dict[str, Dialect]] = {"duckdb": DUCKDB, "spark": SPARK}
SPARK_MODULE: Final = "datalease.releases.engines.spark"


class ReleaseEngine(Protocol):
    """One build's engine, holding the release's inputs (lake at pinned versions, consent, changes)."""

    name: str

    def prepare(self, plan: ReleasePlan, on_step: Callable[[str], None] | None = None) -> None: ...

    def excluded(self, plans: tuple[CategoryPlan, ...]) -> tuple[dict[str, int], int]: ...

    def register_withheld(self, secret: bytes, late: Withheld) -> None: ...

    def write_table(self, path: Path, plan: CategoryPlan, commit_info: Mapping[str, str]) -> CommitStats: ...

    def close(self) -> None: ...


def engine_name(value: str) -> str:
    """The engine called `value`; a one-line UserError naming the choices for any other name."""
    name = value.strip().lower()
    if name not in ENGINES:
        raise UserError(f"unknown engine {value!r}: choose one of {', '.join(ENGINES)}")
    return name


def open_spark(**inputs: Any) -> ReleaseEngine:
    """A Spark engine holding one build's inputs (`engines.spark.open_release`'s arguments).

    PySpark is imported here, not before: a missing PySpark is a UserError saying what to install.
    """
    try:
        module = importlib.import_module(SPARK_MODULE)
    except ModuleNotFoundError as missing:
        if missing.name is not None and missing.name.split(".")[0] in ("pyspark", "py4j"):
            raise UserError(
                "the spark engine needs PySpark and a Java runtime: pip install 'datalease[spark]'"
            ) from None
        raise
    return cast(ReleaseEngine, module.open_release(**inputs))
