"""Metering without a commit per request: each server process appends one JSON line per answered
request to its own log, `<home>/sharing/usage/<pid>-<random>.log` (O_APPEND, held with an exclusive
flock while the process lives), *before* the answer leaves. A thread folds the new lines into
`sharing_usage` once a second, in one transaction that also moves the log's folded offset
(store/usage_log.py), so a line counts once whoever folds it.

What a kill -9 loses: nothing that was answered — the lines are in the kernel's page cache when the
answer is sent and the log outlives the process; the next server start, the next `datalease usage`
(and `fold_all`, which billing calls) folds the dead writer's log and deletes it. A machine crash (power
loss) can lose the lines not yet written back to disk, at most about the last second of requests.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Final

from datalease.sharing.model import Usage
from datalease.store.usage_log import ensure_log, fold_lines, folded_offset
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

FOLD_EVERY_S: Final = 1.0
SUFFIX: Final = ".log"


def usage_dir(ws: Workspace) -> Path:
    return ws.settings.resolved_home / "sharing" / "usage"


def _line(usage: Usage, at: datetime) -> bytes:
    fields = [at.isoformat(), usage.partner, usage.agreement_id, usage.table, usage.action]
    return (json.dumps([*fields, usage.files, usage.rows, usage.bytes]) + "\n").encode()


def _parse(data: bytes) -> Iterator[tuple[Usage, datetime]]:
    for raw in data.splitlines():
        at, partner, agreement, table, action, files, rows, sent = json.loads(raw)
        yield Usage(partner, agreement, table, action, files, rows, sent), datetime.fromisoformat(at)


def fold(ws: Workspace, path: Path) -> int:
    """Fold the complete lines of `path` not folded yet; the number of lines folded."""
    with ws.write_session() as session, session.begin():
        offset = folded_offset(session, path.name)
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1  # a line still being written is left for the next fold
        if end == 0:
            return 0
        lines = list(_parse(data[:end]))
        fold_lines(session, path.name, lines, offset + end)
    return len(lines)


def fold_all(ws: Workspace) -> int:
    """Fold every usage log of this home (call before reading `usage_totals`, e.g. for invoices);
    the logs of dead writers (their flock is free) are folded to the end and deleted."""
    folded = 0
    directory = usage_dir(ws)
    if not directory.is_dir():
        return 0
    for path in sorted(directory.glob("*" + SUFFIX)):
        with contextlib.suppress(FileNotFoundError), path.open("rb") as probe:
            try:
                fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a live server: fold what it wrote so far
                folded += fold(ws, path)
                continue
            folded += fold(ws, path)
            path.unlink()  # dead and folded to its last complete line (its offset row stays)
    return folded


class UsageLog:
    """This process's log and its folding thread."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        directory = usage_dir(ws)
        directory.mkdir(parents=True, exist_ok=True)
        fold_all(ws)  # what dead servers left behind
        self.path = directory / f"{os.getpid()}-{secrets.token_hex(6)}{SUFFIX}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # read-then-write: BEGIN IMMEDIATE on SQLite, or a server starting beside another one that
        # writes in between fails at once with "database is locked" (seen starting two servers)
        with ws.write_session() as session, session.begin():
            ensure_log(session, self.path.name)
        self._written = threading.Event()
        self._stop = threading.Event()
        self._fold_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="usage-fold", daemon=True)
        self._thread.start()

    def append(self, usage: Usage, at: datetime | None = None) -> None:
        """One line, in one write(2) (O_APPEND: whole lines even with several threads)."""
        os.write(self._fd, _line(usage, at or utc_now()))
        self._written.set()

    def fold_now(self) -> int:
        """Fold what this process wrote since the last fold (nothing to do: no database access)."""
        with self._fold_lock:
            if not self._written.is_set():
                return 0
            self._written.clear()
            return fold(self.ws, self.path)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._written.wait(FOLD_EVERY_S) and not self._stop.wait(FOLD_EVERY_S):
                try:
                    self.fold_now()
                except Exception:  # a busy database: the lines wait for the next fold
                    self._written.set()

    def close(self) -> None:
        """Fold the rest and delete the log (a clean stop)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.fold_now()
        os.close(self._fd)
        self.path.unlink(missing_ok=True)
