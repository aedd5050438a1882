"""Regulator orders and bulk withdrawals (with each agreement's progress).

Revision ID: 0012
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def upgrade() -> None:
    op.create_table(
        "regulator_orders",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("issued_by", sa.String(200), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("regions", sa.Text, nullable=False),
        sa.Column("countries", sa.Text, nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("purposes", sa.Text, nullable=False),
        sa.Column("effective_at", _ts(), nullable=False),
        sa.Column("until_at", _ts(), nullable=True),
        sa.Column("lifted_at", _ts(), nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("source_text", sa.Text, nullable=False),
        sa.Column("recorded_at", _ts(), nullable=False),
    )
    op.create_table(
        "bulk_withdrawals",
        sa.Column("withdrawal_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("intent_id", sa.Integer, sa.ForeignKey("revocation_intents.intent_id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(40), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("agreement_id", sa.String(63), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("closes_at", _ts(), nullable=True),
        sa.Column("completed_at", _ts(), nullable=True),
    )
    op.create_table(
        "bulk_deliveries",
        sa.Column(
            "withdrawal_id",
            sa.Integer,
            sa.ForeignKey("bulk_withdrawals.withdrawal_id"),
            primary_key=True,
        ),
        sa.Column("agreement_id", sa.String(63), primary_key=True),
        sa.Column("rows_deleted", sa.Integer, nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("completed_at", _ts(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("bulk_deliveries")
    op.drop_table("bulk_withdrawals")
    op.drop_table("regulator_orders")
