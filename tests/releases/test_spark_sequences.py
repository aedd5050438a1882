"""The release oracle's generated sequences on both engines: the same platform history built with
DuckDB in one home and with Spark in another gives, after every build, identical tables — the same
keys, rows and values at every pinned version (so the same change feed between released versions),
the same Delta schema, the same row counts in the ledger — and Spark's tables satisfy the oracle.

One SparkSession for the whole test session (spark_world.py); the world is release_world's 200 users.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable
from hypothesis import given, settings
from pyspark.sql import SparkSession
from release_oracle import Row, check_release, load_source, pinned_contents, share_table
from release_world import AGREEMENTS, T0, Platform, copy_home
from spark_world import engine_rows, spark  # noqa: F401  (spark: the session fixture)
from test_release_sequence import SETTINGS, Step, apply_change, every_kind, step_strategy

from datalease.services.releases import build_release
from datalease.store.releases import latest_release, list_releases
from datalease.workspace import Workspace

pytestmark = pytest.mark.spark

ENGINES = ("duckdb", "spark")


def build_all(ws: Workspace, engine: str, at: datetime, *, full: bool) -> None:
    for agreement_id in AGREEMENTS:
        result = build_release(ws, agreement_id, at=at, full=full, engine=engine)
        assert result.release.engine == engine  # the ledger records the engine
        assert result.release.full_build == full, f"{agreement_id}: {result.full_reason}"


def feed(ws: Workspace) -> dict[str, list[dict[str, tuple[Counter[Row], Counter[Row]]]]]:
    """Per agreement, per release: each table's rows added and removed since the previous release."""
    out: dict[str, list[dict[str, tuple[Counter[Row], Counter[Row]]]]] = {}
    with ws.session() as session:
        for agreement_id in AGREEMENTS:
            history = sorted(list_releases(session, agreement_id), key=lambda r: r.release_id)
            previous: dict[str, Counter[Row]] = {}
            changes = []
            for release in history:
                contents = engine_rows(pinned_contents(ws, release))
                changes.append(
                    {
                        c: (rows - previous.get(c, Counter()), previous.get(c, Counter()) - rows)
                        for c, rows in contents.items()
                    }
                )
                previous = contents
            out[agreement_id] = changes
    return out


def assert_same_tables(homes: dict[str, Workspace]) -> None:
    duck, spark_home = homes["duckdb"], homes["spark"]
    with duck.session() as a, spark_home.session() as b:
        for agreement_id in AGREEMENTS:
            left, right = latest_release(a, agreement_id), latest_release(b, agreement_id)
            assert left is not None and right is not None
            assert engine_rows(pinned_contents(duck, left)) == engine_rows(pinned_contents(spark_home, right))
            for x, y in zip(left.tables, right.tables, strict=True):
                assert (x.category, x.rows_total, x.rows_added, x.rows_removed) == (
                    y.category,
                    y.rows_total,
                    y.rows_added,
                    y.rows_removed,
                ), agreement_id
                schemas = [
                    DeltaTable(str(share_table(ws, agreement_id, x.category))).schema().to_json()
                    for ws in (duck, spark_home)
                ]
                assert schemas[0] == schemas[1], (agreement_id, x.category)
            assert left.excluded == right.excluded, agreement_id
    assert feed(duck) == feed(spark_home)


def run_on_both(base_home: Path, scratch: Path, sequence: list[Step]) -> None:
    homes = {engine: copy_home(base_home, scratch / engine) for engine in ENGINES}
    try:
        for engine, ws in homes.items():
            build_all(ws, engine, T0, full=True)
        assert_same_tables(homes)
        at = T0
        for number, step in enumerate(sequence, start=1):
            following = at + timedelta(hours=step.hours)
            for engine, ws in homes.items():
                platform = Platform.read(ws, scratch / f"{engine}-input-{number}")
                for change in step.changes:
                    apply_change(ws, platform, change, at, following)
                platform.flush()
                build_all(ws, engine, following, full=step.full)
            source = load_source(homes["spark"], following)
            for agreement_id in AGREEMENTS:
                check_release(homes["spark"], agreement_id, source)
            assert_same_tables(homes)
            at = following
    finally:
        for ws in homes.values():
            ws.engine.dispose()


@settings(SETTINGS, max_examples=1)
@given(generated=step_strategy())
def test_generated_sequence_gives_identical_tables_on_duckdb_and_spark(
    spark: SparkSession,  # noqa: F811
    base_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
    generated: Step,
) -> None:
    """A full build, then one incremental build over every kind of change (inside the step and
    backdated) plus a generated step's changes — one step, to keep Spark's share of CI short."""
    changes = every_kind(0.3, 5) + every_kind(-0.5, 23) + generated.changes
    sequence = [Step(changes, generated.hours, False)]
    run_on_both(base_home, tmp_path_factory.mktemp("engines"), sequence)
