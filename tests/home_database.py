"""Where a test home's store lives: SQLite under the home (default) or a PostgreSQL database of its own.

`DATALEASE_TEST_HOME_DATABASE=postgresql` (with DATALEASE_TEST_PG_URL naming a server whose user may
CREATE DATABASE) puts every home the helpers create on PostgreSQL: the home's database URL is written
to `<home>/test-database-url` (a test-only marker; nothing in src/ reads it), and every helper that
opens a workspace, runs `datalease` or starts a server takes it from there (`release_world.workspace`
and `run_cli`, `cli_harness.cli_env`, `rows`, `count`, `copy_home`, `revocation_world.copy_base`).

New homes are cloned from a template database with the migrations applied (one per session); a copy
of a home clones the source's database (`CREATE DATABASE x TEMPLATE y`, after ending the sessions
still open on it). The databases are dropped when the session ends (`drop_all`, conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Final

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from datalease.store.db import make_engine, normalise_url, upgrade

SELECT_ENV: Final = "DATALEASE_TEST_HOME_DATABASE"
PG_URL_ENV: Final = "DATALEASE_TEST_PG_URL"
MARKER: Final = "test-database-url"
_created: list[str] = []
_template: list[str] = []


def on_postgresql() -> bool:
    return os.environ.get(SELECT_ENV, "sqlite") == "postgresql"


def database_url(home: Path) -> str | None:
    """The home's PostgreSQL URL, or None when its store is SQLite under it."""
    marker = home / MARKER
    return marker.read_text().strip() if marker.exists() else None


def home_env(home: Path) -> dict[str, str]:
    """The settings a `datalease` process on `home` needs besides DATALEASE_HOME."""
    url = database_url(home)
    return {"DATALEASE_DATABASE_URL": url} if url else {}


def _server_url() -> str:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        raise RuntimeError(f"{SELECT_ENV}=postgresql needs {PG_URL_ENV} (a server that may CREATE DATABASE)")
    return normalise_url(url)


def _admin(sql: str, **params: Any) -> None:
    engine = create_engine(_server_url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def _name_of(url: str) -> str:
    name = make_url(url).database or ""
    assert re.fullmatch(r"dl_[a-z0-9_]+", name), name
    return name


def _clone(template: str) -> str:
    """A new database copied from `template`; returns its URL."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"dl_home_{worker}_{uuid.uuid4().hex[:12]}"
    # CREATE DATABASE … TEMPLATE needs nobody connected to the template.
    _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()",
        name=template,
    )
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    _created.append(name)
    return make_url(_server_url()).set(database=name).render_as_string(hide_password=False)


def _template_name() -> str:
    if not _template:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"dl_template_{worker}_{uuid.uuid4().hex[:12]}"
        _admin(f'CREATE DATABASE "{name}"')
        _created.append(name)
        engine = make_engine(make_url(_server_url()).set(database=name).render_as_string(hide_password=False))
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        _template.append(name)
    return _template[0]


def prepare_home(home: Path) -> None:
    """Give a new home its store: on PostgreSQL a migrated database of its own (nothing on SQLite)."""
    if not on_postgresql() or database_url(home) is not None:
        return
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text(_clone(_template_name()))


def copy_home_tree(source: Path, target: Path) -> None:
    """Copy a home: its files, and on PostgreSQL its database (the copy gets a clone of its own)."""
    shutil.copytree(source, target)
    url = database_url(source)
    if url is not None:
        (target / MARKER).write_text(_clone(_name_of(url)))


def drop_home(home: Path) -> None:
    """Drop a home's database now (a test's private copy, at its end); nothing on SQLite."""
    url = database_url(home)
    if url is None:
        return
    name = _name_of(url)
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if name in _created:
        _created.remove(name)


def drop_all() -> None:
    """Drop every database this process created (the session's end)."""
    while _created:
        name = _created.pop()
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _template.clear()
