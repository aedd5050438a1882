"""The consent ledger: append-only setting events on a hash chain, and the state they add up to.

Every change of a user's setting is an event `(user_id, key, value, at)`: `at` is when it takes
effect (it may be backdated, e.g. an imported history or a support correction), `recorded_at` when the
ledger learnt it. The state of a user at time T is, per key, the event with the greatest `(at, seq)`
among those with `at <= T`. Events are never updated or deleted; a later event supersedes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final, NamedTuple

from sqlalchemy import Connection, Engine
from sqlalchemy.pool import NullPool

from datalease.consent.chain import GENESIS_HASH, ConsentEvent, canonical_text, canonical_time
from datalease.consent.integrity import current_problem, digest_problem
from datalease.policy.vocabulary import SettingKeyError, validate_setting_key
from datalease.store.consent_derived import first_current_mismatch
from datalease.store.consent_events import (
    Appender,
    ChainHeadState,
    ConsentEventStore,
    CurrentTextRow,
    EventTextRow,
    chunked,
)
from datalease.timeparse import TimeFormatError, as_utc, parse_instant, utc_now

SOURCES: Final = ("user", "platform", "import")
MAX_USER_ID: Final = 2**63 - 1
MAX_ACTOR_LENGTH: Final = 200
BULK_BATCH: Final = 50_000


class ConsentError(ValueError):
    """A consent event that cannot be recorded; names the field and what was expected."""

    def __init__(self, field: str, message: str, *, index: int | None = None) -> None:
        self.field = field
        self.index = index
        where = field if index is None else f"events[{index}].{field}"
        super().__init__(f"{where}: {message}")


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


@dataclass(frozen=True, slots=True)
class SettingState:
    """The effective value of one setting, and the event it comes from."""

    value: bool
    at: datetime
    source: str
    actor: str
    seq: int


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int  # events whose chain was found sound
    first_bad_seq: int | None  # the first broken event; None when the events are sound
    problem: str | None
    setting: tuple[int, str] | None = None  # (user_id, key) of the first wrong consent_current row


@dataclass(frozen=True, slots=True)
class BulkResult:
    appended: int
    already_present: int
    first_seq: int | None
    last_seq: int | None


@dataclass(frozen=True, slots=True)
class _Valid:
    user_id: int
    key: str
    value: bool
    at_text: str | None  # None: "now", decided at write time
    source: str
    actor: str
    event_id: str | None

    def same_as(self, stored: ConsentEvent) -> bool:
        return (
            self.user_id == stored.user_id
            and self.key == stored.key
            and self.value == stored.value
            and (self.at_text is None or self.at_text == canonical_time(stored.at))
            and self.source == stored.source
            and self.actor == stored.actor
        )


def default_actor(source: str, user_id: int) -> str:
    return f"user:{user_id}" if source == "user" else source


_uuid_lock = threading.Lock()
_uuid_state = [0, 0]  # last unix ms used, next counter value


def new_event_ids(count: int) -> list[str]:
    """`count` fresh time-ordered UUIDs (version 7, RFC 9562), ascending within this process.

    Layout: 48-bit Unix milliseconds, version 7, a 40-bit counter (spread over rand_a and the top of
    rand_b) and 34 random bits. Ascending ids keep the unique index on event_id append-only, which
    makes bulk imports much faster than random (version 4) ids; the random bits keep ids from
    different processes apart.
    """
    with _uuid_lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _uuid_state[0]:
            _uuid_state[0], _uuid_state[1] = now_ms, 0
        ms, first = _uuid_state
        if first + count >= 1 << 40:  # counter exhausted in this millisecond: borrow the next one
            ms, first = ms + 1, 0
        _uuid_state[0], _uuid_state[1] = ms, first + count
    randoms = os.urandom(5 * count)
    ids = []
    prefix = f"{ms:012x}"
    for i in range(count):
        counter = first + i
        rand = int.from_bytes(randoms[5 * i : 5 * i + 5], "big") & 0x3_FFFF_FFFF  # 34 bits
        rand_a = counter >> 28  # top 12 bits of the counter
        rand_b = ((counter & 0xFFF_FFFF) << 34) | rand  # 28 counter bits + 34 random bits = 62
        tail = (0b10 << 62) | rand_b
        ids.append(f"{prefix[:8]}-{prefix[8:]}-7{rand_a:03x}-{tail >> 48:04x}-{tail & 0xFFFF_FFFF_FFFF:012x}")
    return ids


class _Validator:
    """Checks and normalises inputs; caches the (few) keys already validated."""

    def __init__(self) -> None:
        self._keys: set[str] = set()

    def check(
        self,
        user_id: object,
        key: object,
        value: object,
        at: object,
        source: object,
        actor: object,
        event_id: object,
        index: int | None = None,
    ) -> _Valid:
        user_id = _check_user_id(user_id, index)
        if type(key) is not str:
            raise ConsentError("key", f"expected a setting key text, got {key!r}", index=index)
        if key not in self._keys:
            try:
                validate_setting_key(key)
            except SettingKeyError as exc:
                raise ConsentError("key", str(exc), index=index) from None
            self._keys.add(key)
        if type(value) is not bool:
            raise ConsentError("value", f"expected true or false (a boolean), got {value!r}", index=index)
        if source not in SOURCES or type(source) is not str:
            raise ConsentError("source", f"expected one of {', '.join(SOURCES)}, got {source!r}", index=index)
        if at is None:
            at_text = None
        elif type(at) is datetime and at.tzinfo is UTC:  # the common case, without conversions
            at_text = at.isoformat(timespec="microseconds")[:-6] + "Z"
        else:
            at_text = canonical_time(_instant(at, index))
        if actor is None:
            actor = default_actor(source, user_id)
        elif type(actor) is not str or not actor.strip() or len(actor) > MAX_ACTOR_LENGTH:
            raise ConsentError(
                "actor",
                f"expected a non-empty text of at most {MAX_ACTOR_LENGTH} characters naming who made the "
                f"change, got {actor!r}",
                index=index,
            )
        if event_id is not None:
            event_id = _event_id(event_id, index)
        return _Valid(user_id, key, value, at_text, source, actor, event_id)


def _check_user_id(user_id: object, index: int | None = None) -> int:
    if type(user_id) is not int or not 0 <= user_id <= MAX_USER_ID:
        raise ConsentError(
            "user_id", f"expected a non-negative whole number (64-bit), got {user_id!r}", index=index
        )
    return user_id


def _instant(at: object, index: int | None) -> datetime:
    if isinstance(at, datetime | date):
        return as_utc(at)
    if isinstance(at, str):
        try:
            return parse_instant(at)
        except TimeFormatError as exc:
            raise ConsentError("at", str(exc), index=index) from None
    raise ConsentError("at", f"expected a date-time such as 2024-11-15T09:30:00Z, got {at!r}", index=index)


def _event_id(event_id: object, index: int | None) -> str:
    if isinstance(event_id, uuid.UUID):
        return str(event_id)
    if isinstance(event_id, str):
        try:
            return str(uuid.UUID(event_id))
        except ValueError:
            pass
    raise ConsentError(
        "event_id",
        f"expected a UUID such as 3f2b8c1e-0d4a-4e8b-9a61-2f0c5d7e9b13, got {event_id!r}",
        index=index,
    )


def _conflict(valid: _Valid, stored: ConsentEvent, index: int | None) -> ConsentError:
    return ConsentError(
        "event_id",
        f"{valid.event_id} was already recorded as event {stored.seq} with different content "
        f"(user {stored.user_id}, {stored.key}={'true' if stored.value else 'false'} at "
        f"{canonical_time(stored.at)}, source {stored.source}, actor {stored.actor}); "
        "expected the same content for a retry, or a new event_id",
        index=index,
    )


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
    ) -> ConsentEvent:
        """Append one event and return it as stored.

        `at` (default: now) is when the setting takes effect; it may lie in the past. `actor`
        defaults to `user:<id>` for source "user", else to the source. Giving an `event_id` makes
        the call idempotent: recording the same id again with the same content returns the stored
        event (a retry without `at` matches any `at`); with different content it raises.
        """
        valid = _Validator().check(user_id, key, value, at, source, actor, event_id)
        with self.store.append_transaction() as tx:
            if valid.event_id is not None:
                stored = tx.find_events([valid.event_id]).get(valid.event_id)
                if stored is not None:
                    if not valid.same_as(stored):
                        raise _conflict(valid, stored, None)
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
        )

    def record_many(self, events: Iterable[NewConsentEvent], *, batch_size: int = BULK_BATCH) -> BulkResult:
        """Append many events in ONE transaction (all or nothing), e.g. an import.

        Events get consecutive seq numbers in input order. Those with an event_id already in the
        ledger (or earlier in `events`) are skipped when identical and refused when different.
        A bad event aborts the whole import with a `ConsentError` naming `events[i].<field>`.
        """
        validator = _Validator()
        appended = present = 0
        first_seq: int | None = None
        now_text = canonical_time(utc_now())
        with self.store.append_transaction() as tx:
            if batch_size >= 10_000:
                tx.bulk_mode()
            seq, prev = tx.head.seq, tx.head.hash
            index = 0
            for chunk in chunked(events, batch_size):
                valid_chunk: list[_Valid] = []
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
        _check_user_id(user_id)
        when = utc_now() if at is None else _instant(at, None)
        rows = self.store.events_for_user(user_id, until=when)
        rows.sort(key=lambda r: (r.at, r.seq))
        return {r.key: SettingState(r.value, r.at, r.source, r.actor, r.seq) for r in rows}

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
        """Re-walk the whole chain in seq order and report the first broken event; then check the
        state derived from the events.

        Detects an edited event (its hash no longer matches its content), a deleted event (a gap
        in seq, or events missing at the end compared with the chain head), and reordered or
        re-linked events (prev_hash not equal to the previous event's hash). Then, with the events
        sound: the chain head is the last event (seq and hash); consent_current holds exactly the
        latest event by (at, seq) of every (user_id, key) — the first missing, extra or differing
        row is named with what differs; and the digest in the chain head is that of consent_current.

        Events are streamed in batches, never loaded whole; the consent_current comparison runs in
        the database and returns only its first disagreement. Ledgers of PARALLEL_VERIFY_MIN events
        or more are split into seq ranges checked by `workers` processes (default: up to 2, the
        cores of these machines) and stitched together, which gives the same verdict as one pass;
        `workers=1` forces one stream.
        """
        with self.store.read_transaction() as conn:
            head = self.store.head(conn)
            url = _reopenable_url(self.engine)
            if workers is None:
                workers = min(2, os.cpu_count() or 1) if head.seq >= PARALLEL_VERIFY_MIN else 1
            workers = max(1, min(workers, head.seq)) if url is not None else 1
            bounds = [head.seq * i // workers for i in range(workers + 1)]
            if workers == 1 or url is None:
                ranges = [_check_rows(self.store.iter_chain(conn))]
            else:
                helpers = [_RangeWorker(url, bounds[i], bounds[i + 1]) for i in range(workers - 1)]
                try:
                    # the last range, open-ended, is read here inside this read transaction
                    last = _check_rows(self.store.iter_chain(conn, after=bounds[-2]))
                    ranges = [helper.result(self.store) for helper in helpers] + [last]
                finally:
                    for helper in helpers:
                        helper.stop()
            verdict = _stitch(ranges, head.seq, head.hash)
            if verdict.ok:
                verdict = self._verify_derived(conn, head, verdict.checked)
        return verdict

    def _verify_derived(self, conn: Connection, head: ChainHeadState, checked: int) -> VerifyResult:
        """consent_current against the events, then the digest; the chain (and head) is sound."""
        mismatch = first_current_mismatch(conn)
        if mismatch is not None:
            return VerifyResult(
                False, checked, None, current_problem(mismatch), (mismatch.user_id, mismatch.key)
            )
        problem = digest_problem(head, self.store.current_rows(conn, head.seq))
        if problem is not None:
            return VerifyResult(False, checked, None, problem)
        return VerifyResult(True, checked, None, None)


PARALLEL_VERIFY_MIN: Final = 400_000


class _RangeCheck(NamedTuple):
    """What one reader saw of a seq range: its ends, and its first internal problem if any."""

    rows: int  # rows read and found sound (up to the problem)
    first_seq: int
    first_prev: str
    last_seq: int
    last_hash: str
    bad_seq: int | None = None
    problem: str | None = None


def _reopenable_url(engine: Engine) -> str | None:
    """The URL another process can open this database with (None for in-memory SQLite)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and (url.database or ":memory:") == ":memory:":
        return None
    return url.render_as_string(hide_password=False)


class _RangeWorker:
    """Checks the seq range (after, upto] in a separate Python process.

    A plain subprocess (`python -c`), not multiprocessing: nothing of the caller's __main__ is
    re-imported, so verify() works from any script. The database URL travels on stdin, never on
    the command line. If the helper fails for any reason its range is checked here instead.
    """

    def __init__(self, url: str, after: int, upto: int) -> None:
        self.after, self.upto = after, upto
        self.fell_back = False
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.process: subprocess.Popen[bytes] | None
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from datalease.consent.ledger import _range_worker_main; _range_worker_main()",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"url": url, "after": after, "upto": upto}).encode())
            self.process.stdin.close()
        except OSError:
            self.process = None

    def result(self, store: ConsentEventStore) -> _RangeCheck:
        if self.process is not None:
            assert self.process.stdout is not None
            output = self.process.stdout.read()
            if self.process.wait() == 0:
                try:
                    return _RangeCheck(*json.loads(output))
                except (ValueError, TypeError):
                    pass
        self.fell_back = True
        with store.read_transaction() as conn:  # fallback: check the range here
            return _check_rows(store.iter_chain(conn, after=self.after, upto=self.upto))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _range_worker_main() -> None:
    """Entry point of a _RangeWorker process: request on stdin, _RangeCheck as JSON on stdout."""
    from datalease.store.db import make_engine

    request = json.loads(sys.stdin.read())
    engine = make_engine(request["url"], poolclass=NullPool)
    try:
        store = ConsentEventStore(engine)
        with store.read_transaction() as conn:
            check = _check_rows(store.iter_chain(conn, after=request["after"], upto=request["upto"]))
    finally:
        engine.dispose()
    sys.stdout.write(json.dumps(list(check)))


def _check_rows(batches: Iterable[list[EventTextRow]]) -> _RangeCheck:
    """Check consecutive rows against each other and each row against its own hash."""
    sha256 = hashlib.sha256
    count, first_seq, first_prev, expected, prev = 0, 0, "", 0, ""
    for batch in batches:
        for row in batch:
            seq = row[0]
            if count == 0:
                first_seq, first_prev, expected, prev = seq, row[9], seq, row[9]
            if seq != expected:
                return _RangeCheck(
                    count, first_seq, first_prev, expected - 1, prev, expected, _gap_message(expected, seq)
                )
            if row[9] != prev:
                return _RangeCheck(count, first_seq, first_prev, seq - 1, prev, seq, _unlinked_message(seq))
            try:
                good = sha256(canonical_text(row[9], *row[:9]).encode("ascii")).hexdigest() == row[10]
            except (TypeError, ValueError, UnicodeEncodeError):
                good = False
            if not good:
                return _RangeCheck(
                    count,
                    first_seq,
                    first_prev,
                    seq - 1,
                    prev,
                    seq,
                    f"event {seq} was altered: its stored content (user, key, value, times, source or "
                    "actor) no longer matches its hash",
                )
            prev = row[10]
            expected = seq + 1
            count += 1
    return _RangeCheck(count, first_seq, first_prev, expected - 1, prev)


def _stitch(ranges: list[_RangeCheck], head_seq: int, head_hash: str) -> VerifyResult:
    """Join range checks in seq order into one verdict, as if the chain had been read in one pass."""
    expected, prev, checked = 1, GENESIS_HASH, 0
    for part in ranges:
        if part.rows == 0 and part.problem is None:
            continue
        if part.first_seq != expected:
            return _bad(checked, expected, _gap_message(expected, part.first_seq))
        if part.first_prev != prev:
            return _bad(checked, part.first_seq, _unlinked_message(part.first_seq))
        if part.problem is not None and part.bad_seq is not None:
            return _bad(checked + part.rows, part.bad_seq, part.problem)
        checked += part.rows
        expected, prev = part.last_seq + 1, part.last_hash
    last = expected - 1
    if last < head_seq:
        return _bad(
            checked,
            last + 1,
            f"{_span(last + 1, head_seq)} missing: the ledger ends at event {last} but "
            f"its chain head records event {head_seq} (events deleted at the end, or "
            "consent_chain_head edited?)",
        )
    if last > head_seq:
        return _bad(
            checked,
            head_seq + 1,
            f"{_span(head_seq + 1, last)} not known to the chain head, which records event "
            f"{head_seq} as the last one: events were added behind the ledger's back, or "
            "consent_chain_head was edited",
        )
    if prev != head_hash:
        return _bad(
            checked,
            last,
            f"event {last} is not the event the chain head recorded as the last one "
            "(its hash differs): the end of the ledger, or consent_chain_head, was rewritten",
        )
    return VerifyResult(True, checked, None, None)


def _unlinked_message(seq: int) -> str:
    if seq == 1:
        return "event 1 does not start from the genesis hash: the start of the ledger was rewritten"
    return (
        f"event {seq} does not follow event {seq - 1}: its prev_hash is not event {seq - 1}'s hash, "
        "so events were reordered, removed or rewritten here"
    )


def _bad(checked: int, seq: int, problem: str) -> VerifyResult:
    return VerifyResult(False, checked, seq, problem)


def _span(first: int, last: int) -> str:
    return f"event {first} is" if first == last else f"events {first} to {last} are"


def _gap_message(expected: int, found: int) -> str:
    """Rows come in seq order and seq is unique, so a mismatch means found > expected."""
    if expected == 1:
        return f"{_span(1, found - 1)} missing: the ledger starts at event {found} (events deleted at the start?)"
    return f"{_span(expected, found - 1)} missing: event {expected - 1} is followed by event {found} (events deleted?)"


def _chain_row(seq: int, prev: str, valid: _Valid, now_text: str, event_id: str) -> EventTextRow:
    at_text = valid.at_text or now_text
    text = canonical_text(
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
    )


def _chain_chunk(
    tx: Appender, chunk: list[_Valid], first_index: int, seq: int, prev: str, now_text: str
) -> tuple[list[EventTextRow], int]:
    """Hash-chain one chunk after (seq, prev); skip events already present (same id and content)."""
    explicit = [v.event_id for v in chunk if v.event_id is not None]
    stored = tx.find_events(explicit) if explicit else {}
    in_chunk: dict[str, tuple[int, _Valid]] = {}
    rows: list[EventTextRow] = []
    skipped = 0
    fresh_ids = iter(new_event_ids(len(chunk) - len(explicit)))
    for offset, valid in enumerate(chunk):
        if valid.event_id is not None:
            earlier = stored.get(valid.event_id)
            if earlier is not None:
                if not valid.same_as(earlier):
                    raise _conflict(valid, earlier, first_index + offset)
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


def _equal_but_at(a: _Valid, b: _Valid) -> bool:
    return (a.user_id, a.key, a.value, a.source, a.actor) == (b.user_id, b.key, b.value, b.source, b.actor)


def _latest_per_setting(rows: list[EventTextRow]) -> list[CurrentTextRow]:
    """Per (user_id, key), the row with the greatest (at, seq); rows are in seq order."""
    latest: dict[tuple[int, str], EventTextRow] = {}
    for row in rows:
        slot = (row[2], row[3])
        current = latest.get(slot)
        if current is None or row[5] >= current[5]:  # later seq wins ties on at
            latest[slot] = row
    return sorted((r[2], r[3], r[4], r[5], r[0]) for r in latest.values())  # B-tree order: fewer page misses
