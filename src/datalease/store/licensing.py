"""Partners and agreements in the store. The caller owns the session and its transaction.

An agreement is stored as the exact YAML text it was created from (with its sha256 and the sha256
of its content) plus the columns queries need; `get_agreement` re-reads the text, so the text is
the record of the contract. The status lives in its own column and moves through
`set_agreement_status` (draft → active ⇄ suspended → terminated).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Final

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.licensing.model import (
    STATUSES,
    Agreement,
    AgreementRecord,
    LicensingError,
    Partner,
    check_agreement_id,
    check_partner_name,
    content_fingerprint,
)
from datalease.store.models import Base, UTCDateTime
from datalease.timeparse import as_utc, utc_now

NAME_LENGTH: Final = 63
DISPLAY_NAME_LENGTH: Final = 200
CONTACT_LENGTH: Final = 320
STATUS_CHECK: Final = "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")"


class PartnerRow(Base):
    __tablename__ = "partners"

    name: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(DISPLAY_NAME_LENGTH))
    contact: Mapped[str | None] = mapped_column(String(CONTACT_LENGTH), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgreementRow(Base):
    __tablename__ = "agreements"

    agreement_id: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    partner: Mapped[str] = mapped_column(
        String(NAME_LENGTH), ForeignKey("partners.name", name="fk_agreements_partner")
    )
    status: Mapped[str] = mapped_column(String(16))
    term_start: Mapped[datetime] = mapped_column(UTCDateTime)
    term_end: Mapped[datetime] = mapped_column(UTCDateTime)
    source_text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(STATUS_CHECK, name="ck_agreements_status"),
        CheckConstraint("term_end > term_start", name="ck_agreements_term"),
        Index("ix_agreements_partner_status", "partner", "status"),
    )


class PartnerExistsError(LicensingError):
    """`add_partner` with a name already taken."""


class UnknownPartnerError(LicensingError):
    """A partner name not in the store."""


class UnknownAgreementError(LicensingError):
    """An agreement id not in the store."""


class AgreementExistsError(LicensingError):
    """`save_agreement` with an id already stored with different content."""


# --- partners -----------------------------------------------------------------------------------


def _partner(row: PartnerRow) -> Partner:
    return Partner(
        name=row.name, display_name=row.display_name, contact=row.contact, created_at=row.created_at
    )


def add_partner(
    session: Session,
    name: str,
    display_name: str | None = None,
    contact: str | None = None,
    *,
    created_at: datetime | None = None,
) -> Partner:
    """Register a partner (flushed, not committed). Raises PartnerExistsError if the name is taken."""
    check_partner_name(name)
    display = (display_name or "").strip() or name
    if len(display) > DISPLAY_NAME_LENGTH:
        raise LicensingError(
            f"display name: expected at most {DISPLAY_NAME_LENGTH} characters, got {len(display)}"
        )
    contact_text = (contact or "").strip() or None
    if contact_text is not None and len(contact_text) > CONTACT_LENGTH:
        raise LicensingError(
            f"contact: expected at most {CONTACT_LENGTH} characters, got {len(contact_text)}"
        )
    existing = session.get(PartnerRow, name)
    if existing is not None:
        raise _exists(existing)
    row = PartnerRow(
        name=name,
        display_name=display,
        contact=contact_text,
        created_at=as_utc(created_at) if created_at is not None else utc_now(),
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:  # added concurrently by someone else
        raise PartnerExistsError(f"partner {name!r} already exists; see `datalease partner list`") from exc
    return _partner(row)


def _exists(row: PartnerRow) -> PartnerExistsError:
    return PartnerExistsError(
        f"partner {row.name!r} already exists (added {row.created_at.date()} as {row.display_name!r}); "
        "choose another name or use the existing partner"
    )


def list_partners(session: Session) -> list[Partner]:
    """All partners, by name."""
    return [_partner(row) for row in session.scalars(select(PartnerRow).order_by(PartnerRow.name))]


def get_partner(session: Session, name: str) -> Partner:
    """The partner called `name`; raises UnknownPartnerError naming the command that adds it."""
    row = session.get(PartnerRow, name)
    if row is None:
        raise UnknownPartnerError(f"no partner {name!r}; add it with `datalease partner add {name}`")
    return _partner(row)


# --- agreements ---------------------------------------------------------------------------------


def _record(row: AgreementRow) -> AgreementRecord:
    return AgreementRecord(
        agreement_id=row.agreement_id,
        partner=row.partner,
        status=row.status,
        term_start=row.term_start,
        term_end=row.term_end,
        sha256=row.sha256,
        content_sha256=row.content_sha256,
        created_at=row.created_at,
        status_changed_at=row.status_changed_at,
        source_text=row.source_text,
    )


def text_sha256(source_text: str) -> str:
    return hashlib.sha256(source_text.encode("utf-8")).hexdigest()


def save_agreement(
    session: Session, agreement: Agreement, source_text: str, *, created_at: datetime | None = None
) -> AgreementRecord:
    """Store an agreement and the text it was loaded from (flushed, not committed).

    Storing the same content again under the same id returns the stored record unchanged (its
    status included); different content under a stored id raises AgreementExistsError. This does
    not check overlaps: `create_agreement` loads, validates and saves in one call.
    """
    check_agreement_id(agreement.agreement_id)
    fingerprint = content_fingerprint(agreement)
    existing = session.get(AgreementRow, agreement.agreement_id)
    if existing is not None:
        if existing.content_sha256 == fingerprint:
            return _record(existing)
        raise AgreementExistsError(
            f"agreement {agreement.agreement_id!r} already exists with different content; agreements are "
            f"immutable: give the changed contract its own id (e.g. {agreement.agreement_id}-v2)"
        )
    if session.get(PartnerRow, agreement.partner) is None:
        raise UnknownPartnerError(
            f"agreement {agreement.agreement_id}: no partner {agreement.partner!r}; add it first with "
            f"`datalease partner add {agreement.partner}`"
        )
    now = as_utc(created_at) if created_at is not None else utc_now()
    row = AgreementRow(
        agreement_id=agreement.agreement_id,
        partner=agreement.partner,
        status=agreement.status,
        term_start=agreement.term_start,
        term_end=agreement.term_end,
        source_text=source_text,
        sha256=text_sha256(source_text),
        content_sha256=fingerprint,
        created_at=now,
        status_changed_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise AgreementExistsError(
            f"agreement {agreement.agreement_id!r} was stored concurrently; run the command again"
        ) from exc
    return _record(row)


def list_agreements(
    session: Session, partner: str | None = None, status: str | None = None
) -> list[AgreementRecord]:
    """Stored agreements (optionally of one partner and/or status), by partner, term start and id."""
    query = select(AgreementRow).order_by(
        AgreementRow.partner, AgreementRow.term_start, AgreementRow.agreement_id
    )
    if partner is not None:
        query = query.where(AgreementRow.partner == partner)
    if status is not None:
        query = query.where(AgreementRow.status == status)
    return [_record(row) for row in session.scalars(query)]


def get_agreement_record(session: Session, agreement_id: str) -> AgreementRecord:
    """The stored row of an agreement (text, hashes, status); raises UnknownAgreementError."""
    return _record(_row(session, agreement_id))


def _row(session: Session, agreement_id: str) -> AgreementRow:
    row = session.get(AgreementRow, agreement_id)
    if row is None:
        raise UnknownAgreementError(f"no agreement {agreement_id!r}; see `datalease agreement list`")
    return row


def set_status(
    session: Session, agreement_id: str, status: str, at: datetime | None = None
) -> AgreementRecord:
    """Write a new status (the caller checked the transition; flushed, not committed)."""
    row = _row(session, agreement_id)
    row.status = status
    row.status_changed_at = as_utc(at) if at is not None else utc_now()
    session.flush()
    return _record(row)
