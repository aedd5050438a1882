"""Named exclusive locks between processes: one writer at a time of a share, and of the lake.

The lock is chosen by the store's database:
- PostgreSQL: a session advisory lock (`pg_advisory_lock`) keyed by the name (a 64-bit key from its
  SHA-256), taken on a connection of its own in autocommit (no transaction stays open while it is
  held). Every process and every machine that uses the same database sees it; the server releases
  it when the holder's connection ends — a process killed with SIGKILL included.
- SQLite: an exclusive `flock` on a file (`<share>/.lock`, `<lake>/.lock`); the kernel releases it
  when the holder dies. It serialises processes on one machine only, which is what SQLite allows.

Both hand the lock over in turn: a holder that releases it and asks again (the bulk worker between
two chunks) goes behind a waiter (a single revocation batch). PostgreSQL's lock manager queues a new
request behind the waiting ones; `flock` does not (whoever asks first after the release wins, and
the releaser always asks first), so the file lock is taken through a gate (`<file>.gate`): a waiter
holds the gate while it waits, and the releaser's next request waits at the gate until the waiter
has the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text


def lock_key(name: str) -> int:
    """The advisory lock key of a name: a signed 64-bit integer (PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def named_lock(engine: Engine, name: str, lock_file: Path) -> Iterator[None]:
    """Hold the lock `name` (PostgreSQL) or an exclusive flock on `lock_file` (SQLite) inside the block."""
    if engine.dialect.name == "postgresql":
        with advisory_lock(engine, name):
            yield
        return
    with file_lock(lock_file):
        yield


@contextlib.contextmanager
def advisory_lock(engine: Engine, name: str) -> Iterator[None]:
    key = lock_key(name)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            except Exception:
                # The connection is broken: its session (and the lock) ends with it; never pool it.
                conn.invalidate()
                raise


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        with _exclusive(gate_file(path)):
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def gate_file(lock_file: Path) -> Path:
    """Where a waiter for `lock_file` queues (see the module's docstring)."""
    return lock_file.with_name(lock_file.name + ".gate")


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with path.open("a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
