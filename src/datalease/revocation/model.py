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


# Bulk withdrawals (issue 14): what caused one, and the reason code partners see.
BULK_REASONS = {
    "order": "regulator_order",
    "policy": "policy_changed",
    "suspension": "agreement_suspended",
    "termination": "agreement_terminated",
    "term_end": "term_ended",
}


@dataclass(frozen=True)
class BulkWithdrawal:
    """A withdrawal of many rows at once, recorded with its intent; delivered by the bulk worker.

    `agreement_id` None: every agreement that has released data (an order, a narrower policy).
    `scope`/`subject` are what the forget entry names: region + the countries, or agreement + its id.
    """

    withdrawal_id: int
    intent_id: int
    kind: str  # order | policy | suspension | termination | term_end
    reason_code: str
    scope: str  # region | agreement
    subject: str
    reference: str  # the order id, the policy revision, the agreement id
    agreement_id: str | None
    requested_at: datetime
    completed_at: datetime | None = None
    detail: str = ""  # JSON: what the kind needs (the countries and categories of an order)
    closes_at: datetime | None = None  # a termination's share closes then (request + deletion SLA)


@dataclass(frozen=True)
class BulkProgress:
    """One agreement's part of a bulk withdrawal: rows deleted so far, chunks committed, done when."""

    withdrawal_id: int
    agreement_id: str
    rows_deleted: int
    chunks: int
    completed_at: datetime | None
