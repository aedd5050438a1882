"""Choosing the release engine: `--engine` and DATALEASE_ENGINE name it; any other name is a one-line
error naming the choices, before anything is read or written (no pending revocation delivered, no
table, no ledger row); the ledger records the engine; nothing but the Spark engine imports PySpark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from release_world import LUMEN, T0

from datalease.errors import UserError
from datalease.releases.engines import engine_name
from datalease.services.releases import build_release
from datalease.store.releases import list_releases
from datalease.workspace import Workspace

DATALEASE = Path(sys.executable).with_name("datalease")


def ledger_size(ws: Workspace) -> int:
    with ws.session() as session:
        return len(list_releases(session))


def test_engine_names() -> None:
    assert engine_name("duckdb") == "duckdb"
    assert engine_name(" Spark ") == "spark"
    with pytest.raises(UserError, match=r"^unknown engine 'presto': choose one of duckdb, spark$"):
        engine_name("presto")


def test_an_unknown_engine_writes_nothing(world: Workspace) -> None:
    shares = world.settings.resolved_home / "shares"
    before = sorted(p.relative_to(shares) for p in shares.rglob("*")) if shares.exists() else []
    with pytest.raises(UserError, match="choose one of duckdb, spark"):
        build_release(world, LUMEN, at=T0, engine="velox")
    after = sorted(p.relative_to(shares) for p in shares.rglob("*")) if shares.exists() else []
    assert after == before
    assert ledger_size(world) == 0


def test_the_ledger_records_the_engine(world: Workspace) -> None:
    result = build_release(world, LUMEN, at=T0, engine="duckdb")
    assert result.release.engine == "duckdb"
    with world.session() as session:
        assert [r.engine for r in list_releases(session, LUMEN)] == ["duckdb"]


def run_cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DATALEASE_")}
    return subprocess.run(
        [str(DATALEASE), *args],
        env={**clean, "DATALEASE_HOME": str(home), "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--engine", "hive"), {}),
        ((), {"DATALEASE_ENGINE": "hive"}),
    ],
)
def test_the_cli_names_the_choices_in_one_line(
    world: Workspace, args: tuple[str, ...], env: dict[str, str]
) -> None:
    home = world.settings.resolved_home
    run = run_cli(home, "release", "build", LUMEN, "--at", T0.isoformat(), *args, **env)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == ["error: unknown engine 'hive': choose one of duckdb, spark"]
    assert ledger_size(world) == 0
    assert not (home / "shares" / LUMEN).exists()


def test_nothing_else_imports_pyspark() -> None:
    """The CLI, the app and a DuckDB build's modules load without PySpark (it costs a second)."""
    code = (
        "import sys, datalease.cli, datalease.app, datalease.services.releases, datalease.releases.build\n"
        "assert not any(m.split('.')[0] in ('pyspark', 'py4j') for m in sys.modules), 'pyspark imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.spark
def test_spark_without_a_java_runtime_is_a_clear_error(world: Workspace) -> None:
    """No JVM (here: JAVA_HOME pointing nowhere): exit 2, an error saying what Spark needs, nothing written."""
    pytest.importorskip("pyspark")
    home = world.settings.resolved_home
    run = run_cli(
        home, "release", "build", LUMEN, "--at", T0.isoformat(), "--engine", "spark", JAVA_HOME="/nonexistent"
    )
    assert run.returncode == 2, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: could not start Spark for local[*]") and "Java runtime >= 17" in last
    assert ledger_size(world) == 0
    assert not any((home / "shares" / LUMEN).rglob("*.parquet"))
