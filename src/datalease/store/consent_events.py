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
import io
import itertools
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Engine, select, text

from datalease.consent import digest as current_digest
from datalease.consent.chain import ConsentEvent
from datalease.store.db import SQLITE_BEGIN_OPTION
from datalease.store.models import CHAIN_HEAD_ID, ConsentEventRow, utc_text
from datalease.store.revocation import OUTBOX_FROM_CONSENT

EVENT_COLUMNS: Final = (
    "seq",
    "event_id",
    "user_id",
    "key",
    "value",
    "at",
    "recorded_at",
    "source",
    "actor",
    "prev_hash",
    "hash",
)
CURRENT_COLUMNS: Final = ("user_id", "key", "value", "at", "seq")
SNAPSHOT_SCHEMA: Final = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("value", pa.bool_(), nullable=False),
    ]
)
# Columns as they travel through CSV (booleans as 0/1), see _sqlite_csv / _pg_csv.
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
FETCH_BATCH: Final = 100_000
_json_quote = json.encoder.encode_basestring_ascii  # what json.dumps emits for a str
PG_TEXT_TIME: Final = """to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""

# One row of consent_events with times as canonical UTC text, in EVENT_COLUMNS order.
EventTextRow = tuple[int, str, int, str, bool, str, str, str, str, str, str]
# One row of consent_current with the time as canonical UTC text, in CURRENT_COLUMNS order.
CurrentTextRow = tuple[int, str, bool, str, int]


@dataclass(frozen=True, slots=True)
class ChainHeadState:
    seq: int
    hash: str
    digest: int  # of consent_current (datalease.consent.digest), unsigned


@dataclass(frozen=True, slots=True)
class LastEvent:
    seq: int
    hash: str


def _is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _driver(conn: Connection) -> Any:
    return conn.connection.driver_connection


def _ph(conn: Connection) -> str:
    return "?" if _is_sqlite(conn) else "%s"


def _event_row(row: Sequence[Any]) -> ConsentEvent:
    seq, event_id, user_id, key, value, at, recorded_at, source, actor, prev_hash, hash_ = row
    return ConsentEvent(
        seq, event_id, user_id, key, bool(value), at, recorded_at, source, actor, prev_hash, hash_
    )


def _read_head(conn: Connection, *, for_update: bool) -> ChainHeadState:
    sql = f"SELECT last_seq, last_hash, current_digest FROM consent_chain_head WHERE id = {CHAIN_HEAD_ID}"
    if for_update and not _is_sqlite(conn):
        sql += " FOR UPDATE"
    row = conn.exec_driver_sql(sql).first()
    if row is None:
        raise RuntimeError("consent_chain_head has no row: run the migrations (datalease init)")
    return ChainHeadState(int(row[0]), str(row[1]), current_digest.from_stored(int(row[2])))


class Appender:
    """Writes inside one append transaction that holds the chain lock."""

    def __init__(self, conn: Connection, head: ChainHeadState) -> None:
        self.conn = conn
        self.head = head
        self.bulk = False
        self._sqlite = _is_sqlite(conn)
        self._digest = head.digest  # of consent_current as this transaction leaves it

    def find_events(self, event_ids: Iterable[str]) -> dict[str, ConsentEvent]:
        """Stored events among `event_ids`, by event_id."""
        found: dict[str, ConsentEvent] = {}
        ids = list(dict.fromkeys(event_ids))
        table = ConsentEventRow.__table__
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            stmt = select(*(table.c[name] for name in EVENT_COLUMNS)).where(table.c.event_id.in_(chunk))
            for row in self.conn.execute(stmt):
                event = _event_row(row)
                found[event.event_id] = event
        return found

    def insert_events(self, rows: Sequence[EventTextRow]) -> None:
        """Append rows (seq already assigned, contiguous after the head, hashes computed)."""
        if not rows:
            return
        columns = ", ".join(EVENT_COLUMNS)
        cursor = _driver(self.conn).cursor()
        try:
            if self._sqlite:
                marks = ", ".join("?" * len(EVENT_COLUMNS))
                cursor.executemany(f"INSERT INTO consent_events ({columns}) VALUES ({marks})", rows)
            else:
                with cursor.copy(f"COPY consent_events ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        finally:
            cursor.close()
        # The revocation outbox, in this same transaction: a revoking setting is durable with its event.
        self.conn.execute(text(OUTBOX_FROM_CONSENT), {"first": int(rows[0][0]), "last": int(rows[-1][0])})

    def upsert_current(self, rows: Sequence[CurrentTextRow]) -> None:
        """Make each (user_id, key) point at the given event if it is later by (at, seq), and keep
        the digest of consent_current in step (written by `set_head`).

        `rows` must hold at most one row per (user_id, key). The rows they replace are read in one
        query; only the rows that win are written.
        """
        rows = self._winners(rows)
        if not rows:
            return
        cursor = _driver(self.conn).cursor()
        newer = (
            "excluded.at > consent_current.at OR "
            "(excluded.at = consent_current.at AND excluded.seq > consent_current.seq)"
        )
        update = "DO UPDATE SET value = excluded.value, at = excluded.at, seq = excluded.seq"
        try:
            if self._sqlite:
                cursor.executemany(
                    "INSERT INTO consent_current (user_id, key, value, at, seq) VALUES (?, ?, ?, ?, ?) "
                    f"ON CONFLICT (user_id, key) {update} WHERE {newer}",
                    rows,
                )
            elif len(rows) <= 50:
                cursor.executemany(
                    "INSERT INTO consent_current (user_id, key, value, at, seq) "
                    "VALUES (%s, %s, %s, %s::timestamptz, %s) "
                    f"ON CONFLICT (user_id, key) {update} WHERE {newer}",
                    rows,
                )
            else:
                stage = f"consent_current_stage_{uuid.uuid4().hex[:12]}"
                cursor.execute(
                    f"CREATE TEMP TABLE {stage} (LIKE consent_current INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                with cursor.copy(f"COPY {stage} (user_id, key, value, at, seq) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(
                    f"INSERT INTO consent_current (user_id, key, value, at, seq) "
                    f"SELECT user_id, key, value, at, seq FROM {stage} "
                    f"ON CONFLICT (user_id, key) {update} WHERE {newer}"
                )
                cursor.execute(f"DROP TABLE {stage}")
        finally:
            cursor.close()

    def _winners(self, rows: Sequence[CurrentTextRow]) -> list[CurrentTextRow]:
        """The rows later by (at, seq) than the stored row of their setting (or with none); moves
        the digest by h(winners) - h(the rows they replace). Canonical UTC text sorts like time."""
        if not rows:
            return []
        stored = self._stored_current(rows)
        winners: list[CurrentTextRow] = []
        replaced: list[CurrentTextRow] = []
        for row in rows:
            before = stored.get((row[0], row[1]))
            if before is not None:
                if (row[3], row[4]) <= (before[3], before[4]):
                    continue
                replaced.append(before)
            winners.append(row)
        change = current_digest.text_rows_digest(winners) - current_digest.text_rows_digest(replaced)
        self._digest = current_digest.add(self._digest, change)
        return winners

    def _stored_current(self, rows: Sequence[CurrentTextRow]) -> dict[tuple[int, str], CurrentTextRow]:
        """The consent_current rows of the settings of `rows`, in one query, by (user_id, key)."""
        if self._sqlite:
            sql = (
                "SELECT c.user_id, c.key, c.value, c.at, c.seq FROM json_each(?) AS wanted "
                "JOIN consent_current AS c ON c.user_id = json_extract(wanted.value, '$[0]') "
                "AND c.key = json_extract(wanted.value, '$[1]')"
            )
            # [[user_id, "key"], ...] joined as text: no Python list per row
            wanted = ",".join(f"[{int(row[0])},{_json_quote(row[1])}]" for row in rows)
            params: tuple[Any, ...] = (f"[{wanted}]",)
        else:
            sql = (
                f"SELECT c.user_id, c.key, c.value, {PG_TEXT_TIME.format(col='c.at')}, c.seq "
                "FROM unnest(%s::bigint[], %s::text[]) AS wanted(user_id, key) "
                "JOIN consent_current AS c ON c.user_id = wanted.user_id AND c.key = wanted.key"
            )
            params = ([row[0] for row in rows], [row[1] for row in rows])
        cursor = _driver(self.conn).cursor()
        try:
            cursor.execute(sql, params)
            found = cursor.fetchall()
        finally:
            cursor.close()
        return {(row[0], row[1]): tuple(row) for row in found}

    def set_head(self, seq: int, hash_: str) -> None:
        """Point the chain head at the last appended event, with the digest of consent_current."""
        ph = _ph(self.conn)
        self.conn.exec_driver_sql(
            f"UPDATE consent_chain_head SET last_seq = {ph}, last_hash = {ph}, current_digest = {ph} "
            f"WHERE id = {CHAIN_HEAD_ID}",
            (seq, hash_, current_digest.to_stored(self._digest)),
        )
        self.head = ChainHeadState(seq, hash_, self._digest)

    def bulk_mode(self) -> None:
        """Give SQLite a large page cache until this transaction ends (indexes stay in memory)."""
        if self._sqlite:
            self.conn.exec_driver_sql("PRAGMA cache_size = -524288")  # 512 MiB
            self.bulk = True


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
            if _is_sqlite(conn):
                conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            appender: Appender | None = None
            try:
                with conn.begin():
                    appender = Appender(conn, _read_head(conn, for_update=True))
                    yield appender
            finally:
                if appender is not None and appender.bulk:
                    # through the driver: a SQLAlchemy statement here would begin another transaction
                    _driver(conn).execute("PRAGMA cache_size = -2000")

    # --- reads ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[Connection]:
        """A connection whose reads all see one consistent state of the database."""
        with self.engine.connect() as conn:
            if not _is_sqlite(conn):
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def head(self, conn: Connection | None = None) -> ChainHeadState:
        if conn is not None:
            return _read_head(conn, for_update=False)
        with self.engine.connect() as own:
            return _read_head(own, for_update=False)

    def events_for_user(self, user_id: int, *, until: datetime | None = None) -> list[ConsentEvent]:
        """The user's events in seq order; with `until`, only those effective at or before it."""
        table = ConsentEventRow.__table__
        stmt = select(*(table.c[name] for name in EVENT_COLUMNS)).where(table.c.user_id == user_id)
        if until is not None:
            stmt = stmt.where(table.c.at <= until)
        stmt = stmt.order_by(table.c.seq)
        with self.engine.connect() as conn:
            return [_event_row(row) for row in conn.execute(stmt)]

    def last_event(self, conn: Connection) -> LastEvent | None:
        """The event with the greatest seq (a primary-key lookup); None for an empty ledger."""
        row = conn.exec_driver_sql("SELECT seq, hash FROM consent_events ORDER BY seq DESC LIMIT 1").first()
        return None if row is None else LastEvent(int(row[0]), str(row[1]))

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT COUNT(*) FROM consent_events").scalar_one())

    def iter_chain(
        self, conn: Connection, *, after: int = 0, upto: int | None = None, batch_size: int = FETCH_BATCH
    ) -> Iterator[list[EventTextRow]]:
        """Events with after < seq <= upto (no upper bound: all), in seq order, times as canonical
        text, in batches (streamed, never loaded whole)."""
        if _is_sqlite(conn):
            columns = list(EVENT_COLUMNS)
        else:
            columns = [
                PG_TEXT_TIME.format(col=name) if name in ("at", "recorded_at") else name
                for name in EVENT_COLUMNS
            ]
        ph = _ph(conn)
        where, params = f"seq > {ph}", [after]
        if upto is not None:
            where += f" AND seq <= {ph}"
            params.append(upto)
        sql = f"SELECT {', '.join(columns)} FROM consent_events WHERE {where} ORDER BY seq"
        yield from _stream(conn, sql, params, batch_size)

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
        return _as_snapshot(
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
        if not _is_sqlite(conn):
            sql = (
                "SELECT DISTINCT ON (user_id, key) user_id, key, value::int FROM consent_events "
                "WHERE at <= %s AND seq <= %s ORDER BY user_id, key, at DESC, seq DESC"
            )
            return _pg_csv(conn, sql, (at, watermark), _CURRENT_CSV)
        bound = utc_text(at)
        if method == "window":
            sql = (
                "SELECT user_id, key, value FROM ("
                " SELECT user_id, key, value, ROW_NUMBER() OVER ("
                "  PARTITION BY user_id, key ORDER BY at DESC, seq DESC) AS rn"
                " FROM consent_events WHERE +at <= ? AND seq <= ?) WHERE rn = 1"
            )
            return _to_snapshot(_stream(conn, sql, (bound, watermark)))
        if method not in ("auto", "duckdb"):
            raise ValueError(f"method: expected auto, duckdb or window, got {method!r}")
        sql = (
            "SELECT group_concat(user_id || ',' || quote(key) || ',' || value || ',' || quote(at) || ',' || seq, "
            "char(10)) FROM consent_events WHERE seq > ? AND seq <= ? AND +at <= ?"
        )
        tables = [
            _sqlite_csv(conn, sql, (start, min(start + CSV_CHUNK_ROWS, watermark), bound), _CANDIDATES_CSV)
            for start in range(0, watermark, CSV_CHUNK_ROWS)
        ]
        if not tables:
            return SNAPSHOT_SCHEMA.empty_table()
        return reduce_latest(pa.concat_tables(tables))

    def scan_events_arrow(self, conn: Connection) -> pa.Table:
        """Every event's (user_id, key, value) through plain driver fetches: the benchmark baseline."""
        return _to_snapshot(_stream(conn, "SELECT user_id, key, value FROM consent_events", ()))


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
    return _as_snapshot(result)


def _read_current(
    conn: Connection, watermark: int, pg_columns: str, sqlite_tail: str, schema: pa.Schema
) -> pa.Table:
    """consent_current as CSV parsed by Arrow: `pg_columns` on PostgreSQL; on SQLite user_id then
    `sqlite_tail` (a CSV line expression), in user_id ranges of about CSV_CHUNK_ROWS events."""
    if not _is_sqlite(conn):
        return _pg_csv_raw(conn, f"SELECT {pg_columns} FROM consent_current", (), schema)
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
            _sqlite_csv(conn, sql, (start, min(start + width - 1, high)), schema)
            for start in range(low, high + 1, width)
        ]
    )


def _csv_table(data: bytes, schema: pa.Schema, quote_char: str) -> pa.Table:
    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=schema.names),
        parse_options=pacsv.ParseOptions(quote_char=quote_char, double_quote=True, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={field.name: field.type for field in schema},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _sqlite_csv(conn: Connection, sql: str, params: Sequence[Any], schema: pa.Schema) -> pa.Table:
    """Run a `SELECT group_concat(<csv line>, char(10)) ...` and parse the text with Arrow.

    SQLite builds the text in C and Arrow parses it in parallel, so no Python object is made per
    value: about 3x faster than fetching rows through the driver (benchmarks/consent_snapshot.py).
    Strings are SQL-quoted with quote(), which is CSV with ' as the quote character.
    """
    text = conn.exec_driver_sql(sql, tuple(params)).scalar()
    if not text:
        return schema.empty_table()
    try:
        return _csv_table(text.encode("utf-8"), schema, "'")
    except pa.ArrowInvalid as exc:
        raise ValueError(
            f"consent data that does not fit the schema {schema}: {exc}; run the ledger's verify()"
        ) from exc


def _pg_csv(conn: Connection, sql: str, params: Sequence[Any], schema: pa.Schema) -> pa.Table:
    """`COPY (sql) TO STDOUT (FORMAT csv)` parsed by Arrow, as SNAPSHOT_SCHEMA."""
    return _as_snapshot(_pg_csv_raw(conn, sql, params, schema))


def _pg_csv_raw(conn: Connection, sql: str, params: Sequence[Any], schema: pa.Schema) -> pa.Table:
    """`COPY (sql) TO STDOUT (FORMAT csv)` parsed by Arrow (no Python object per value)."""
    buffer = io.BytesIO()
    cursor = _driver(conn).cursor()
    try:
        with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
            for block in copy:
                buffer.write(block)
    finally:
        cursor.close()
    if buffer.tell() == 0:
        return schema.empty_table()
    return _csv_table(buffer.getvalue(), schema, '"')


def _as_snapshot(table: pa.Table) -> pa.Table:
    """user_id, key, value (0/1) -> SNAPSHOT_SCHEMA."""
    return pa.table([table["user_id"], table["key"], table["value"].cast(pa.bool_())], schema=SNAPSHOT_SCHEMA)


def _stream(
    conn: Connection, sql: str, params: Sequence[Any], batch_size: int = FETCH_BATCH
) -> Iterator[list[Any]]:
    """Rows of `sql` in batches, through the driver (a server-side cursor on PostgreSQL)."""
    driver = _driver(conn)
    if _is_sqlite(conn):
        cursor = driver.cursor()
    else:
        cursor = driver.cursor(name=f"datalease_stream_{uuid.uuid4().hex[:12]}")
        cursor.itersize = batch_size
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(batch_size):
            yield rows
    finally:
        cursor.close()


def _to_snapshot(batches: Iterable[list[Any]]) -> pa.Table:
    record_batches = []
    for rows in batches:
        user_ids, keys, values = zip(*rows, strict=True)
        record_batches.append(
            pa.record_batch(
                [
                    pa.array(user_ids, pa.int64()),
                    pa.array(keys, pa.string()),
                    _bools(values),
                ],
                schema=SNAPSHOT_SCHEMA,
            )
        )
    return pa.Table.from_batches(record_batches, schema=SNAPSHOT_SCHEMA)


def _bools(values: Sequence[Any]) -> pa.Array:
    """A bool array from Python bools (PostgreSQL) or 0/1 integers (SQLite)."""
    if values and isinstance(values[0], bool):
        return pa.array(values, pa.bool_())
    return pa.array(values, pa.int8()).cast(pa.bool_())


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
