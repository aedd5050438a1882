"""Delta Sharing: partner tokens (sha256 of the secret only) and served-data metering.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def upgrade() -> None:
    op.create_table(
        "partner_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column(
            "partner",
            sa.String(63),
            sa.ForeignKey("partners.name", name="fk_partner_tokens_partner"),
            nullable=False,
        ),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("revoked_at", _ts(), nullable=True),
    )
    op.create_index("ix_partner_tokens_partner", "partner_tokens", ["partner"])
    op.create_table(
        "sharing_usage",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("partner", sa.String(63), nullable=False),
        sa.Column("agreement_id", sa.String(63), nullable=False),
        sa.Column("table_name", sa.String(63), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sharing_usage_month", "sharing_usage", ["month", "partner", "agreement_id"])


def downgrade() -> None:
    op.drop_index("ix_sharing_usage_month", table_name="sharing_usage")
    op.drop_table("sharing_usage")
    op.drop_index("ix_partner_tokens_partner", table_name="partner_tokens")
    op.drop_table("partner_tokens")
