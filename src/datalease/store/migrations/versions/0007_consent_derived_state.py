"""Consent derived state cannot lie: the digest of consent_current in the chain head, and triggers
that keep consent_current and consent_chain_head in step with consent_events.

* `consent_chain_head.current_digest`: the digest of consent_current (datalease.consent.digest),
  computed here for existing stores and kept by every append in its own transaction.
* consent_current: an INSERT or UPDATE must leave each written row equal to the latest event of its
  (user_id, key) by (at, seq) — the event `seq` exists with the same user, key, value and at, and no
  later event of that setting exists; an UPDATE may not move a row to another setting; DELETE (and
  TRUNCATE) are refused.
* consent_chain_head: an UPDATE must point at the last event (seq = the greatest seq, hash = its
  hash; 0 and the genesis hash for an empty ledger) and may change the digest only while advancing
  the seq (an append); INSERT, DELETE (and TRUNCATE) are refused.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The digest must be the one the code computes, so it comes from the (pure) code that defines it; a
# new definition would need a migration that recomputes it, like this one.
from datalease.consent.digest import MASK, micros, row_hash, to_stored

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
DIGEST_BATCH = 50_000

# A consent_current row NEW that is not the latest event of its setting (SQLite and PostgreSQL).
NOT_THE_LATEST_EVENT = """
    NOT EXISTS (SELECT 1 FROM consent_events AS e WHERE e.seq = {new}.seq AND e.user_id = {new}.user_id
                AND e.key = {new}.key AND e.value = {new}.value AND e.at = {new}.at)
    OR EXISTS (SELECT 1 FROM consent_events AS l WHERE l.user_id = {new}.user_id AND l.key = {new}.key
               AND l.at >= {new}.at AND (l.at > {new}.at OR l.seq > {new}.seq))
"""

SQLITE_TRIGGERS = (
    f"""
    CREATE TRIGGER consent_current_insert_mirrors_events AFTER INSERT ON consent_current
    WHEN {NOT_THE_LATEST_EVENT.format(new="NEW")}
    BEGIN
        SELECT RAISE(ABORT, 'consent_current must mirror the latest event of its (user_id, key): INSERT refused');
    END
    """,
    f"""
    CREATE TRIGGER consent_current_update_mirrors_events AFTER UPDATE ON consent_current
    WHEN NEW.user_id IS NOT OLD.user_id OR NEW.key IS NOT OLD.key OR {NOT_THE_LATEST_EVENT.format(new="NEW")}
    BEGIN
        SELECT RAISE(ABORT, 'consent_current must mirror the latest event of its (user_id, key): UPDATE refused');
    END
    """,
    """
    CREATE TRIGGER consent_current_no_delete BEFORE DELETE ON consent_current
    BEGIN
        SELECT RAISE(ABORT, 'consent_current is derived from consent_events: DELETE is not allowed');
    END
    """,
    f"""
    CREATE TRIGGER consent_chain_head_follows_events BEFORE UPDATE ON consent_chain_head
    WHEN NEW.id IS NOT OLD.id
        OR NEW.last_seq IS NOT coalesce((SELECT max(seq) FROM consent_events), 0)
        OR NEW.last_hash IS NOT coalesce(
            (SELECT hash FROM consent_events WHERE seq = NEW.last_seq), '{GENESIS_HASH}')
    BEGIN
        SELECT RAISE(ABORT, 'consent_chain_head must point at the last event (its seq and hash): UPDATE refused');
    END
    """,
    """
    CREATE TRIGGER consent_chain_head_digest_with_appends BEFORE UPDATE ON consent_chain_head
    WHEN NEW.current_digest IS NOT OLD.current_digest AND NEW.last_seq <= OLD.last_seq
    BEGIN
        SELECT RAISE(ABORT, 'consent_chain_head.current_digest changes only with an append: UPDATE refused');
    END
    """,
    """
    CREATE TRIGGER consent_chain_head_no_insert BEFORE INSERT ON consent_chain_head
    BEGIN
        SELECT RAISE(ABORT, 'consent_chain_head has exactly one row: INSERT is not allowed');
    END
    """,
    """
    CREATE TRIGGER consent_chain_head_no_delete BEFORE DELETE ON consent_chain_head
    BEGIN
        SELECT RAISE(ABORT, 'consent_chain_head has exactly one row: DELETE is not allowed');
    END
    """,
)
SQLITE_TRIGGER_NAMES = (
    "consent_current_insert_mirrors_events",
    "consent_current_update_mirrors_events",
    "consent_current_no_delete",
    "consent_chain_head_follows_events",
    "consent_chain_head_digest_with_appends",
    "consent_chain_head_no_insert",
    "consent_chain_head_no_delete",
)

# PostgreSQL checks consent_current per statement over its transition tables: one set-based query
# per bulk upsert instead of two lookups per row.
POSTGRES_TRIGGERS = (
    f"""
    CREATE FUNCTION consent_current_mirrors_events() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad record;
    BEGIN
        SELECT n.user_id, n.key, n.seq INTO bad FROM consent_current_written AS n
        WHERE {NOT_THE_LATEST_EVENT.format(new="n")}
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'consent_current must mirror the latest event of its (user_id, key): % refused (user %, %, event %)',
                TG_OP, bad.user_id, bad.key, bad.seq
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF TG_OP = 'UPDATE' THEN
            SELECT o.user_id, o.key INTO bad FROM consent_current_replaced AS o
            WHERE NOT EXISTS (SELECT 1 FROM consent_current AS c WHERE c.user_id = o.user_id AND c.key = o.key)
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'consent_current must mirror the latest event of its (user_id, key): UPDATE refused (it moves the row of user %, % to another setting)',
                    bad.user_id, bad.key
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER consent_current_insert_mirrors_events AFTER INSERT ON consent_current
    REFERENCING NEW TABLE AS consent_current_written
    FOR EACH STATEMENT EXECUTE FUNCTION consent_current_mirrors_events()
    """,
    """
    CREATE TRIGGER consent_current_update_mirrors_events AFTER UPDATE ON consent_current
    REFERENCING OLD TABLE AS consent_current_replaced NEW TABLE AS consent_current_written
    FOR EACH STATEMENT EXECUTE FUNCTION consent_current_mirrors_events()
    """,
    """
    CREATE FUNCTION consent_derived_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is derived from consent_events: % is not allowed', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER consent_current_no_delete BEFORE DELETE ON consent_current
    FOR EACH ROW EXECUTE FUNCTION consent_derived_refuse()
    """,
    """
    CREATE TRIGGER consent_current_no_truncate BEFORE TRUNCATE ON consent_current
    FOR EACH STATEMENT EXECUTE FUNCTION consent_derived_refuse()
    """,
    f"""
    CREATE FUNCTION consent_chain_head_follows_events() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        tail_seq bigint;
        tail_hash text;
    BEGIN
        SELECT e.seq, e.hash INTO tail_seq, tail_hash FROM consent_events AS e ORDER BY e.seq DESC LIMIT 1;
        IF NOT FOUND THEN
            tail_seq := 0;
            tail_hash := '{GENESIS_HASH}';
        END IF;
        IF NEW.id <> OLD.id OR NEW.last_seq <> tail_seq OR NEW.last_hash <> tail_hash THEN
            RAISE EXCEPTION 'consent_chain_head must point at the last event (its seq and hash): UPDATE to event % refused, the last event is %',
                NEW.last_seq, tail_seq
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF NEW.current_digest <> OLD.current_digest AND NEW.last_seq <= OLD.last_seq THEN
            RAISE EXCEPTION 'consent_chain_head.current_digest changes only with an append: UPDATE refused'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER consent_chain_head_follows_events BEFORE UPDATE ON consent_chain_head
    FOR EACH ROW EXECUTE FUNCTION consent_chain_head_follows_events()
    """,
    """
    CREATE TRIGGER consent_chain_head_no_insert_delete BEFORE INSERT OR DELETE ON consent_chain_head
    FOR EACH ROW EXECUTE FUNCTION consent_derived_refuse()
    """,
    """
    CREATE TRIGGER consent_chain_head_no_truncate BEFORE TRUNCATE ON consent_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION consent_derived_refuse()
    """,
)
POSTGRES_TRIGGER_NAMES = (
    ("consent_current_insert_mirrors_events", "consent_current"),
    ("consent_current_update_mirrors_events", "consent_current"),
    ("consent_current_no_delete", "consent_current"),
    ("consent_current_no_truncate", "consent_current"),
    ("consent_chain_head_follows_events", "consent_chain_head"),
    ("consent_chain_head_no_insert_delete", "consent_chain_head"),
    ("consent_chain_head_no_truncate", "consent_chain_head"),
)
POSTGRES_FUNCTIONS = (
    "consent_current_mirrors_events",
    "consent_derived_refuse",
    "consent_chain_head_follows_events",
)


def _current_digest(bind: sa.Connection) -> int:
    """The digest of consent_current as it stands, streamed in batches."""
    digest = 0
    result = bind.exec_driver_sql(
        "SELECT user_id, key, value, at, seq FROM consent_current",
        execution_options={"yield_per": DIGEST_BATCH},
    )
    for user_id, key, value, at, seq in result:
        digest += row_hash(int(user_id), str(key), bool(value), micros(at), int(seq))
    return digest & MASK


def upgrade() -> None:
    op.add_column(
        "consent_chain_head",
        sa.Column("current_digest", sa.BigInteger(), nullable=False, server_default="0"),
    )
    bind = op.get_bind()
    bind.execute(
        sa.text("UPDATE consent_chain_head SET current_digest = :digest WHERE id = 1"),
        {"digest": to_stored(_current_digest(bind))},
    )
    dialect = bind.dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    elif dialect == "postgresql":
        for statement in POSTGRES_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif dialect == "postgresql":
        for name, table in POSTGRES_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for function in POSTGRES_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    with op.batch_alter_table("consent_chain_head") as batch:
        batch.drop_column("current_digest")
