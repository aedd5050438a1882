"""SQL for the consent ledger: serialised appends, reads, chain streaming and Arrow snapshots.

The consent domain (`datalease.consent`) decides *what* to write and checks the chain; this module
is the only place that knows the tables. Bulk paths talk to the DBAPI driver directly (sqlite3
`executemany`, psycopg `COPY`) because per-row ORM or Core overhead would dominate at millions of rows.

Times cross this boundary as aware datetimes, or — on the write and chain-streaming paths — as
canonical UTC text `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the SQLite storage form; PostgreSQL parses it on
the way in and `to_char` produces it on the way out).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import duckdb
import pyarrow as pa
from sqlalchemy import Connection, Engine, or_, select

from datalease.consent.chain import ConsentEvent
from datalease.store.arrow_transport import (
    FETCH_BATCH,
    SNAPSHOT_SCHEMA,
    as_snapshot,
    driver,
    is_sqlite,
    pg_csv,
    pg_csv_raw,
    sqlite_csv,
    stream_rows,
    to_snapshot,
)
from datalease.store.consent_append import (
    EVENT_COLUMNS,
    PG_TEXT_TIME,
    Appender,
    ChainHeadState,
    EventTextRow,
    event_row,
    placeholder,
    read_head,
)
from datalease.store.db import SQLITE_BEGIN_OPTION
from datalease.store.models import ConsentEventRow, utc_text

# Columns as they travel through CSV (booleans as 0/1), see sqlite_csv / pg_csv.
_CURRENT_CSV: Final = pa.schema([("user_id", pa.int64()), ("key", pa.string()), ("value", pa.int8())])
_CANDIDATES_CSV: Final = pa.schema(
    [
        ("user_id", pa.int64()),
        ("key", pa.string()),
        ("value", pa.int8()),
        ("eff", pa.string()),  # the effective time `at`, canonical text; `at` is a keyword in DuckDB 2
        ("seq", pa.int64()),
    ]
)
# consent_current with what its digest covers; `at` parsed by Arrow from canonical UTC text.
_CURRENT_ROWS_CSV: Final = pa.schema(
    [
        ("user_id", pa.int64()),
        ("key", pa.string()),
        ("value", pa.int8()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("seq", pa.int64()),
    ]
)
CSV_CHUNK_ROWS: Final = 500_000


@dataclass(frozen=True, slots=True)
class LastEvent:
    seq: int
    hash: str


class ConsentEventStore:
    """The consent tables of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # --- writes ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def append_transaction(self) -> Iterator[Appender]:
        """One transaction that holds the chain lock until it commits or rolls back.

        SQLite: BEGIN IMMEDIATE (the database write lock). PostgreSQL: SELECT ... FOR UPDATE on the
        chain-head row. Either way two appenders never read the same head, so the chain cannot fork.
        """
        with self.engine.connect() as conn:
            if is_sqlite(conn):
                conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            appender: Appender | None = None
            try:
                with conn.begin():
                    appender = Appender(conn, read_head(conn, for_update=True))
                    yield appender
            finally:
                if appender is not None and appender.bulk:
                    # through the driver: a SQLAlchemy statement here would begin another transaction
                    driver(conn).execute("PRAGMA cache_size = -2000")

    # --- reads ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[Connection]:
        """A connection whose reads all see one consistent state of the database."""
        with self.engine.connect() as conn:
            if not is_sqlite(conn):
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def head(self, conn: Connection | None = None) -> ChainHeadState:
        if conn is not None:
            return read_head(conn, for_update=False)
        with self.engine.connect() as own:
            return read_head(own, for_update=False)

    def events_for_user(self, user_id: int, *, until: datetime | None = None) -> list[ConsentEvent]:
        """The user's events in seq order; with `until`, only those effective at or before it."""
        table = ConsentEventRow.__table__
        stmt = select(*(table.c[name] for name in EVENT_COLUMNS)).where(table.c.user_id == user_id)
        if until is not None:
            stmt = stmt.where(table.c.at <= until)
        stmt = stmt.order_by(table.c.seq)
        with self.engine.connect() as conn:
            return [event_row(row) for row in conn.execute(stmt)]

    def last_event(self, conn: Connection) -> LastEvent | None:
        """The event with the greatest seq (a primary-key lookup); None for an empty ledger."""
        row = conn.exec_driver_sql("SELECT seq, hash FROM consent_events ORDER BY seq DESC LIMIT 1").first()
        return None if row is None else LastEvent(int(row[0]), str(row[1]))

    def users_changed(self, since_seq: int, after: datetime, until: datetime) -> list[int]:
        """Users with events recorded after seq `since_seq`, or taking effect in (after, until]."""
        table = ConsentEventRow.__table__
        query = (
            select(table.c.user_id)
            .where(or_(table.c.seq > since_seq, (table.c.at > after) & (table.c.at <= until)))
            .distinct()
        )
        with self.engine.connect() as connection:
            return [int(row[0]) for row in connection.execute(query)]

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT COUNT(*) FROM consent_events").scalar_one())

    def iter_chain(
        self, conn: Connection, *, after: int = 0, upto: int | None = None, batch_size: int = FETCH_BATCH
    ) -> Iterator[list[EventTextRow]]:
        """Events with after < seq <= upto (no upper bound: all), in seq order, times as canonical
        text, in batches (streamed, never loaded whole)."""
        if is_sqlite(conn):
            columns = list(EVENT_COLUMNS)
        else:
            columns = [
                PG_TEXT_TIME.format(col=name) if name in ("at", "recorded_at") else name
                for name in EVENT_COLUMNS
            ]
        ph = placeholder(conn)
        where, params = f"seq > {ph}", [after]
        if upto is not None:
            where += f" AND seq <= {ph}"
            params.append(upto)
        sql = f"SELECT {', '.join(columns)} FROM consent_events WHERE {where} ORDER BY seq"
        yield from stream_rows(conn, sql, params, batch_size)

    def max_event_at(self, conn: Connection) -> datetime | None:
        """The latest effective time of any event (index lookup)."""
        table = ConsentEventRow.__table__
        latest: datetime | None = conn.execute(
            select(table.c.at).order_by(table.c.at.desc()).limit(1)
        ).scalar()
        return latest

    def snapshot_current(self, conn: Connection, watermark: int) -> pa.Table:
        """(user_id, key, value) straight from consent_current, unchecked (the benchmark's baseline
        for the checked read, `current_rows`).

        `watermark` (the chain head seq) only sizes the chunks on SQLite.
        """
        return as_snapshot(
            _read_current(
                conn, watermark, "user_id, key, value::int", "quote(key) || ',' || value", _CURRENT_CSV
            )
        )

    def current_rows(self, conn: Connection, watermark: int) -> pa.Table:
        """consent_current whole as Arrow: user_id, key, value (bool), at (timestamp), seq — what a
        reader needs to recompute the digest (datalease.consent.digest) of what it read."""
        table = _read_current(
            conn,
            watermark,
            f"user_id, key, value::int, {PG_TEXT_TIME.format(col='at')}, seq",
            "quote(key) || ',' || value || ',' || quote(at) || ',' || seq",
            _CURRENT_ROWS_CSV,
        )
        return table.set_column(2, "value", table["value"].cast(pa.bool_()))

    def snapshot_as_of(
        self, conn: Connection, at: datetime, watermark: int, *, method: str = "auto"
    ) -> pa.Table:
        """(user_id, key, value) of the latest event by (at, seq) with at <= `at`, per (user, key),
        among the events up to seq `watermark`.

        PostgreSQL: DISTINCT ON. SQLite: `method="duckdb"` (the default) reads the candidate rows
        into Arrow and lets DuckDB pick the latest of each (user, key); `method="window"` runs a
        ROW_NUMBER() window inside SQLite. benchmarks/consent_snapshot.py measures both: the DuckDB
        reduction is the faster one.
        """
        if not is_sqlite(conn):
            sql = (
                "SELECT DISTINCT ON (user_id, key) user_id, key, value::int FROM consent_events "
                "WHERE at <= %s AND seq <= %s ORDER BY user_id, key, at DESC, seq DESC"
            )
            return pg_csv(conn, sql, (at, watermark), _CURRENT_CSV)
        bound = utc_text(at)
        if method == "window":
            sql = (
                "SELECT user_id, key, value FROM ("
                " SELECT user_id, key, value, ROW_NUMBER() OVER ("
                "  PARTITION BY user_id, key ORDER BY at DESC, seq DESC) AS rn"
                " FROM consent_events WHERE +at <= ? AND seq <= ?) WHERE rn = 1"
            )
            return to_snapshot(stream_rows(conn, sql, (bound, watermark)))
        if method not in ("auto", "duckdb"):
            raise ValueError(f"method: expected auto, duckdb or window, got {method!r}")
        sql = (
            "SELECT group_concat(user_id || ',' || quote(key) || ',' || value || ',' || quote(at) || ',' || seq, "
            "char(10)) FROM consent_events WHERE seq > ? AND seq <= ? AND +at <= ?"
        )
        tables = [
            sqlite_csv(conn, sql, (start, min(start + CSV_CHUNK_ROWS, watermark), bound), _CANDIDATES_CSV)
            for start in range(0, watermark, CSV_CHUNK_ROWS)
        ]
        if not tables:
            return SNAPSHOT_SCHEMA.empty_table()
        return reduce_latest(pa.concat_tables(tables))

    def scan_events_arrow(self, conn: Connection) -> pa.Table:
        """Every event's (user_id, key, value) through plain driver fetches: the benchmark baseline."""
        return to_snapshot(stream_rows(conn, "SELECT user_id, key, value FROM consent_events", ()))


def reduce_latest(events: pa.Table) -> pa.Table:
    """Per (user_id, key), the value of the row with the greatest (eff, seq), as SNAPSHOT_SCHEMA.

    `events` has columns user_id, key, value, eff (the effective time, any ordered type) and seq.
    """
    if events.num_rows == 0:
        return SNAPSHOT_SCHEMA.empty_table()
    con = duckdb.connect()
    try:
        con.register("events", events)
        result = con.sql(
            "SELECT user_id, key, arg_max(value, {'t': eff, 's': seq}) AS value "
            "FROM events GROUP BY user_id, key"
        ).to_arrow_table()
    finally:
        con.close()
    return as_snapshot(result)


def _read_current(
    conn: Connection, watermark: int, pg_columns: str, sqlite_tail: str, schema: pa.Schema
) -> pa.Table:
    """consent_current as CSV parsed by Arrow: `pg_columns` on PostgreSQL; on SQLite user_id then
    `sqlite_tail` (a CSV line expression), in user_id ranges of about CSV_CHUNK_ROWS events."""
    if not is_sqlite(conn):
        return pg_csv_raw(conn, f"SELECT {pg_columns} FROM consent_current", (), schema)
    bounds = conn.exec_driver_sql("SELECT MIN(user_id), MAX(user_id) FROM consent_current").first()
    if bounds is None or bounds[0] is None:
        return schema.empty_table()
    low, high = int(bounds[0]), int(bounds[1])
    chunks = max(1, watermark // CSV_CHUNK_ROWS)
    width = (high - low) // chunks + 1
    sql = (
        f"SELECT group_concat(user_id || ',' || {sqlite_tail}, char(10)) "
        "FROM consent_current WHERE user_id >= ? AND user_id <= ?"
    )
    return pa.concat_tables(
        [
            sqlite_csv(conn, sql, (start, min(start + width - 1, high)), schema)
            for start in range(low, high + 1, width)
        ]
    )


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
