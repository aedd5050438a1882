"""Provenance (issue 18): partners' attestations, model lineage and per-model acknowledgements.

Revision ID: 0013
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def upgrade() -> None:
    op.create_table(
        "attestations",
        sa.Column("attestation_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agreement_id", sa.String(63), sa.ForeignKey("agreements.agreement_id"), nullable=False),
        sa.Column("partner", sa.String(63), nullable=False),
        sa.Column("signer", sa.String(200), nullable=False),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("intended_use", sa.Text, nullable=False),
        sa.Column("accepted_prohibited_uses", sa.Text, nullable=False),
        sa.Column("recorded_at", _ts(), nullable=False),
        sa.Column("valid_until", _ts(), nullable=False),
    )
    op.create_index("ix_attestations_agreement", "attestations", ["agreement_id", "recorded_at"])
    op.create_table(
        "model_lineage",
        sa.Column("partner", sa.String(63), primary_key=True),
        sa.Column("model_id", sa.String(120), primary_key=True),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.release_id"), primary_key=True),
        sa.Column("agreement_id", sa.String(63), nullable=False),
        sa.Column("declared_at", _ts(), nullable=False),
    )
    op.create_index("ix_model_lineage_agreement", "model_lineage", ["agreement_id", "release_id"])
    op.create_table(
        "forget_model_acks",
        sa.Column("forget_id", sa.String(32), sa.ForeignKey("forget_entries.forget_id"), primary_key=True),
        sa.Column("model_id", sa.String(120), primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("certificate", sa.Text, nullable=True),
        sa.Column("acked_at", _ts(), nullable=False),
        sa.CheckConstraint("outcome IN ('retrained', 'certificate')", name="ck_forget_model_acks_outcome"),
    )


def downgrade() -> None:
    op.drop_table("forget_model_acks")
    op.drop_index("ix_model_lineage_agreement", table_name="model_lineage")
    op.drop_table("model_lineage")
    op.drop_index("ix_attestations_agreement", table_name="attestations")
    op.drop_table("attestations")
