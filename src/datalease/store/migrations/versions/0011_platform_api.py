"""Platform API: scoped API tokens (sha256 only), stored answers of idempotent settings writes, and
how far each sharing server's append-only usage log has been folded into `sharing_usage`.

Revision ID: 0011
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("revoked_at", _ts(), nullable=True),
    )
    op.create_table(
        "api_idempotency",
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
    )
    op.create_table(
        "sharing_usage_logs",
        sa.Column("log_name", sa.String(100), primary_key=True),
        sa.Column("folded_bytes", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sharing_usage_logs")
    op.drop_table("api_idempotency")
    op.drop_table("api_tokens")
