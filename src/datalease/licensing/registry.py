"""Agreements as the platform reads them: re-read from their stored text with the policy, validated
against the store before they are saved, moved through their statuses. The store keeps rows and
texts (store/licensing.py); the meaning of a text is this package's.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from datalease.licensing.load import load_agreement
from datalease.licensing.model import Agreement, AgreementRecord, LicensingError, check_status_change
from datalease.licensing.validate import check_agreement, overlapping_agreements
from datalease.policy.model import Policy
from datalease.store.licensing import (
    get_agreement_record,
    list_agreements,
    list_partners,
    save_agreement,
    set_status,
)
from datalease.store.provenance import attestations
from datalease.timeparse import utc_now


def stored_source(agreement_id: str) -> str:
    """The name problems in a stored agreement's text are reported under."""
    return f"agreement {agreement_id} (stored)"


def _parse(record: AgreementRecord, policy: Policy) -> Agreement:
    agreement = load_agreement(record.source_text, stored_source(record.agreement_id), policy=policy)
    return replace(agreement, status=record.status)


def get_agreement(session: Session, agreement_id: str, policy: Policy) -> Agreement:
    """The agreement re-read from its stored text, with the status of the store.

    Raises UnknownAgreementError, or ProblemsError if `policy` no longer accepts the stored text.
    """
    return _parse(get_agreement_record(session, agreement_id), policy)


def load_agreements(
    session: Session, policy: Policy, partner: str | None = None, status: str | None = None
) -> list[Agreement]:
    """Every stored agreement (optionally of one partner / status), re-read with `policy`."""
    return [_parse(record, policy) for record in list_agreements(session, partner=partner, status=status)]


def create_agreement(
    session: Session, source_text: str, source: str, *, policy: Policy, created_at: datetime | None = None
) -> tuple[AgreementRecord, bool]:
    """`agreement create FILE` in one call: load, validate against the store, save.

    Returns (record, created); created is False when the same agreement was already stored.
    Raises ProblemsError (located in `source`) for anything wrong with the document.
    """
    agreement = load_agreement(source_text, source, policy=policy)
    others = load_agreements(session, policy, partner=agreement.partner)
    stored = next((r for r in list_agreements(session) if r.agreement_id == agreement.agreement_id), None)
    if stored is not None and stored.partner != agreement.partner:
        others.append(_parse(stored, policy))  # same id, other partner: validate reports the clash
    check_agreement(
        agreement,
        source_text=source_text,
        source=source,
        policy=policy,
        partners=list_partners(session),
        agreements=others,
    )
    return save_agreement(session, agreement, source_text, created_at=created_at), stored is None


def set_agreement_status(
    session: Session, agreement_id: str, status: str, *, policy: Policy, at: datetime | None = None
) -> AgreementRecord:
    """Move an agreement to `status` (flushed, not committed).

    Allowed: draft → active | terminated; active → suspended | terminated; suspended → active |
    terminated. Activating checks that no other active agreement of the partner overlaps it.
    """
    record = get_agreement_record(session, agreement_id)
    check_status_change(agreement_id, record.status, status)
    if status == record.status:
        return record
    if status == "active":
        _require_attestation(session, agreement_id, at or utc_now())
        agreement = _parse(record, policy)
        others = load_agreements(session, policy, partner=record.partner, status="active")
        overlaps = overlapping_agreements(agreement, others, policy)
        if overlaps:
            raise LicensingError(
                f"agreement {agreement_id}: cannot activate; it overlaps active agreement "
                + "; and ".join(o.describe() for o in overlaps)
                + ". Suspend or terminate that one first, or create a narrower agreement"
            )
    return set_status(session, agreement_id, status, at)


def _require_attestation(session: Session, agreement_id: str, at: datetime) -> None:
    """Activating needs the partner's attestation in force at `at` (issue 18)."""
    found = attestations(session, agreement_id)
    if not found:
        raise LicensingError(
            f"agreement {agreement_id}: cannot activate without the partner's attestation; record it with "
            "`datalease attestation record` or POST /api/v1/partner/attestation"
        )
    if not found[-1].valid_at(at):
        raise LicensingError(
            f"agreement {agreement_id}: cannot activate; the partner's attestation lapsed on "
            f"{found[-1].valid_until:%Y-%m-%d}; record a new one"
        )
