"""Licensing: partners and agreements (stored YAML text, its hashes, status and term columns).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-15
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS_CHECK = "status IN ('draft', 'active', 'suspended', 'terminated')"


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("contact", sa.String(320), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
    )
    op.create_table(
        "agreements",
        sa.Column("agreement_id", sa.String(63), primary_key=True),
        sa.Column(
            "partner",
            sa.String(63),
            sa.ForeignKey("partners.name", name="fk_agreements_partner"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("term_start", _ts(), nullable=False),
        sa.Column("term_end", _ts(), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("status_changed_at", _ts(), nullable=False),
        sa.CheckConstraint(STATUS_CHECK, name="ck_agreements_status"),
        sa.CheckConstraint("term_end > term_start", name="ck_agreements_term"),
    )
    op.create_index("ix_agreements_partner_status", "agreements", ["partner", "status"])


def downgrade() -> None:
    op.drop_index("ix_agreements_partner_status", table_name="agreements")
    op.drop_table("agreements")
    op.drop_table("partners")
