"""Two batches at once — the server's worker and a release build (which delivers pending revocations
before it starts), or `datalease revoke process` — must still deliver each (intent, agreement) once
and neither may fail.

Deterministic: the test holds every share's lock, starts two batches in threads, waits until both
are blocked (on SQLite `/proc/locks` lists the flock's waiters; on PostgreSQL `pg_stat_activity`
shows them waiting on a lock: the share's advisory lock, or the other batch's claim), then lets them go.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cli_harness import rows
from release_world import LUMEN, workspace
from revocation_world import RELEASED, heavy_users
from sqlalchemy import text

from datalease.policy.vocabulary import MASTER_KEY
from datalease.revocation.worker import BatchResult, process_pending
from datalease.store.locks import gate_file
from datalease.workspace import Workspace

# Run again with the homes on PostgreSQL (make test, README "Tests").
pytestmark = pytest.mark.postgresql_homes

WAIT_S = 60.0


def waiters(lock_file: Path) -> int:
    """Processes/threads blocked on the flock of `lock_file` (the `->` lines of /proc/locks)."""
    inode = lock_file.stat().st_ino
    text = Path("/proc/locks").read_text()
    return sum(1 for line in text.splitlines() if "->" in line and f":{inode} " in line)


def blocked(ws: Workspace, lock_files: list[Path]) -> int:
    """Batches waiting on a lock: on SQLite the flocks of the shares; on PostgreSQL any lock (the
    first batch waits on the share's advisory lock, the second on the first one's intent claim)."""
    if ws.engine.dialect.name == "postgresql":
        with ws.engine.connect() as conn:
            query = (
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return int(conn.execute(text(query)).scalar_one())
    return sum(waiters(f) for f in lock_files)


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_two_batches_at_once_deliver_once_and_both_finish(home: Workspace) -> None:
    ws = home
    path = ws.settings.resolved_home
    user = heavy_users(ws, LUMEN, 1)[0]
    ws.ledger.record(user, MASTER_KEY, False)
    ((intent,),) = rows(path, "SELECT max(intent_id) FROM revocation_intents")
    results: list[BatchResult | BaseException] = []

    def batch() -> None:
        other = workspace(path)
        try:
            results.append(process_pending(other))
        except BaseException as exc:
            results.append(exc)
        finally:
            other.engine.dispose()

    directories = [ws.share_dir(a) for a in RELEASED]
    threads = [threading.Thread(target=batch) for _ in range(2)]
    with ws.share_lock(RELEASED[0]), ws.share_lock(RELEASED[1]):
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + WAIT_S
        # The first waiter of a share waits on its lock, the next one at its gate (store/locks.py).
        lock_files = [f for d in directories for f in (d / ".lock", gate_file(d / ".lock"))]
        while blocked(ws, lock_files) < 2:
            assert time.monotonic() < deadline, "the two batches never reached the share lock"
            assert all(t.is_alive() for t in threads), results
            threading.Event().wait(0.01)  # poll interval while the batches prepare
    for thread in threads:
        thread.join(timeout=300)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"a batch failed: {failures[0]!r}"
    assert rows(
        path,
        "SELECT agreement_id, count(*) FROM revocation_deliveries WHERE intent_id = ? GROUP BY agreement_id",
        (intent,),
    ) == sorted((a, 1) for a in RELEASED)
    assert rows(path, "SELECT count(*) FROM revocation_intents WHERE processed_at IS NULL") == [(0,)]
