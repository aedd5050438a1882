"""The business: issued invoices and credit notes, payout runs, their funds and lines; append-only.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("invoices", "payout_runs", "payout_funds", "payout_lines")
MONEY = 40


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"""
        CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table}
        BEGIN
            SELECT RAISE(ABORT, '{table} is append-only: {op_name} is not allowed');
        END
        """
        for op_name in ("UPDATE", "DELETE")
    ]


POSTGRES_FUNCTION = """
    CREATE FUNCTION billing_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
"""


def _postgres_triggers(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION billing_append_only()""",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION billing_append_only()""",
    ]


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("number", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("agreement_id", sa.String(63), sa.ForeignKey("agreements.agreement_id"), nullable=False),
        sa.Column("partner", sa.String(63), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("total", sa.String(MONEY), nullable=False),
        sa.Column("refers_to", sa.String(16), sa.ForeignKey("invoices.number"), nullable=True),
        sa.Column("issued_at", _ts(), nullable=False),
        sa.Column("due_at", _ts(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.CheckConstraint("kind IN ('invoice', 'credit_note')", name="ck_invoices_kind"),
    )
    op.create_index("ix_invoices_agreement_period", "invoices", ["agreement_id", "period"])
    op.create_table(
        "payout_runs",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("minimum", sa.String(MONEY), nullable=False),
    )
    op.create_table(
        "payout_funds",
        sa.Column("period", sa.String(7), sa.ForeignKey("payout_runs.period"), primary_key=True),
        sa.Column("agreement_id", sa.String(63), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("revenue", sa.String(MONEY), nullable=False),
        sa.Column("share", sa.String(MONEY), nullable=False),
        sa.Column("fund", sa.String(MONEY), nullable=False),
        sa.Column("row_micros", sa.String(MONEY), nullable=False),
        sa.Column("people", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "payout_lines",
        sa.Column("period", sa.String(7), sa.ForeignKey("payout_runs.period"), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("earned", sa.String(MONEY), nullable=False),
        sa.Column("carried_in", sa.String(MONEY), nullable=False),
        sa.Column("paid", sa.String(MONEY), nullable=False),
        sa.Column("carried_out", sa.String(MONEY), nullable=False),
        sa.Column("row_micros", sa.BigInteger(), nullable=False),
        sa.Column("agreements", sa.Text(), nullable=False),
    )
    op.create_index("ix_payout_lines_user", "payout_lines", ["user_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in TABLES:
            for statement in _sqlite_triggers(table):
                op.execute(statement)
    elif dialect == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        for table in TABLES:
            for statement in _postgres_triggers(table):
                op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in reversed(TABLES):
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS billing_append_only()")
    op.drop_index("ix_payout_lines_user", table_name="payout_lines")
    op.drop_table("payout_lines")
    op.drop_table("payout_funds")
    op.drop_table("payout_runs")
    op.drop_index("ix_invoices_agreement_period", table_name="invoices")
    op.drop_table("invoices")
