"""The consent ledger's appends: one transaction that holds the chain lock, inserts hash-chained events,
queues their revocation intents, keeps `consent_current` and the chain head (with its digest) in step.

Bulk paths talk to the DBAPI driver directly (sqlite3 `executemany`, psycopg `COPY`) because per-row
ORM or Core overhead would dominate at millions of rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, select, text

import datalease.consent.digest as current_digest
from datalease.consent.chain import ConsentEvent
from datalease.store.arrow_transport import driver, is_sqlite
from datalease.store.models import CHAIN_HEAD_ID, ConsentEventRow
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
    "notice_sha256",
    "notice_locale",
    "surface",
)
CURRENT_COLUMNS: Final = ("user_id", "key", "value", "at", "seq")
PG_TEXT_TIME: Final = """to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
_json_quote = json.encoder.encode_basestring_ascii  # what json.dumps emits for a str
# One row of consent_events with times as canonical UTC text, in EVENT_COLUMNS order.
# The last three (what was shown, where: chain encoding 2) are None for events without them.
EventTextRow = tuple[
    int, str, int, str, bool, str, str, str, str, str, str, str | None, str | None, str | None
]
# One row of consent_current with the time as canonical UTC text, in CURRENT_COLUMNS order.
CurrentTextRow = tuple[int, str, bool, str, int]


@dataclass(frozen=True, slots=True)
class ChainHeadState:
    seq: int
    hash: str
    digest: int  # of consent_current (datalease.consent.digest), unsigned


def placeholder(conn: Connection) -> str:
    return "?" if is_sqlite(conn) else "%s"


def event_row(row: Sequence[Any]) -> ConsentEvent:
    seq, event_id, user_id, key, value, at, recorded_at, source, actor, prev_hash, hash_, *shown = row
    return ConsentEvent(
        seq, event_id, user_id, key, bool(value), at, recorded_at, source, actor, prev_hash, hash_, *shown
    )


def read_head(conn: Connection, *, for_update: bool) -> ChainHeadState:
    sql = f"SELECT last_seq, last_hash, current_digest FROM consent_chain_head WHERE id = {CHAIN_HEAD_ID}"
    if for_update and not is_sqlite(conn):
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
        self._sqlite = is_sqlite(conn)
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
                event = event_row(row)
                found[event.event_id] = event
        return found

    def insert_events(self, rows: Sequence[EventTextRow]) -> None:
        """Append rows (seq already assigned, contiguous after the head, hashes computed)."""
        if not rows:
            return
        columns = ", ".join(EVENT_COLUMNS)
        cursor = driver(self.conn).cursor()
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
        cursor = driver(self.conn).cursor()
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
        cursor = driver(self.conn).cursor()
        try:
            cursor.execute(sql, params)
            found = cursor.fetchall()
        finally:
            cursor.close()
        return {(row[0], row[1]): tuple(row) for row in found}

    def set_head(self, seq: int, hash_: str) -> None:
        """Point the chain head at the last appended event, with the digest of consent_current."""
        ph = placeholder(self.conn)
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
