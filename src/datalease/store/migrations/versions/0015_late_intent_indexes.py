"""An index for a release build's late intents (store.revocation.intents_late_for): those delivered
to the agreement after the release it diffs against. Without it each build scans every delivery
ever recorded.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (("ix_revocation_deliveries_release", "revocation_deliveries", ["agreement_id", "release_id"]),)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
