"""Consent events record what was shown and where (issue 15): `notice_sha256`, `notice_locale` and
`surface` (settings_page, api, import, signal), and `source` may be `signal` (Global Privacy Control).

Events that carry the new fields are hashed with chain encoding 2 (datalease.consent.chain); the
columns are NULL for every older event, which keeps encoding 1 and keeps verifying.

PostgreSQL: three columns and the CHECK constraints changed in place; the append-only triggers stay.
SQLite cannot change a CHECK constraint, so consent_events is rebuilt (and consent_current with it:
its foreign key refers to consent_events, and a table that is referred to cannot be dropped while
foreign keys are on, which they are inside this transaction). That drops the append-only triggers of
migrations 0001 and 0007; they are recreated here exactly, copied from those migrations.

Downgrade: refused while any event carries the new fields or source `signal` (removing them would
break those events' hashes); otherwise the reverse.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
OLD_SOURCES = "source IN ('user', 'platform', 'import')"
NEW_SOURCES = "source IN ('user', 'platform', 'import', 'signal')"
SURFACES = "surface IS NULL OR surface IN ('settings_page', 'api', 'import', 'signal')"
NEW_COLUMNS = ("notice_sha256", "notice_locale", "surface")
OLD_COLUMNS = "seq, event_id, user_id, key, value, at, recorded_at, source, actor, prev_hash, hash"


def _ts() -> sa.types.TypeEngine[object]:
    # Frozen copy of datalease.store.models.UTCDateTime's storage: timestamptz, or ISO text on SQLite.
    return sa.DateTime(timezone=True).with_variant(sa.String(27), "sqlite")  # type: ignore[return-value]


def _bigint_key() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# --- copied exactly from 0001_consent_ledger.SQLITE_TRIGGERS ------------------------------------
SQLITE_EVENT_TRIGGERS = (
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

# --- copied exactly from 0007_consent_derived_state (NOT_THE_LATEST_EVENT, SQLITE_TRIGGERS) -----
NOT_THE_LATEST_EVENT = """
    NOT EXISTS (SELECT 1 FROM consent_events AS e WHERE e.seq = {new}.seq AND e.user_id = {new}.user_id
                AND e.key = {new}.key AND e.value = {new}.value AND e.at = {new}.at)
    OR EXISTS (SELECT 1 FROM consent_events AS l WHERE l.user_id = {new}.user_id AND l.key = {new}.key
               AND l.at >= {new}.at AND (l.at > {new}.at OR l.seq > {new}.seq))
"""

SQLITE_DERIVED_TRIGGERS = (
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
    "consent_events_no_update",
    "consent_events_no_delete",
    "consent_current_insert_mirrors_events",
    "consent_current_update_mirrors_events",
    "consent_current_no_delete",
    "consent_chain_head_follows_events",
    "consent_chain_head_digest_with_appends",
    "consent_chain_head_no_insert",
    "consent_chain_head_no_delete",
)


def _events_table(name: str, *, shown: bool) -> None:
    """consent_events as 0001 created it, with (shown) or without the columns of this migration."""
    columns: list[sa.Column[object]] = [
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
    ]
    checks = [sa.CheckConstraint(NEW_SOURCES if shown else OLD_SOURCES, name="ck_consent_events_source")]
    if shown:
        columns += [
            sa.Column("notice_sha256", sa.String(64), nullable=True),
            sa.Column("notice_locale", sa.String(16), nullable=True),
            sa.Column("surface", sa.String(16), nullable=True),
        ]
        checks.append(sa.CheckConstraint(SURFACES, name="ck_consent_events_surface"))
    op.create_table(
        name,
        *columns,
        sa.UniqueConstraint("event_id", name="uq_consent_events_event_id"),
        *checks,
        sa.CheckConstraint("seq >= 1", name="ck_consent_events_seq"),
    )


def _current_table() -> None:
    """consent_current exactly as 0001 created it."""
    op.create_table(
        "consent_current",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Boolean(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.ForeignKey("consent_events.seq"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_consent_current"),
        sqlite_with_rowid=False,
    )


def _rebuild_sqlite(*, shown: bool) -> None:
    """Rebuild consent_events (with or without the new columns) and consent_current, keeping every
    row byte for byte, then recreate the indexes and all the triggers of 0001 and 0007."""
    for name in SQLITE_TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute(
        "CREATE TABLE consent_current_copy AS SELECT user_id, key, value, at, seq FROM consent_current"
    )
    op.drop_table("consent_current")
    _events_table("consent_events_rebuilt", shown=shown)
    op.execute(f"INSERT INTO consent_events_rebuilt ({OLD_COLUMNS}) SELECT {OLD_COLUMNS} FROM consent_events")
    op.drop_index("ix_consent_events_at", table_name="consent_events")
    op.drop_index("ix_consent_events_user_key_at", table_name="consent_events")
    op.drop_table("consent_events")
    op.rename_table("consent_events_rebuilt", "consent_events")
    op.create_index("ix_consent_events_user_key_at", "consent_events", ["user_id", "key", "at"])
    op.create_index("ix_consent_events_at", "consent_events", ["at"])
    _current_table()
    op.execute(
        "INSERT INTO consent_current (user_id, key, value, at, seq) "
        "SELECT user_id, key, value, at, seq FROM consent_current_copy ORDER BY user_id, key"
    )
    op.drop_table("consent_current_copy")
    for statement in (*SQLITE_EVENT_TRIGGERS, *SQLITE_DERIVED_TRIGGERS):
        op.execute(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _rebuild_sqlite(shown=True)
        return
    for column in (
        sa.Column("notice_sha256", sa.String(64), nullable=True),
        sa.Column("notice_locale", sa.String(16), nullable=True),
        sa.Column("surface", sa.String(16), nullable=True),
    ):
        op.add_column("consent_events", column)
    op.drop_constraint("ck_consent_events_source", "consent_events", type_="check")
    op.create_check_constraint("ck_consent_events_source", "consent_events", NEW_SOURCES)
    op.create_check_constraint("ck_consent_events_surface", "consent_events", SURFACES)


def downgrade() -> None:
    bind = op.get_bind()
    carrying = bind.exec_driver_sql(
        "SELECT count(*) FROM consent_events WHERE source = 'signal' OR notice_sha256 IS NOT NULL "
        "OR notice_locale IS NOT NULL OR surface IS NOT NULL"
    ).scalar_one()
    if carrying:
        raise RuntimeError(
            f"{carrying} consent events record the notice shown, the surface or source signal: "
            "removing those columns would break their hashes, so this downgrade is refused"
        )
    if bind.dialect.name == "sqlite":
        _rebuild_sqlite(shown=False)
        return
    op.drop_constraint("ck_consent_events_surface", "consent_events", type_="check")
    op.drop_constraint("ck_consent_events_source", "consent_events", type_="check")
    op.create_check_constraint("ck_consent_events_source", "consent_events", OLD_SOURCES)
    for name in reversed(NEW_COLUMNS):
        op.drop_column("consent_events", name)
