"""The store on real SQLite and PostgreSQL: migrations, append-only triggers, timestamps, revisions."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, inspect, select, text
from sqlalchemy.exc import DBAPIError, StatementError

from datalease.store import (
    Base,
    PolicyRevision,
    current_revision,
    get_policy_revision,
    head_revision,
    latest_policy_revision,
    list_policy_revisions,
    make_engine,
    save_policy_revision,
    session_scope,
    upgrade,
)
from datalease.store.db import MIGRATIONS_DIR, newest_migration, normalise_url

TABLES = {"consent_events", "consent_current", "consent_chain_head", "policy_revisions", "meta"}


def test_upgrade_twice_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == head_revision()
        assert upgrade(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            head = conn.exec_driver_sql("SELECT id, last_seq, last_hash FROM consent_chain_head").all()
        assert head == [(1, 0, "0" * 64)]
    finally:
        engine.dispose()


def test_each_migration_file_names_its_revision_and_the_newest_is_the_head() -> None:
    """`upgrade` finds a store at the head without Alembic by the file names: they must say it."""
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    for script in scripts.walk_revisions():
        assert script.path is not None
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
    assert newest_migration() == head_revision() == scripts.get_current_head()


def test_a_store_one_migration_behind_the_head_is_migrated(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert upgrade(engine, "0013") == "0013"
        assert "notice_sha256" not in {c["name"] for c in inspect(engine).get_columns("consent_events")}
        assert upgrade(engine) == head_revision() == current_revision(engine)
        assert "notice_sha256" in {c["name"] for c in inspect(engine).get_columns("consent_events")}
    finally:
        engine.dispose()


def test_models_match_the_migrations(engine: Engine) -> None:
    """The models of this module's tables describe exactly what the migrations create."""
    mine = MetaData()
    for name in sorted(TABLES):
        Base.metadata.tables[name].to_metadata(mine)

    def only_mine(name: str | None, type_: str, parent_names: object) -> bool:
        return type_ != "table" or name in TABLES

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False, "include_name": only_mine})
        diff = compare_metadata(context, mine)
    assert diff == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_events SET value = NOT value",
        "DELETE FROM consent_events",
    ],
    ids=["update", "delete"],
)
def test_triggers_refuse_update_and_delete(engine: Engine, statement: str) -> None:
    from datalease.consent.ledger import ConsentLedger

    ledger = ConsentLedger(engine)
    ledger.record(1, "share_with_partners", False)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql(statement)
    assert ledger.count() == 1
    assert ledger.verify().ok


@pytest.mark.postgres
def test_truncate_refused_on_postgres(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        upgrade(engine)
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE consent_events CASCADE")
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "instant",
    [
        datetime(2024, 11, 15, 10, 0, tzinfo=UTC),
        datetime(2024, 3, 31, 1, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=2))),
        datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=-7, minutes=-30))),
        datetime(2038, 1, 19, 3, 14, 8, 123_456, tzinfo=UTC),
    ],
)
def test_timestamps_round_trip_as_aware_utc(engine: Engine, instant: datetime) -> None:
    with session_scope(engine) as session:
        revision_id = save_policy_revision(session, "p", "x", "0" * 64, "ops", applied_at=instant)
    with session_scope(engine) as session:
        stored = get_policy_revision(session, revision_id)
        assert stored is not None
        assert stored.applied_at == instant
        assert stored.applied_at.tzinfo == UTC
        assert stored.applied_at.utcoffset() == timedelta(0)
        # comparisons happen in the database, on the stored form
        later = session.scalars(select(PolicyRevision.id).where(PolicyRevision.applied_at > instant)).all()
        at_or_before = session.scalars(
            select(PolicyRevision.id).where(PolicyRevision.applied_at <= instant.astimezone(UTC))
        ).all()
    assert later == []
    assert at_or_before == [revision_id]


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="timezone-aware"), session_scope(engine) as session:
        session.add(
            PolicyRevision(
                name="p", source_text="x", sha256="0" * 64, applied_at=datetime(2024, 1, 1), applied_by="ops"
            )
        )
        session.flush()


def test_policy_revisions(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert latest_policy_revision(session) is None
        assert list_policy_revisions(session) == []
    texts = ["version: 1\n", "version: 2\n"]
    ids = []
    for number, source in enumerate(texts, start=1):
        digest = hashlib.sha256(source.encode()).hexdigest()
        with session_scope(engine) as session:
            ids.append(save_policy_revision(session, f"x-2024 v{number}", source, digest, "alice"))
    assert ids[0] < ids[1]
    with session_scope(engine) as session:
        latest = latest_policy_revision(session)
        assert latest is not None
        assert (latest.id, latest.name, latest.source_text) == (ids[1], "x-2024 v2", "version: 2\n")
        assert latest.sha256 == hashlib.sha256(b"version: 2\n").hexdigest()
        assert latest.applied_by == "alice"
        assert latest.applied_at.tzinfo == UTC
        assert [r.id for r in list_policy_revisions(session)] == ids
        assert get_policy_revision(session, 999) is None


def test_policy_revision_errors_name_the_field(engine: Engine) -> None:
    with session_scope(engine) as session:
        with pytest.raises(ValueError, match=r"^sha256: expected 64 lowercase hex digits"):
            save_policy_revision(session, "p", "x", "abc", "alice")
        with pytest.raises(ValueError, match=r"^applied_by: "):
            save_policy_revision(session, "p", "x", "0" * 64, " ")
        assert list_policy_revisions(session) == []


def test_sqlite_engine_settings(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/nested/dir/store.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()


def test_in_memory_sqlite_works(tmp_path: object) -> None:
    engine = make_engine("sqlite://")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT last_seq FROM consent_chain_head")).scalar() == 0
    finally:
        engine.dispose()


def test_postgres_urls_use_psycopg() -> None:
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
