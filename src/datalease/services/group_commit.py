"""Group commit of settings writes: concurrent `POST settings` calls share one ledger transaction.

The first caller to arrive while no commit is running leads: it takes every request waiting (up to
`MAX_GROUP_EVENTS` events), appends them with ONE `ConsentLedger.record_many` (one chain walk, one
commit, the revocation intents in it), hands each caller its own result, and repeats while requests
keep arriving. Every call returns only once its own events are committed. When a group's batch is
refused (a bad event), each request of it is retried alone, so only the bad one fails.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from datalease.consent.inputs import ConsentError
from datalease.consent.ledger import BulkResult, NewConsentEvent
from datalease.store.platform_api import event_seqs
from datalease.workspace import Workspace

MAX_GROUP_EVENTS: Final = 50_000


@dataclass
class _Request:
    events: Sequence[NewConsentEvent]
    done: threading.Event = field(default_factory=threading.Event)
    result: BulkResult | None = None
    error: Exception | None = None


class GroupCommitter:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._pending: list[_Request] = []
        self._leading = False

    def record(self, events: Sequence[NewConsentEvent]) -> BulkResult:
        """Append `events` (each with an event_id) all or none; returns once they are committed."""
        request = _Request(events)
        with self._lock:
            self._pending.append(request)
            lead = not self._leading
            self._leading = True
        if lead:
            self._lead()
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _lead(self) -> None:
        while True:
            with self._lock:
                group: list[_Request] = []
                size = 0
                while self._pending and (
                    not group or size + len(self._pending[0].events) <= MAX_GROUP_EVENTS
                ):
                    taken = self._pending.pop(0)
                    group.append(taken)
                    size += len(taken.events)
                if not group:
                    self._leading = False
                    return
            try:
                self._commit(group)
            finally:
                for request in group:
                    request.done.set()

    def _commit(self, group: list[_Request]) -> None:
        ledger = self._ws.ledger
        if len(group) == 1:
            self._alone(group[0])
            return
        try:
            total = ledger.record_many([e for r in group for e in r.events])
        except ConsentError:
            for request in group:
                self._alone(request)
            return
        except Exception as exc:  # the database: every caller of the group sees it
            for request in group:
                request.error = exc
            return
        if total.already_present == 0 and total.first_seq is not None:
            seq = total.first_seq
            for request in group:
                count = len(request.events)
                request.result = BulkResult(count, 0, seq, seq + count - 1)
                seq += count
            return
        # Some events were already in the ledger (retries): attribute by the stored seqs.
        ids = [e.event_id for r in group for e in r.events if e.event_id is not None]
        with self._ws.session() as session:
            seqs = event_seqs(session, ids)
        low, high = total.first_seq or 0, total.last_seq or -1
        for request in group:
            mine = [seqs[e.event_id] for e in request.events if e.event_id in seqs]
            fresh = [s for s in mine if low <= s <= high]
            request.result = BulkResult(
                len(fresh),
                len(request.events) - len(fresh),
                min(fresh, default=None),
                max(fresh, default=None),
            )

    def _alone(self, request: _Request) -> None:
        try:
            request.result = self._ws.ledger.record_many(request.events)
        except Exception as exc:
            request.error = exc


_COMMITTERS: weakref.WeakKeyDictionary[Workspace, GroupCommitter] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def committer_of(ws: Workspace) -> GroupCommitter:
    with _LOCK:
        found = _COMMITTERS.get(ws)
        if found is None:
            found = _COMMITTERS[ws] = GroupCommitter(ws)
        return found
