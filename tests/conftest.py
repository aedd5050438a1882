"""Shared store/database fixtures: every store and ledger test runs on SQLite AND PostgreSQL.

PostgreSQL comes from, in order:
  1. DATALEASE_TEST_PG_URL — a server URL whose user may CREATE DATABASE, e.g.
     postgresql://postgres@127.0.0.1:5432/postgres; each test gets its own database on it;
  2. else a throwaway server this session starts itself when `pg_ctl` is installed (initdb into a
     temp dir, a free port on 127.0.0.1, fsync off; as root it runs as the `postgres` user), stopped
     at the end of the session — one per pytest-xdist worker;
  3. else the postgres tests are skipped — unless DATALEASE_REQUIRE_PG=1 (CI), which makes them fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from datalease.store.db import make_engine, normalise_url, upgrade
from home_database import drop_all

PG_URL_ENV = "DATALEASE_TEST_PG_URL"
REQUIRE_PG_ENV = "DATALEASE_REQUIRE_PG"
PG_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/local/pgsql/bin")


@dataclass
class PgServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    admin_url: str  # SQLAlchemy URL of a database to run CREATE/DROP DATABASE from
    owned_dir: Path | None = None  # data directory of a server this session started

    def _admin(self) -> Engine:
        return create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def create_database(self) -> tuple[str, str]:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"dl_test_{worker}_{uuid.uuid4().hex[:12]}"
        admin = self._admin()
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        url = make_url(self.admin_url).set(database=name)
        return name, url.render_as_string(hide_password=False)

    def drop_database(self, name: str) -> None:
        admin = self._admin()
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


def _find_pg_tool(tool: str) -> str | None:
    found = shutil.which(tool)
    if found:
        return found
    for directory in PG_BIN_DIRS:
        candidate = Path(directory) / tool
        if candidate.exists():
            return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres_user(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _start_throwaway_pg(pg_ctl: str, initdb: str) -> PgServer:
    data_dir = Path(tempfile.mkdtemp(prefix="datalease-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data_dir, user="postgres", group="postgres")
    log = data_dir / "server.log"
    subprocess.run(
        _as_postgres_user(
            [
                initdb,
                "-D",
                str(data_dir / "data"),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
        text=True,
    )
    last_error = ""
    for _ in range(3):
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {data_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        started = subprocess.run(
            _as_postgres_user(
                [pg_ctl, "-D", str(data_dir / "data"), "-o", options, "-l", str(log), "-w", "start"]
            ),
            capture_output=True,
            text=True,
        )
        if started.returncode == 0:
            return PgServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", owned_dir=data_dir)
        last_error = started.stdout + started.stderr + (log.read_text() if log.exists() else "")
    shutil.rmtree(data_dir, ignore_errors=True)
    raise RuntimeError(f"could not start a throwaway PostgreSQL server:\n{last_error}")


def _stop_throwaway_pg(pg_ctl: str, server: PgServer) -> None:
    assert server.owned_dir is not None
    subprocess.run(
        _as_postgres_user([pg_ctl, "-D", str(server.owned_dir / "data"), "-m", "immediate", "-w", "stop"]),
        capture_output=True,
        check=False,
    )
    shutil.rmtree(server.owned_dir, ignore_errors=True)


def _no_postgres(reason: str) -> None:
    if os.environ.get(REQUIRE_PG_ENV) == "1":
        pytest.fail(f"{REQUIRE_PG_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | str]:
    """The PostgreSQL server for this session, or a text saying why there is none."""
    url = os.environ.get(PG_URL_ENV)
    if url:
        yield PgServer(normalise_url(url))
        return
    pg_ctl, initdb = _find_pg_tool("pg_ctl"), _find_pg_tool("initdb")
    if pg_ctl is None or initdb is None:
        yield f"no PostgreSQL: {PG_URL_ENV} is not set and pg_ctl/initdb are not installed"
        return
    try:
        server = _start_throwaway_pg(pg_ctl, initdb)
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        yield f"no PostgreSQL: starting a throwaway server failed: {detail}"
        return
    try:
        yield server
    finally:
        _stop_throwaway_pg(pg_ctl, server)


@pytest.fixture
def postgres_url(pg_server: PgServer | str) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    if isinstance(pg_server, str):
        _no_postgres(pg_server)
        raise AssertionError("unreachable")
    name, url = pg_server.create_database()
    try:
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty database: SQLite under tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'datalease.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated Engine on a fresh database (ids: sqlite, postgres)."""
    eng = make_engine(db_url)
    try:
        upgrade(eng)
        yield eng
    finally:
        eng.dispose()


CONSENT_TABLES = ("consent_events", "consent_current", "consent_chain_head")


@contextlib.contextmanager
def tampering(engine: Engine) -> Iterator[None]:
    """Switch the consent triggers off — append-only events, derived consent_current and chain
    head — as someone with database access could."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            names = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (?, ?, ?)",
                CONSENT_TABLES,
            ).scalars()
            for name in list(names):
                conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        else:
            for table in CONSENT_TABLES:
                conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    yield


@pytest.fixture
def tamper(engine: Engine) -> object:
    """`tamper(sql, ...)` runs raw SQL on the consent tables behind the code's back (triggers off)."""

    def run(*statements: str) -> None:
        with tampering(engine), engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)

    return run


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the PostgreSQL databases of the test homes (tests/home_database.py)."""
    drop_all()
