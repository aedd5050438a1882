"""Taking platform events in: validate every event (all or nothing), then store each with its
revocation intent in one transaction. Shared by `datalease event` and the platform API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datalease.errors import UserError
from datalease.platform.events import EventError, PlatformEvent, check_subjects, parse_event
from datalease.revocation.model import RecordedEvent
from datalease.store.platform_events import (
    EventConflictError,
    PlatformEventRow,
    deleted_account,
    record_event,
)
from datalease.timeparse import utc_now
from datalease.workspace import Workspace


class EventRejectedError(UserError):
    """At least one event of a submission was refused; nothing of it was recorded."""


def submit_events(ws: Workspace, raw: Sequence[Any]) -> list[RecordedEvent]:
    if not raw:
        raise EventRejectedError("events: expected at least one event")
    events: list[PlatformEvent] = []
    for index, item in enumerate(raw):
        where = f"events[{index}]"
        try:
            event = parse_event(item, where)
            check_subjects(ws.lake, event, where)
        except EventError as exc:
            raise EventRejectedError(str(exc)) from exc
        events.append(event)
    now = utc_now()
    recorded: list[RecordedEvent] = []
    with ws.write_session() as session, session.begin():
        for index, event in enumerate(events):
            where = f"events[{index}]"
            retry = event.event_id is not None and session.get(PlatformEventRow, event.event_id) is not None
            if not retry and deleted_account(session, event.user_id or 0):
                raise EventRejectedError(
                    f"{where}.user_id: account {event.user_id} is already deleted; it takes no more events"
                )
            try:
                recorded.append(record_event(session, event, now))
            except EventConflictError as exc:
                raise EventRejectedError(f"{where}.id: {exc}") from exc
    return recorded
