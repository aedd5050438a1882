"""Provenance in the store (issue 18): attestations, model lineage, per-model acknowledgements.
The caller owns the session and its transaction; checks that need other tables live in services."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from datalease.licensing.model import Attestation, ModelAck, ModelLineage
from datalease.store.forget import ForgetEntryRow
from datalease.store.licensing import CONTACT_LENGTH, DISPLAY_NAME_LENGTH, NAME_LENGTH
from datalease.store.models import Base, UTCDateTime

MODEL_ID_LENGTH = 120


class AttestationRow(Base):
    __tablename__ = "attestations"

    attestation_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(String(NAME_LENGTH), ForeignKey("agreements.agreement_id"))
    partner: Mapped[str] = mapped_column(String(NAME_LENGTH))
    signer: Mapped[str] = mapped_column(String(DISPLAY_NAME_LENGTH))
    contact: Mapped[str] = mapped_column(String(CONTACT_LENGTH))
    intended_use: Mapped[str] = mapped_column(Text)
    accepted_prohibited_uses: Mapped[str] = mapped_column(Text)  # JSON list
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_attestations_agreement", "agreement_id", "recorded_at"),)


class ModelLineageRow(Base):
    __tablename__ = "model_lineage"

    partner: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(MODEL_ID_LENGTH), primary_key=True)
    release_id: Mapped[int] = mapped_column(Integer, ForeignKey("releases.release_id"), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(NAME_LENGTH))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_model_lineage_agreement", "agreement_id", "release_id"),)


class ForgetModelAckRow(Base):
    __tablename__ = "forget_model_acks"

    forget_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("forget_entries.forget_id"), primary_key=True
    )
    model_id: Mapped[str] = mapped_column(String(MODEL_ID_LENGTH), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))
    certificate: Mapped[str | None] = mapped_column(Text, nullable=True)
    acked_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("outcome IN ('retrained', 'certificate')", name="ck_forget_model_acks_outcome"),
    )


# --- attestations ---------------------------------------------------------------------------------


def _attestation(row: AttestationRow) -> Attestation:
    return Attestation(
        row.attestation_id,
        row.agreement_id,
        row.partner,
        row.signer,
        row.contact,
        row.intended_use,
        tuple(json.loads(row.accepted_prohibited_uses)),
        row.recorded_at,
        row.valid_until,
    )


def add_attestation(session: Session, attestation: Attestation) -> Attestation:
    row = AttestationRow(
        agreement_id=attestation.agreement_id,
        partner=attestation.partner,
        signer=attestation.signer,
        contact=attestation.contact,
        intended_use=attestation.intended_use,
        accepted_prohibited_uses=json.dumps(list(attestation.accepted_prohibited_uses)),
        recorded_at=attestation.recorded_at,
        valid_until=attestation.valid_until,
    )
    session.add(row)
    session.flush()
    return _attestation(row)


def attestations(session: Session, agreement_id: str) -> list[Attestation]:
    """The agreement's attestations, oldest first."""
    query = (
        select(AttestationRow)
        .where(AttestationRow.agreement_id == agreement_id)
        .order_by(AttestationRow.recorded_at, AttestationRow.attestation_id)
    )
    return [_attestation(r) for r in session.scalars(query)]


# --- lineage --------------------------------------------------------------------------------------


def add_lineage(session: Session, facts: Sequence[ModelLineage]) -> int:
    """Record declarations not recorded yet (a repeated declaration keeps its first time); returns
    how many were new."""
    added = 0
    for fact in facts:
        known = session.get(ModelLineageRow, (fact.partner, fact.model_id, fact.release_id))
        if known is None:
            session.add(ModelLineageRow(**fact.__dict__))
            session.flush()
            added += 1
    return added


def lineage(
    session: Session, *, partner: str | None = None, agreement_id: str | None = None
) -> list[ModelLineage]:
    query = select(ModelLineageRow).order_by(
        ModelLineageRow.partner, ModelLineageRow.model_id, ModelLineageRow.release_id
    )
    if partner is not None:
        query = query.where(ModelLineageRow.partner == partner)
    if agreement_id is not None:
        query = query.where(ModelLineageRow.agreement_id == agreement_id)
    return [
        ModelLineage(r.partner, r.model_id, r.agreement_id, r.release_id, r.declared_at)
        for r in session.scalars(query)
    ]


# --- per-model acknowledgements -------------------------------------------------------------------


def add_model_acks(session: Session, acks: Sequence[ModelAck]) -> int:
    added = 0
    for ack in acks:
        if session.get(ForgetModelAckRow, (ack.forget_id, ack.model_id)) is None:
            session.add(ForgetModelAckRow(**ack.__dict__))
            session.flush()
            added += 1
    return added


def model_acks(session: Session, forget_ids: Sequence[str] | None = None) -> list[ModelAck]:
    query = select(ForgetModelAckRow).order_by(ForgetModelAckRow.forget_id, ForgetModelAckRow.model_id)
    if forget_ids is not None:
        query = query.where(ForgetModelAckRow.forget_id.in_(list(forget_ids)))
    return [
        ModelAck(r.forget_id, r.model_id, r.outcome, r.certificate, r.acked_at)
        for r in session.scalars(query)
    ]


def forget_entry_owners(session: Session, forget_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """forget id -> (partner, agreement id), for the ids that exist."""
    rows = session.execute(
        select(ForgetEntryRow.forget_id, ForgetEntryRow.partner, ForgetEntryRow.agreement_id).where(
            ForgetEntryRow.forget_id.in_(list(forget_ids))
        )
    )
    return {r[0]: (r[1], r[2]) for r in rows}
