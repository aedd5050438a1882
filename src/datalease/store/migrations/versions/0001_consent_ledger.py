"""Consent ledger (append-only events, current state, chain head), policy revisions, meta.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def _bigint_key() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
    BEGIN
        SELECT RAISE(ABORT, 'consent_events is append-only: UPDATE is not allowed');
    END
    """,
    """
    CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events
    BEGIN
        SELECT RAISE(ABORT, 'consent_events is append-only: DELETE is not allowed');
    END
    """,
)

POSTGRES_TRIGGERS = (
    """
    CREATE FUNCTION consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'consent_events is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER consent_events_no_update_delete BEFORE UPDATE OR DELETE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION consent_events_append_only()
    """,
    """
    CREATE TRIGGER consent_events_no_truncate BEFORE TRUNCATE ON consent_events
    FOR EACH STATEMENT EXECUTE FUNCTION consent_events_append_only()
    """,
)


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("seq", _bigint_key(), primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("recorded_at", _ts(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_consent_events_event_id"),
        sa.CheckConstraint("source IN ('user', 'platform', 'import')", name="ck_consent_events_source"),
        sa.CheckConstraint("seq >= 1", name="ck_consent_events_seq"),
    )
    op.create_index("ix_consent_events_user_key_at", "consent_events", ["user_id", "key", "at"])
    op.create_index("ix_consent_events_at", "consent_events", ["at"])

    op.create_table(
        "consent_current",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.ForeignKey("consent_events.seq"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_consent_current"),
        sqlite_with_rowid=False,  # the (user_id, key) key is the table: one B-tree, not two
    )

    head = op.create_table(
        "consent_chain_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_consent_chain_head_single_row"),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS_HASH}])

    op.create_table(
        "policy_revisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("applied_at", _ts(), nullable=False),
        sa.Column("applied_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_policy_revisions_sha256", "policy_revisions", ["sha256"])

    op.create_table(
        "meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    elif dialect == "postgresql":
        for statement in POSTGRES_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_truncate ON consent_events")
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_update_delete ON consent_events")
        op.execute("DROP FUNCTION IF EXISTS consent_events_append_only()")
    op.drop_table("meta")
    op.drop_index("ix_policy_revisions_sha256", table_name="policy_revisions")
    op.drop_table("policy_revisions")
    op.drop_table("consent_chain_head")
    op.drop_table("consent_current")
    op.drop_index("ix_consent_events_at", table_name="consent_events")
    op.drop_index("ix_consent_events_user_key_at", table_name="consent_events")
    op.drop_table("consent_events")
