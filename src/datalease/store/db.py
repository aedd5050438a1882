"""Engines, sessions and migrations: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S: Final = 30.0
# Execution option read by the SQLite "begin" hook: "IMMEDIATE" takes the write lock at BEGIN.
SQLITE_BEGIN_OPTION: Final = "datalease_sqlite_begin"


class StoreError(RuntimeError):
    """The database could not be opened or migrated."""


def normalise_url(url: str) -> str:
    """Accept `postgres://` and `postgresql://` and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str, *, pool_size: int | None = None, **kwargs: Any) -> Engine:
    """An Engine for `url`, keeping up to `pool_size` connections open (SQLAlchemy's default when
    None; an in-memory SQLite has its one). SQLite gets WAL, foreign keys, a busy timeout and real
    transactions.

    pysqlite's own transaction handling is switched off so that SQLAlchemy's BEGIN is the one
    sent; a connection carrying the execution option `datalease_sqlite_begin="IMMEDIATE"` begins
    with `BEGIN IMMEDIATE`, taking the write lock up front (used to serialise the consent chain).
    """
    url = normalise_url(url)
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if pool_size is not None and not (sqlite and _in_memory(parsed.database or "")):
        kwargs.setdefault("pool_size", pool_size)
    if not sqlite:
        # A pooled connection the server has ended (a restart, a failover, an administrator) is
        # noticed at checkout and replaced, instead of failing the next request.
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)

    database = parsed.database or ""
    in_memory = _in_memory(database)
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
    connect_args.setdefault("check_same_thread", False)
    if in_memory:
        kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we send BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

    return engine


def _in_memory(database: str) -> bool:
    return database in ("", ":memory:") or database.startswith("file::memory:")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (no expiry on commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextlib.contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with session_factory(engine).begin() as session:
        yield session


# Alembic is imported only when a migration runs: importing it costs a command ~0.3 s at start-up.
def alembic_config(url: str | None = None) -> Config:
    """The Alembic config shipped inside the package (works from an installed wheel)."""
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StoreError(f"no migrations found under {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database (read from `alembic_version`
    with plain SQL: no Alembic import)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(found) > 1:
        raise StoreError(f"the store is at several revisions at once: {', '.join(found)}")
    return found[0] if found else None


def newest_migration() -> str | None:
    """The head as the migration files name it (`NNNN_what.py` holds revision "NNNN", a test holds
    every file to that), without loading the scripts."""
    numbers = sorted(p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return numbers[-1] if numbers else None


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Run the migrations up to `revision` (idempotent); returns the revision reached. A store already
    at the head is found so with one query, without importing Alembic."""
    if revision == "head":
        head = newest_migration()
        if head is not None and current_revision(engine) == head:
            return head
    from alembic import command

    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    reached = current_revision(engine)
    if reached is None:
        raise StoreError("the migrations ran but left no revision behind")
    return reached
