"""Consent ledger at scale: bulk load, snapshot "now" and as-of a past T, verify.

    python -m benchmarks.consent_snapshot [--users 1000000 --events 3000000] [--compare-asof]

Builds a fresh SQLite store under benchmarks/.work/, bulk-loads `--events` synthetic events for
`--users` users (one `record_many` transaction, hash chain computed in Python), then times:

* snapshot now          — consent_current fast path (no event after T), with its integrity check
                          (chain head = last event; digest of the rows read = the head's digest)
* snapshot now, unchecked — the same read of (user_id, key, value) only, without the check (the
                          path as it was before the check): the check's cost is the ratio of the two
* snapshot as-of past T — the as-of path (events after T exist; checks only the chain head)
* baseline              — a plain `SELECT user_id, key, value FROM consent_events` scan into Arrow,
                          measured in the same run; each snapshot is printed as a ratio of it
* verify                — a full re-walk of the hash chain (2 processes from 400k events), then
                          consent_current against the latest events and the digest

Each line shows wall seconds and CPU seconds; on a shared machine (see the load average printed)
the CPU figure is the steadier one.

Synthetic events (seed 20241115): user ids uniform in 1..users; keys from a fixed list weighted
towards the master switch; times increase over 2023-2024 with 5% backdated up to 180 days;
value True with probability 0.6. `--compare-asof` also times SQLite's own window query;
`--keep` leaves the database in place and `--reuse` measures the reads again without reloading.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from datalease.consent.ledger import ConsentLedger, NewConsentEvent
from datalease.consent.snapshot import ConsentSnapshot, consent_snapshot
from datalease.store.consent_events import ConsentEventStore
from datalease.store.db import make_engine, upgrade

WORK = Path(__file__).resolve().parent / ".work"
SEED = 20241115
KEYS = (
    "share_with_partners",
    "share_with_partners",
    "share_with_partners",
    "share.posts",
    "share.likes",
    "share.reposts",
    "share.bookmarks",
    "purpose.train_ai_system",
    "purpose.train_ai_system.generative",
    "block_partner.acme",
)
T = TypeVar("T")
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=730)


def synthetic_events(users: int, events: int, seed: int = SEED) -> Iterator[NewConsentEvent]:
    rng = random.Random(seed)
    step = SPAN / events
    for i in range(events):
        at = START + step * i
        if rng.random() < 0.05:
            at -= timedelta(seconds=rng.randrange(180 * 86400))
        yield NewConsentEvent(
            user_id=rng.randrange(1, users + 1),
            key=rng.choice(KEYS),
            value=rng.random() < 0.6,
            at=at,
            source="import",
            actor="benchmark",
        )


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(label: str, fn: Callable[[], T]) -> tuple[float, T]:
    """Run fn; print wall seconds and CPU seconds (this process and its finished helpers)."""
    cpu = _cpu_seconds()
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    print(f"  {label:<34} {seconds:8.2f} s   (cpu {_cpu_seconds() - cpu:6.2f} s)")
    return seconds, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--compare-asof", action="store_true", help="also time SQLite's window query")
    parser.add_argument("--keep", action="store_true", help="keep the database under benchmarks/.work")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a database kept by --keep (skips the load; implies --keep)",
    )
    args = parser.parse_args(argv)
    args.keep = args.keep or args.reuse

    home = WORK / "consent_snapshot"
    database = home / "datalease.db"
    reuse = args.reuse and database.exists()
    if not reuse:
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    ledger = ConsentLedger(engine)
    store = ConsentEventStore(engine)
    print(f"consent ledger: {args.events:,} events for {args.users:,} users (SQLite, {home})")
    print(
        f"  load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (figures are wall time)"
    )

    if reuse:
        print(f"  reusing the loaded store ({ledger.count():,} events)")
    else:
        load(ledger, args.users, args.events)

    def baseline() -> int:
        with store.read_transaction() as conn:
            return int(store.scan_events_arrow(conn).num_rows)

    base_s, base_rows = timed("baseline: plain scan into Arrow", baseline)
    print(f"  {'':<34} {base_rows:>10,} rows (SELECT user_id, key, value FROM consent_events)")

    def unchecked_now() -> ConsentSnapshot:
        with store.read_transaction() as conn:
            head = store.head(conn)
            store.max_event_at(conn)  # as the checked path, which needs it to choose its strategy
            table = store.snapshot_current(conn, head.seq)
        return ConsentSnapshot(table, head.seq, datetime.now(UTC), "current")

    # alternated, best of two each, so that neither read profits alone from a warm cache
    plain_s, now_s = float("inf"), float("inf")
    for _ in range(2):
        plain_s = min(plain_s, timed("snapshot now, unchecked", unchecked_now)[0])
        seconds, now = timed("snapshot now (consent_current)", lambda: consent_snapshot(engine))
        now_s = min(now_s, seconds)
    print(f"  {'':<34} checked / unchecked {now_s / plain_s:5.2f}x (the integrity check's cost, best of 2)")
    past = START + SPAN / 2
    past_s, then = timed(f"snapshot as-of {past:%Y-%m-%d}", lambda: consent_snapshot(engine, past))
    for label, snap, seconds in (("now", now, now_s), ("as-of", then, past_s)):
        print(
            f"  snapshot {label:<6} rows {snap.table.num_rows:>10,}  strategy {snap.strategy:<8} "
            f"watermark {snap.watermark_seq:,}  snapshot/baseline {seconds / base_s:5.2f}x"
        )
    if args.compare_asof:
        watermark = then.watermark_seq

        def window() -> int:
            with store.read_transaction() as conn:
                return int(store.snapshot_as_of(conn, past, watermark, method="window").num_rows)

        window_s, rows = timed("as-of via SQLite window query", window)
        print(f"  {'':<34} {rows:>10,} rows; window / DuckDB reduction {window_s / past_s:5.2f}x")
    verify_s, verdict = timed("verify (full chain)", ledger.verify)
    print(f"  {'':<34} {ledger.count() / verify_s:10,.0f} events/s  ({verdict})")
    print(f"  load average at end: {os.getloadavg()[0]:.1f}")
    engine.dispose()
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)


def load(ledger: ConsentLedger, users: int, count: int) -> None:
    _, events = timed("generate events (not timed below)", lambda: list(synthetic_events(users, count)))
    load_s, result = timed("bulk load (record_many)", lambda: ledger.record_many(events))
    print(f"  {'':<34} {count / load_s:10,.0f} events/s  ({result})")


if __name__ == "__main__":
    main()
