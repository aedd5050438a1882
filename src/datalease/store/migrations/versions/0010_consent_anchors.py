"""Issue 15: the chain head in every release ledger row; the notice outbox (who was notified, when, how).

Revision ID: 0010
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("consent_head_hash", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        "notice_deliveries",
        sa.Column("delivery_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("version_id", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("delivered_at", _ts(), nullable=False),
        sa.Column("recorded_at", _ts(), nullable=False),
    )
    op.create_index(
        "ix_notice_deliveries_user", "notice_deliveries", ["user_id", "version_id", "delivered_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_notice_deliveries_user", "notice_deliveries")
    op.drop_table("notice_deliveries")
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("consent_head_hash")
