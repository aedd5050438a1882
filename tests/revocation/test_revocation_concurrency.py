"""Two batches at once — the server's worker and a release build (which delivers pending revocations
before it starts), or `datalease revoke process` — must still deliver each (intent, agreement) once
and neither may fail.

Deterministic: the test holds every share's lock, starts two batches in threads, waits until both
are blocked on the lock (`/proc/locks` lists the waiters), then lets them go.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cli_harness import rows
from release_world import LUMEN, workspace
from revocation_world import RELEASED, heavy_users

from datalease.policy.vocabulary import MASTER_KEY
from datalease.revocation.worker import BatchResult, process_pending
from datalease.store.locks import file_lock
from datalease.workspace import Workspace

WAIT_S = 60.0


def waiters(lock_file: Path) -> int:
    """Processes/threads blocked on the flock of `lock_file` (the `->` lines of /proc/locks)."""
    inode = lock_file.stat().st_ino
    text = Path("/proc/locks").read_text()
    return sum(1 for line in text.splitlines() if "->" in line and f":{inode} " in line)


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
    with file_lock(directories[0] / ".lock"), file_lock(directories[1] / ".lock"):
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + WAIT_S
        lock_files = [d / ".lock" for d in directories]
        while sum(waiters(f) for f in lock_files) < 2:
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
