"""Revocation deliveries that keep failing, per agreement (so the failure is visible, and others go on);
platform events looked up by subject (their state is folded in event time).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def upgrade() -> None:
    op.create_table(
        "revocation_failures",
        sa.Column("agreement_id", sa.String(63), primary_key=True),
        sa.Column("since", _ts(), nullable=False),
        sa.Column("last_at", _ts(), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
    )
    op.create_index("ix_platform_events_user", "platform_events", ["user_id", "occurred_at"])
    op.create_index("ix_platform_events_post", "platform_events", ["post_id"])
    op.create_index(
        "ix_revocation_deliveries_agreement", "revocation_deliveries", ["agreement_id", "intent_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_revocation_deliveries_agreement", table_name="revocation_deliveries")
    op.drop_index("ix_platform_events_post", table_name="platform_events")
    op.drop_index("ix_platform_events_user", table_name="platform_events")
    op.drop_table("revocation_failures")
