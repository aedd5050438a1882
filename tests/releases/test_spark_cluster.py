"""A release built on a real Spark standalone cluster (a master and two one-core workers on
127.0.0.1, started from the PySpark install) by the `datalease` command with DATALEASE_SPARK_MASTER
and `--engine spark`: a full build then an incremental one, each equal to DuckDB's tables, and the
master lists the build's application (its tasks ran on the workers' executors)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from release_oracle import pinned_contents
from release_world import AGREEMENTS, LUMEN, T0, copy_home
from spark_world import SMALL_WORLD, engine_rows

from datalease.policy.vocabulary import MASTER_KEY
from datalease.services.releases import build_release
from datalease.store.releases import latest_release
from datalease.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: benchmarks/
from benchmarks.spark_cluster import Cluster, standalone_cluster

pytestmark = pytest.mark.spark

DATALEASE = Path(sys.executable).with_name("datalease")
AGREEMENT = AGREEMENTS[0]
assert AGREEMENT == LUMEN


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with standalone_cluster(tmp_path_factory.mktemp("cluster"), workers=2, conf=SMALL_WORLD) as running:
        yield running


def build_on(cluster: Cluster, home: Path, *args: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATALEASE_", "PYSPARK_"))}
    env = {
        **clean,
        **cluster.env,
        "DATALEASE_HOME": str(home),
        "DATALEASE_SPARK_MASTER": cluster.master_url,
        "DATALEASE_SPARK_MEMORY": "512m",
    }
    run = subprocess.run(
        [str(DATALEASE), "release", "build", AGREEMENT, "--engine", "spark", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return run.stdout


def contents(ws: Workspace) -> object:
    with ws.session() as session:
        release = latest_release(session, AGREEMENT)
    assert release is not None
    return release.engine, engine_rows(pinned_contents(ws, release))


def test_a_standalone_cluster_builds_the_same_tables(
    cluster: Cluster, base_home: Path, tmp_path: Path
) -> None:
    spark_home, duck = copy_home(base_home, tmp_path / "spark"), copy_home(base_home, tmp_path / "duckdb")
    try:
        build_on(cluster, spark_home.settings.resolved_home, "--at", T0.isoformat())
        build_release(duck, AGREEMENT, at=T0, engine="duckdb")
        assert contents(spark_home) == ("spark", contents(duck)[1])
        later = T0 + timedelta(hours=3)
        for ws in (spark_home, duck):  # the same opt-out in both homes: an incremental build
            with ws.session() as session:
                release = latest_release(session, AGREEMENT)
            assert release is not None
            user_id = min(ws.lake.read("users").column("user_id").to_pylist())
            ws.ledger.record(user_id, MASTER_KEY, False, at=T0 + timedelta(hours=1))
        out = build_on(cluster, spark_home.settings.resolved_home, "--at", later.isoformat())
        build_release(duck, AGREEMENT, at=later, engine="duckdb")
        assert contents(spark_home) == ("spark", contents(duck)[1]), out
        with spark_home.session() as session:
            release = latest_release(session, AGREEMENT)
        assert release is not None and not release.full_build
        apps = [a["name"] for a in cluster.status().get("completedapps", [])]
        assert apps.count("datalease release") == 2, cluster.status()
    finally:
        spark_home.engine.dispose()
        duck.engine.dispose()
