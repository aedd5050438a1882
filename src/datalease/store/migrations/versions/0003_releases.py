"""Release ledger: one row per committed release and one per table it pinned.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("release_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agreement_id", sa.String(63), sa.ForeignKey("agreements.agreement_id"), nullable=False),
        sa.Column("built_at", _ts(), nullable=False),
        sa.Column("as_of", _ts(), nullable=False),
        sa.Column("policy_revision_id", sa.Integer, nullable=False),
        sa.Column("policy_version", sa.String(100), nullable=True),
        sa.Column("agreement_sha256", sa.String(64), nullable=False),
        sa.Column("consent_watermark", sa.BigInteger, nullable=False),
        sa.Column("source_versions", sa.Text, nullable=False),
        sa.Column("engine", sa.String(20), nullable=False),
        sa.Column("full_build", sa.Boolean, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("excluded", sa.Text, nullable=False),
        sa.Column("excluded_sample_every", sa.Integer, nullable=False),
    )
    op.create_index("ix_releases_agreement", "releases", ["agreement_id", "release_id"])
    op.create_table(
        "release_tables",
        sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.release_id"), nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("table_version", sa.Integer, nullable=False),
        sa.Column("rows_total", sa.BigInteger, nullable=False),
        sa.Column("rows_added", sa.BigInteger, nullable=False),
        sa.Column("rows_removed", sa.BigInteger, nullable=False),
        sa.Column("files_added", sa.Integer, nullable=False),
        sa.Column("files_removed", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("release_id", "category"),
    )


def downgrade() -> None:
    op.drop_table("release_tables")
    op.drop_index("ix_releases_agreement", table_name="releases")
    op.drop_table("releases")
