"""Run the real `datalease` console script in a subprocess and look at what it left behind.

Every call gets its own environment: DATALEASE_HOME (or none), COLUMNS=200 so Rich never wraps a
line we compare, and no other DATALEASE_* variable from the caller's shell.

Known bug, tested on its own in test_cli_errors.py: a command that read the lake sometimes dies
with SIGABRT *after* it finished ("terminate called without an active exception", an Arrow IO
thread destroying a Python-backed file while the interpreter shuts down). Its output is complete
but its exit status is lost. `run` retries read-only commands when that happens; for commands that
write, `expect` skips only the exit-code comparison (with a warning) and every other assertion of
the test — output and stored state — still applies.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from home_database import copy_home_tree, database_url, home_env

DATALEASE: Final = Path(sys.executable).with_name("datalease")
EXAMPLES: Final = Path(str(files("datalease.examples")))
EXAMPLE_POLICY: Final = EXAMPLES / "x-2024.yaml"
EXAMPLE_AGREEMENTS: Final = EXAMPLES / "agreements"
ABORT_SIGNATURE: Final = "terminate called without an active exception"
TIMEOUT_SECONDS: Final = 300


@dataclass(frozen=True)
class Run:
    """What one invocation did."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str  # without the abort signature line, if any

    @property
    def out_lines(self) -> list[str]:
        return [line.rstrip() for line in self.out.splitlines() if line.strip()]

    @property
    def err_lines(self) -> list[str]:
        return [line.rstrip() for line in self.err.splitlines() if line.strip()]

    def json(self) -> Any:
        return json.loads(self.out)

    def describe(self) -> str:
        return f"$ datalease {' '.join(self.args)}\nexit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def cli_env(home: Path | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATALEASE_")}
    env["COLUMNS"] = "200"
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    if home is not None:
        env["DATALEASE_HOME"] = str(home)
        env.update(home_env(home))
    env.update(extra or {})
    return env


def run(
    *args: str | Path,
    home: Path | None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """`datalease ARGS...` with DATALEASE_HOME=home."""
    argv = tuple(str(a) for a in args)
    proc = subprocess.run(
        [str(DATALEASE), *argv],
        env=cli_env(home, env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    return Run(argv, proc.returncode, proc.stdout, proc.stderr)


def expect(result: Run, code: int) -> Run:
    """Assert the exit code; returns the run."""
    assert result.code == code, result.describe()
    return result


def single_error(result: Run, code: int = 2) -> str:
    """The one `error: …` line of a refused command (nothing on stdout); returns the text after `error: `."""
    expect(result, code)
    assert result.out == "", result.describe()
    errors = [line for line in result.err_lines if line.startswith("error: ")]
    assert len(errors) == 1, result.describe()
    assert "Traceback" not in result.err, result.describe()
    return errors[0].removeprefix("error: ")


def only_error_line(result: Run, code: int = 2) -> str:
    """Like `single_error`, and stderr holds nothing else (no progress bar, no traceback)."""
    message = single_error(result, code)
    assert result.err_lines == [f"error: {message}"], result.describe()
    return message


@dataclass(frozen=True)
class Demo:
    """The demo home (never modify it) and facts about it the tests choose inputs from."""

    home: Path
    users: list[dict[str, Any]]  # `users list --limit 0 --json`
    releases: list[dict[str, Any]]  # `release list --json`
    us_user: int  # US, active adult, no consent events, has public live posts
    us_user_posts: int  # its public, undeleted posts created since 2020 (what lumen-genai may take)
    eea_user: int  # EEA, active adult, no consent events

    def user(self, user_id: int) -> dict[str, Any]:
        return next(u for u in self.users if u["user_id"] == user_id)


# --- looking at what a home holds -----------------------------------------------------------------


def copy_home(source: Path, target: Path) -> Path:
    copy_home_tree(source, target)
    return target


@contextmanager
def store(home: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the home's SQLite store."""
    with closing(sqlite3.connect(f"file:{home / 'datalease.db'}?mode=ro", uri=True)) as conn:
        yield conn


def count(home: Path, table: str, where: str = "1=1", params: Sequence[object] = ()) -> int:
    return int(rows(home, f"SELECT count(*) FROM {table} WHERE {where}", params)[0][0])


def rows(home: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Rows of `sql` (`?` placeholders) on the home's store, SQLite or PostgreSQL (home_database.py)."""
    url = database_url(home)
    if url is None:
        with store(home) as conn:
            return list(conn.execute(sql, params).fetchall())
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(sql.replace("%", "%%").replace("?", "%s"), tuple(params))
            return [tuple(r) for r in result.fetchall()] if result.returns_rows else []
    finally:
        engine.dispose()


def lake_version(home: Path, table: str) -> int | None:
    """The Delta version of source table `table` from its commit files (None if it has none)."""
    log = home / "lake" / "source" / table / "_delta_log"
    versions = [int(p.stem) for p in log.glob("*.json")] if log.is_dir() else []
    return max(versions) if versions else None


def tree(path: Path) -> set[str]:
    """Every file under `path`, relative, to compare before/after."""
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()} if path.exists() else set()


def store_dump(home: Path) -> list[str]:
    """Every table of the home's SQLite store as SQL statements (schema and rows), to compare before/after."""
    with store(home) as conn:
        return list(conn.iterdump())
