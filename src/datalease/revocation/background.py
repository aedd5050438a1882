"""A daemon thread that repeats one step until stopped; `stop()` lets the step under way finish.
The revocation batches and the bulk withdrawals each run on one, so neither queues behind the other."""

from __future__ import annotations

import threading
from typing import Final

# A loop's pause when it found nothing to do (DATALEASE_REVOCATION_WINDOW_S): an opt-out waits at most
# this long for its batch to start (a batch that delivered is followed at once by the next).
DEFAULT_WINDOW_S: Final = 0.1


class BackgroundLoop:
    name = "datalease-background"
    join_timeout_s = 30.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.join_timeout_s)

    def _run(self) -> None:
        raise NotImplementedError
