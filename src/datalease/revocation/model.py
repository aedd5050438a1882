"""Revocation as plain data: intents (what may withdraw rows), forget entries, failing deliveries, and
platform events as recorded. Built by the store and the worker, read by reports and pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from datalease.platform.events import PlatformEvent


@dataclass(frozen=True)
class Intent:
    """Something recorded that may withdraw rows from partners: a revoking setting or a platform event."""

    intent_id: int
    source: str
    user_id: int | None
    post_id: int | None
    detail: str
    effective_at: datetime
    requested_at: datetime


@dataclass(frozen=True)
class ForgetEntry:
    """One subject a partner must forget: keys only, with the deadline from the deletion SLA."""

    forget_id: str
    agreement_id: str
    partner: str
    intent_id: int
    release_id: int
    scope: str
    subject_key: str
    rows: int
    reason_code: str
    requested_at: datetime
    delivered_at: datetime
    deadline: datetime
    acked_at: datetime | None
    certificate: str | None

    def state(self, now: datetime) -> str:
        if self.acked_at is not None:
            return "acknowledged"
        return "overdue" if now > self.deadline else "pending"


@dataclass(frozen=True)
class RecordedEvent:
    """A platform event as the store holds it (a retry of an identical event finds the first)."""

    event_id: str
    event: PlatformEvent
    occurred_at: datetime
    recorded_at: datetime
    created: bool  # False: an identical event with this id was already recorded (a retry)


@dataclass(frozen=True)
class DeliveryFailure:
    """An agreement whose revocation deliveries keep failing: since when, how often, the last error."""

    agreement_id: str
    since: datetime
    last_at: datetime
    attempts: int
    error: str
