"""Compliance per agreement: forget entries pending, acknowledged and overdue against the deletion SLA,
and how fast revocations travel (intent → committed delete → partner acknowledgement)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from datalease.reporting.withdrawals import end_state
from datalease.revocation.model import DeliveryFailure
from datalease.store.forget import forget_entries
from datalease.store.licensing import list_agreements
from datalease.store.revocation import count_pending_intents, delivery_failures, delivery_times


@dataclass(frozen=True)
class Seconds:
    count: int
    p50: float | None
    p95: float | None
    max: float | None


def _seconds(values: list[float]) -> Seconds:
    if not values:
        return Seconds(0, None, None, None)
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return Seconds(len(ordered), statistics.median(ordered), p95, ordered[-1])


@dataclass(frozen=True)
class AgreementCompliance:
    agreement_id: str
    partner: str
    deletion_sla_hours: int | None
    entries: int
    pending: int
    acknowledged: int
    overdue: int
    oldest_pending_deadline: datetime | None
    to_delete: Seconds  # intent recorded → delete committed for this agreement
    to_ack: Seconds  # delete committed → partner acknowledged
    end_state: str | None = None  # an ended agreement's share and forget entry (reporting/withdrawals.py)


@dataclass(frozen=True)
class Compliance:
    intents_waiting: int  # recorded, not yet delivered to every agreement
    agreements: tuple[AgreementCompliance, ...]
    failures: tuple[DeliveryFailure, ...] = ()  # agreements whose revocation deliveries keep failing


def compliance(session: Session, now: datetime, sla_hours: dict[str, int] | None = None) -> Compliance:
    rows: list[AgreementCompliance] = []
    for record in list_agreements(session):
        entries = forget_entries(session, agreement_id=record.agreement_id)
        deliveries = delivery_times(session, record.agreement_id)
        if not entries and not deliveries:
            continue
        states = [e.state(now) for e in entries]
        pending = [e for e in entries if e.acked_at is None]
        rows.append(
            AgreementCompliance(
                agreement_id=record.agreement_id,
                partner=record.partner,
                deletion_sla_hours=(sla_hours or {}).get(record.agreement_id),
                entries=len(entries),
                pending=states.count("pending"),
                acknowledged=states.count("acknowledged"),
                overdue=states.count("overdue"),
                oldest_pending_deadline=min((e.deadline for e in pending), default=None),
                to_delete=_seconds([(d - r).total_seconds() for r, d in deliveries]),
                to_ack=_seconds(
                    [(e.acked_at - e.delivered_at).total_seconds() for e in entries if e.acked_at]
                ),
                end_state=end_state(session, record.agreement_id, now),
            )
        )
    return Compliance(count_pending_intents(session), tuple(rows), tuple(delivery_failures(session)))
