"""The consent ledger: append-only setting events on a hash chain, and the state they add up to.

Every change of a user's setting is an event `(user_id, key, value, at)`: `at` is when it takes
effect (it may be backdated, e.g. an imported history or a support correction), `recorded_at` when the
ledger learnt it. The state of a user at time T is, per key, the event with the greatest `(at, seq)`
among those with `at <= T`. Events are never updated or deleted; a later event supersedes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Engine

from datalease.consent.chain import ConsentEvent, canonical_time, row_canonical_text
from datalease.consent.inputs import (
    ConsentError,
    Validator,
    ValidEvent,
    check_user_id,
    conflict_error,
    event_instant,
    new_event_ids,
)
from datalease.consent.verify import VerifyResult, verify_ledger
from datalease.store.consent_append import Appender, CurrentTextRow, EventTextRow
from datalease.store.consent_events import ConsentEventStore, chunked
from datalease.timeparse import as_utc, utc_now

BULK_BATCH: Final = 50_000


@dataclass(frozen=True, slots=True)
class NewConsentEvent:
    """An event to record (input of `record_many`); same meaning as `ConsentLedger.record`'s arguments."""

    user_id: int
    key: str
    value: bool
    at: datetime | None = None
    source: str = "user"
    actor: str | None = None
    event_id: str | None = None
    notice_sha256: str | None = None  # the notice shown (chain encoding 2 when any of these is given)
    notice_locale: str | None = None
    surface: str | None = None


@dataclass(frozen=True, slots=True)
class SettingState:
    """The effective value of one setting, and the event it comes from."""

    value: bool
    at: datetime
    source: str
    actor: str
    seq: int
    notice_sha256: str | None = None
    notice_locale: str | None = None
    surface: str | None = None


@dataclass(frozen=True, slots=True)
class BulkResult:
    appended: int
    already_present: int
    first_seq: int | None
    last_seq: int | None


class ConsentLedger:
    """Record and read consent events in one database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = ConsentEventStore(engine)

    # --- writing ------------------------------------------------------------------------------
    def record(
        self,
        user_id: int,
        key: str,
        value: bool,
        *,
        at: datetime | None = None,
        source: str = "user",
        actor: str | None = None,
        event_id: str | None = None,
        notice_sha256: str | None = None,
        notice_locale: str | None = None,
        surface: str | None = None,
    ) -> ConsentEvent:
        """Append one event and return it as stored.

        `at` (default: now) is when the setting takes effect; it may lie in the past. `actor`
        defaults to `user:<id>` for source "user", else to the source. Giving an `event_id` makes
        the call idempotent: recording the same id again with the same content returns the stored
        event (a retry without `at` matches any `at`); with different content it raises.
        `notice_sha256`/`notice_locale`/`surface` record what was shown and where (chain encoding 2).
        """
        valid = Validator().check(
            user_id,
            key,
            value,
            at,
            source,
            actor,
            event_id,
            notice_sha256=notice_sha256,
            notice_locale=notice_locale,
            surface=surface,
        )
        with self.store.append_transaction() as tx:
            if valid.event_id is not None:
                stored = tx.find_events([valid.event_id]).get(valid.event_id)
                if stored is not None:
                    if not valid.same_as(stored):
                        raise conflict_error(valid, stored, None)
                    return stored
            now = utc_now()
            event_id = valid.event_id or new_event_ids(1)[0]
            row = _chain_row(tx.head.seq + 1, tx.head.hash, valid, canonical_time(now), event_id)
            tx.insert_events([row])
            tx.upsert_current([(row[2], row[3], row[4], row[5], row[0])])
            tx.set_head(row[0], row[10])
        return ConsentEvent(
            seq=row[0],
            event_id=row[1],
            user_id=row[2],
            key=row[3],
            value=row[4],
            at=now if valid.at_text is None else as_utc(datetime.fromisoformat(row[5])),
            recorded_at=now,
            source=row[7],
            actor=row[8],
            prev_hash=row[9],
            hash=row[10],
            notice_sha256=row[11],
            notice_locale=row[12],
            surface=row[13],
        )

    def record_many(self, events: Iterable[NewConsentEvent], *, batch_size: int = BULK_BATCH) -> BulkResult:
        """Append many events in ONE transaction (all or nothing), e.g. an import.

        Events get consecutive seq numbers in input order. Those with an event_id already in the
        ledger (or earlier in `events`) are skipped when identical and refused when different.
        A bad event aborts the whole import with a `ConsentError` naming `events[i].<field>`.
        """
        validator = Validator()
        appended = present = 0
        first_seq: int | None = None
        now_text = canonical_time(utc_now())
        with self.store.append_transaction() as tx:
            if batch_size >= 10_000:
                tx.bulk_mode()
            seq, prev = tx.head.seq, tx.head.hash
            index = 0
            for chunk in chunked(events, batch_size):
                valid_chunk: list[ValidEvent] = []
                for item in chunk:
                    valid_chunk.append(
                        validator.check(
                            item.user_id,
                            item.key,
                            item.value,
                            item.at,
                            item.source,
                            item.actor,
                            item.event_id,
                            index,
                            notice_sha256=item.notice_sha256,
                            notice_locale=item.notice_locale,
                            surface=item.surface,
                        )
                    )
                    index += 1
                rows, skipped = _chain_chunk(tx, valid_chunk, index - len(valid_chunk), seq, prev, now_text)
                present += skipped
                if rows:
                    if first_seq is None:
                        first_seq = rows[0][0]
                    tx.insert_events(rows)
                    tx.upsert_current(_latest_per_setting(rows))
                    seq, prev = rows[-1][0], rows[-1][10]
                    appended += len(rows)
            if appended:
                tx.set_head(seq, prev)
        return BulkResult(appended, present, first_seq, seq if appended else None)

    # --- reading ------------------------------------------------------------------------------
    def state_at(self, user_id: int, at: datetime | None = None) -> dict[str, SettingState]:
        """The user's explicit settings in effect at `at` (default now), by key."""
        check_user_id(user_id)
        when = utc_now() if at is None else event_instant(at, None)
        rows = self.store.events_for_user(user_id, until=when)
        rows.sort(key=lambda r: (r.at, r.seq))
        return {
            r.key: SettingState(
                r.value, r.at, r.source, r.actor, r.seq, r.notice_sha256, r.notice_locale, r.surface
            )
            for r in rows
        }

    def history(self, user_id: int) -> list[ConsentEvent]:
        """Every event of the user, in the order they were recorded (seq)."""
        return self.store.events_for_user(user_id)

    def head(self) -> tuple[int, str]:
        """(last seq, last hash); (0, 64 zeros) for an empty ledger."""
        state = self.store.head()
        return state.seq, state.hash

    def count(self) -> int:
        return self.store.event_count()

    # --- checking -----------------------------------------------------------------------------
    def verify(self, *, workers: int | None = None) -> VerifyResult:
        """Re-walk the whole chain and check the state derived from it (see consent/verify.py)."""
        return verify_ledger(self.engine, self.store, workers=workers)


def _chain_row(seq: int, prev: str, valid: ValidEvent, now_text: str, event_id: str) -> EventTextRow:
    at_text = valid.at_text or now_text
    text = row_canonical_text(
        prev,
        seq,
        event_id,
        valid.user_id,
        valid.key,
        valid.value,
        at_text,
        now_text,
        valid.source,
        valid.actor,
        valid.notice_sha256,
        valid.notice_locale,
        valid.surface,
    )
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    return (
        seq,
        event_id,
        valid.user_id,
        valid.key,
        valid.value,
        at_text,
        now_text,
        valid.source,
        valid.actor,
        prev,
        digest,
        valid.notice_sha256,
        valid.notice_locale,
        valid.surface,
    )


def _chain_chunk(
    tx: Appender, chunk: list[ValidEvent], first_index: int, seq: int, prev: str, now_text: str
) -> tuple[list[EventTextRow], int]:
    """Hash-chain one chunk after (seq, prev); skip events already present (same id and content)."""
    explicit = [v.event_id for v in chunk if v.event_id is not None]
    stored = tx.find_events(explicit) if explicit else {}
    in_chunk: dict[str, tuple[int, ValidEvent]] = {}
    rows: list[EventTextRow] = []
    skipped = 0
    fresh_ids = iter(new_event_ids(len(chunk) - len(explicit)))
    for offset, valid in enumerate(chunk):
        if valid.event_id is not None:
            earlier = stored.get(valid.event_id)
            if earlier is not None:
                if not valid.same_as(earlier):
                    raise conflict_error(valid, earlier, first_index + offset)
                skipped += 1
                continue
            seen = in_chunk.get(valid.event_id)
            if seen is not None:
                if seen[1] != valid and not (valid.at_text is None and _equal_but_at(seen[1], valid)):
                    raise ConsentError(
                        "event_id",
                        f"{valid.event_id} appears twice in this import with different content "
                        f"(first as events[{seen[0]}]); expected one content per event_id",
                        index=first_index + offset,
                    )
                skipped += 1
                continue
            in_chunk[valid.event_id] = (first_index + offset, valid)
        seq += 1
        row = _chain_row(seq, prev, valid, now_text, valid.event_id or next(fresh_ids))
        prev = row[10]
        rows.append(row)
    return rows, skipped


def _equal_but_at(a: ValidEvent, b: ValidEvent) -> bool:
    return (a.user_id, a.key, a.value, a.source, a.actor, a.notice_sha256, a.notice_locale, a.surface) == (
        b.user_id,
        b.key,
        b.value,
        b.source,
        b.actor,
        b.notice_sha256,
        b.notice_locale,
        b.surface,
    )


def _latest_per_setting(rows: list[EventTextRow]) -> list[CurrentTextRow]:
    """Per (user_id, key), the row with the greatest (at, seq); rows are in seq order."""
    latest: dict[tuple[int, str], EventTextRow] = {}
    for row in rows:
        slot = (row[2], row[3])
        current = latest.get(slot)
        if current is None or row[5] >= current[5]:  # later seq wins ties on at
            latest[slot] = row
    return sorted((r[2], r[3], r[4], r[5], r[0]) for r in latest.values())  # B-tree order: fewer page misses
