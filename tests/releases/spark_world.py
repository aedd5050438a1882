"""The Spark side of the release tests: one SparkSession for the whole test session, started with
JVM options for tiny worlds (C1-only JIT, serial GC, no whole-stage code generation, few shuffle
partitions) — tests only; production keeps Spark's defaults.

The build asks `engines.spark.spark_session` for the master its settings name; started here first with
the same master, the build reuses this session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

pytest.importorskip("pyspark")

from pyspark.sql import SparkSession
from release_oracle import Row

from datalease.config import Settings
from datalease.releases.engines.spark import spark_session

SMALL_WORLD = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:CICompilerCount=1",
    "spark.executor.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:CICompilerCount=1",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "2",
}


def spark_master() -> str:
    return Settings().spark_master


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    yield spark_session(spark_master(), "1g", SMALL_WORLD)


# The support tables' rows carry what each home recorded, not what an engine computed: when a
# revocation was recorded (forget), when a build committed and the chain hash of the events each home
# recorded on its own, with its own recording instants (ledger_head; the seq is the same).
RECORDED = {
    "forget": frozenset({"requested_at", "deadline"}),
    "ledger_head": frozenset({"committed_at", "consent_hash"}),
}


def engine_rows(contents: dict[str, Counter[Row]]) -> dict[str, Counter[Row]]:
    return {
        c: Counter({tuple(f for f in row if f[0] not in RECORDED[c]): n for row, n in rows.items()})
        if c in RECORDED
        else rows
        for c, rows in contents.items()
    }
