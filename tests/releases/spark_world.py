"""The Spark side of the release tests: one SparkSession for the whole test session, started with
JVM options for tiny worlds (C1-only JIT, serial GC, no whole-stage code generation, few shuffle
partitions) — tests only; production keeps Spark's defaults.

The build asks `engines.spark.spark_session` for the master its settings name; started here first with
the same master, the build reuses this session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("pyspark")

from pyspark.sql import SparkSession

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
