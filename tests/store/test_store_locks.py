"""store/locks.py: the share/lake lock is exclusive across connections and processes, on SQLite (flock)
and on PostgreSQL (advisory lock keyed by name), and a holder killed with SIGKILL leaves it free."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from datalease.store.locks import lock_key, named_lock


def held_elsewhere(engine: Engine, name: str, lock_file: Path) -> bool:
    """Whether someone else holds the lock (asked without waiting)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(name)}).scalar_one()
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(name)})
            return not got
    with lock_file.open("a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


def test_keys_are_stable_signed_64_bit_and_distinct() -> None:
    keys = {lock_key(f"share:agreement-{n}") for n in range(1000)} | {lock_key("lake")}
    assert len(keys) == 1001
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert lock_key("lake") == lock_key("lake")


def test_lock_is_exclusive_and_released(engine: Engine, tmp_path: Path) -> None:
    lock_file = tmp_path / "share" / ".lock"
    assert not held_elsewhere(engine, "share:a", tmp_path / "free")
    entered = threading.Event()
    inside: list[str] = []
    with named_lock(engine, "share:a", lock_file):
        assert held_elsewhere(engine, "share:a", lock_file)
        if engine.dialect.name == "postgresql":  # one name does not lock another
            assert not held_elsewhere(engine, "share:b", lock_file)

        def second() -> None:
            with named_lock(engine, "share:a", lock_file):
                inside.append("second")
                entered.set()

        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.3)  # still waiting behind us (not a timing assertion on success)
        inside.append("first done")
    thread.join(timeout=60)
    assert inside == ["first done", "second"]
    assert not held_elsewhere(engine, "share:a", lock_file)


HOLDER = """
import sys, time
from pathlib import Path
from datalease.store.db import make_engine
from datalease.store.locks import named_lock
engine = make_engine(sys.argv[1])
with named_lock(engine, "lake", Path(sys.argv[2])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_holder_killed_with_sigkill_leaves_the_lock_free(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    lock_file = tmp_path / "lake" / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db_url, str(lock_file)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert held_elsewhere(engine, "lake", lock_file)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
        # PostgreSQL ends the dead client's session when it reads EOF on its socket: wait for it.
        done = threading.Event()

        def take() -> None:
            with named_lock(engine, "lake", lock_file):
                done.set()

        thread = threading.Thread(target=take, daemon=True)
        thread.start()
        assert done.wait(60), "the lock of a killed holder was never released"
    finally:
        if holder.poll() is None:
            holder.kill()


@pytest.mark.parametrize("name", ["share:x", "lake"])
def test_lock_can_be_taken_again_after_an_error_inside(engine: Engine, tmp_path: Path, name: str) -> None:
    with pytest.raises(RuntimeError), named_lock(engine, name, tmp_path / ".lock"):
        raise RuntimeError("boom")
    assert not held_elsewhere(engine, name, tmp_path / ".lock")


def _waiting(engine: Engine, lock_file: Path) -> bool:
    """Whether a thread is blocked on the lock: on PostgreSQL a session waiting on a lock, on SQLite a
    blocked flock (`->` line in /proc/locks) on the lock file."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            query = (
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return int(conn.execute(text(query)).scalar_one()) > 0
    inode = lock_file.stat().st_ino
    return any("->" in line and f":{inode} " in line for line in Path("/proc/locks").read_text().splitlines())


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_a_holder_asking_again_goes_behind_the_waiter(engine: Engine, tmp_path: Path) -> None:
    """The bulk worker's rule between two chunks: it releases the share lock and asks again at once;
    a single revocation batch already waiting gets the lock first."""
    lock_file = tmp_path / "share" / ".lock"
    order: list[str] = []
    for _ in range(5):  # every round: plain flock lets the releaser win (nearly) every time
        waiter = threading.Thread(target=lambda: _take(engine, lock_file, order, "waiter"))
        with named_lock(engine, "share:a", lock_file):
            waiter.start()
            deadline = threading.Event()
            for _tick in range(3000):
                if _waiting(engine, lock_file):
                    break
                deadline.wait(0.01)  # poll until the waiter blocks on the lock
            else:
                pytest.fail("the waiter never reached the lock")
        _take(engine, lock_file, order, "holder again")
        waiter.join(timeout=60)
    assert order == ["waiter", "holder again"] * 5


def _take(engine: Engine, lock_file: Path, order: list[str], who: str) -> None:
    with named_lock(engine, "share:a", lock_file):
        order.append(who)
