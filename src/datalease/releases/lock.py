"""One writer at a time per agreement's share: release builds (at their commit) and revocation batches.

An exclusive `flock` on `<share>/.lock`: released by the kernel when the holder dies (kill -9
included), so a crash never leaves the share locked. It serialises processes on one machine; a
deployment with several writer machines needs a database advisory lock instead.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def share_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
