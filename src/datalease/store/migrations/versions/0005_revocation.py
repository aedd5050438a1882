"""Revocation: platform events, the revocation outbox, deliveries and forget entries; release kinds.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def upgrade() -> None:
    op.create_table(
        "platform_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=True),
        sa.Column("post_id", sa.BigInteger, nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("occurred_at", _ts(), nullable=False),
        sa.Column("recorded_at", _ts(), nullable=False),
        sa.Column("applied_at", _ts(), nullable=True),
    )
    op.create_index("ix_platform_events_pending", "platform_events", ["applied_at"])
    op.create_table(
        "revocation_intents",
        sa.Column("intent_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("consent_seq", sa.BigInteger, nullable=True),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("user_id", sa.BigInteger, nullable=True),
        sa.Column("post_id", sa.BigInteger, nullable=True),
        sa.Column("detail", sa.String(128), nullable=False),
        sa.Column("effective_at", _ts(), nullable=False),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("processed_at", _ts(), nullable=True),
        sa.UniqueConstraint("consent_seq", name="uq_revocation_intents_consent_seq"),
        sa.UniqueConstraint("event_id", name="uq_revocation_intents_event_id"),
    )
    op.create_index("ix_revocation_intents_pending", "revocation_intents", ["processed_at", "intent_id"])
    op.create_table(
        "revocation_deliveries",
        sa.Column("intent_id", sa.Integer, sa.ForeignKey("revocation_intents.intent_id"), nullable=False),
        sa.Column("agreement_id", sa.String(63), nullable=False),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.release_id"), nullable=False),
        sa.Column("forget_entries", sa.Integer, nullable=False),
        sa.Column("delivered_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("intent_id", "agreement_id"),
    )
    op.create_table(
        "forget_entries",
        sa.Column("forget_id", sa.String(32), primary_key=True),
        sa.Column("agreement_id", sa.String(63), nullable=False),
        sa.Column("partner", sa.String(63), nullable=False),
        sa.Column("intent_id", sa.Integer, sa.ForeignKey("revocation_intents.intent_id"), nullable=False),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.release_id"), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject_key", sa.String(80), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("reason_code", sa.String(40), nullable=False),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("delivered_at", _ts(), nullable=False),
        sa.Column("deadline", _ts(), nullable=False),
        sa.Column("acked_at", _ts(), nullable=True),
        sa.Column("certificate", sa.Text, nullable=True),
    )
    op.create_index("ix_forget_entries_agreement", "forget_entries", ["agreement_id", "acked_at"])
    op.create_index("ix_forget_entries_subject", "forget_entries", ["subject_key"])
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="build"))


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("kind")
    op.drop_index("ix_forget_entries_subject", table_name="forget_entries")
    op.drop_index("ix_forget_entries_agreement", table_name="forget_entries")
    op.drop_table("forget_entries")
    op.drop_table("revocation_deliveries")
    op.drop_index("ix_revocation_intents_pending", table_name="revocation_intents")
    op.drop_table("revocation_intents")
    op.drop_index("ix_platform_events_pending", table_name="platform_events")
    op.drop_table("platform_events")
