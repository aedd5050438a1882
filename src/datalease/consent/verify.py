"""Verifying the consent ledger: re-walk the hash chain, then check what is derived from it.

The chain is streamed in seq order (never loaded whole), in parallel seq ranges for big ledgers
(`_RangeWorker` processes, stitched into one verdict); with the events sound, the chain head must be
the last event, `consent_current` must hold exactly the latest event of every (user, key), and the
chain head's digest must be that of `consent_current`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple

from sqlalchemy import Connection, Engine
from sqlalchemy.pool import NullPool

from datalease.consent.chain import GENESIS_HASH, canonical_text, canonical_text_v2
from datalease.consent.integrity import current_problem, digest_problem
from datalease.store.consent_append import ChainHeadState, EventTextRow
from datalease.store.consent_derived import first_current_mismatch
from datalease.store.consent_events import ConsentEventStore
from datalease.store.db import make_engine


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int  # events whose chain was found sound
    first_bad_seq: int | None  # the first broken event; None when the events are sound
    problem: str | None
    setting: tuple[int, str] | None = None  # (user_id, key) of the first wrong consent_current row


def verify_ledger(engine: Engine, store: ConsentEventStore, *, workers: int | None = None) -> VerifyResult:
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
    with store.read_transaction() as conn:
        head = store.head(conn)
        url = _reopenable_url(engine)
        if workers is None:
            workers = min(2, os.cpu_count() or 1) if head.seq >= PARALLEL_VERIFY_MIN else 1
        workers = max(1, min(workers, head.seq)) if url is not None else 1
        bounds = [head.seq * i // workers for i in range(workers + 1)]
        if workers == 1 or url is None:
            ranges = [_check_rows(store.iter_chain(conn))]
        else:
            helpers = [_RangeWorker(url, bounds[i], bounds[i + 1]) for i in range(workers - 1)]
            try:
                # the last range, open-ended, is read here inside this read transaction
                last = _check_rows(store.iter_chain(conn, after=bounds[-2]))
                ranges = [helper.result(store) for helper in helpers] + [last]
            finally:
                for helper in helpers:
                    helper.stop()
        verdict = _stitch(ranges, head.seq, head.hash)
        if verdict.ok:
            verdict = _verify_derived(store, conn, head, verdict.checked)
    return verdict


def _verify_derived(
    store: ConsentEventStore, conn: Connection, head: ChainHeadState, checked: int
) -> VerifyResult:
    """consent_current against the events, then the digest; the chain (and head) is sound."""
    mismatch = first_current_mismatch(conn)
    if mismatch is not None:
        return VerifyResult(False, checked, None, current_problem(mismatch), (mismatch.user_id, mismatch.key))
    problem = digest_problem(head, store.current_rows(conn, head.seq))
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
                    "from datalease.consent.verify import range_worker_main; range_worker_main()",
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


def range_worker_main() -> None:
    """Entry point of a _RangeWorker process: request on stdin, _RangeCheck as JSON on stdout."""
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
                if row[13] is None and row[11] is None and row[12] is None:  # encoding 1 (the fast path)
                    text = canonical_text(row[9], *row[:9])
                else:  # encoding 2: the event records the notice shown and the surface
                    text = canonical_text_v2(row[9], *row[:9], *row[11:14])
                good = sha256(text.encode("ascii")).hexdigest() == row[10]
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
                    f"event {seq} was altered: its stored content (user, key, value, times, source, "
                    "actor, notice shown or surface) no longer matches its hash",
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
