"""The worker's loop: after a batch that delivered intents it looks again at once — an opt-out
recorded while that batch ran does not wait out the pause — and it pauses only after a batch that
found nothing to deliver."""

from __future__ import annotations

import threading
import time

from datalease.policy.vocabulary import MASTER_KEY
from datalease.revocation.worker import BatchResult, run_batches
from datalease.workspace import Workspace

AN_HOUR = 3600.0
GUARD_S = 120.0  # only against a hang: the loop under test never waits this long when it works


def test_a_batch_that_delivered_is_followed_at_once_by_the_next(home: Workspace) -> None:
    ws = home
    first, second = [u["user_id"] for u in ws.lake.read("users").to_pylist()[:2]]
    ws.ledger.record(first, MASTER_KEY, False)
    results: list[BatchResult] = []
    stop = threading.Event()

    def on_batch(result: BatchResult) -> None:
        results.append(result)
        if len(results) == 1:  # recorded after the first batch: only a pause-free loop delivers it
            ws.ledger.record(second, MASTER_KEY, False)

    loop = threading.Thread(
        target=run_batches, args=(ws, stop), kwargs={"window_s": AN_HOUR, "on_batch": on_batch}
    )
    loop.start()
    deadline = time.monotonic() + GUARD_S
    while len(results) < 3 and time.monotonic() < deadline and loop.is_alive():
        time.sleep(0.05)
    stop.set()
    loop.join(timeout=GUARD_S)
    assert not loop.is_alive()
    assert [r.intents for r in results] == [1, 1, 0], results  # then it pauses (an hour here)
