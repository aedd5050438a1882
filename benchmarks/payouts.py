"""A payout run (record-days from the lineage + the division of two funds) vs a hand-written DuckDB
query over the same release history, in the same run; seconds and peak RSS of each.

    python -m benchmarks.payouts [--people 1000000 --posts 10000000 --days 365 --month 10]

The history: `--people` people, `--posts` posts (author = a Zipf-like draw: hash-spread ranks, so a
few prolific authors and many with one post), two agreements licensing posts, each with a Delta
table bucketed by user like the release writer's (`bucket=user_id % 16`) holding the partner keys
(HMAC per agreement, computed with `releases.keys.key_sql`). Day 0 releases 90% of the posts; each of
the `--days` daily releases appends the posts of that day; on day 15 of every month 1% of the people
are withdrawn (copy-on-write deletes). A checkpoint every 30 versions (as a maintained table has).
Releases are plain `Release` records (the ledger rows), not written through a store.

Measured, each in its own process (peak RSS is that process's):
- payout run: `billing.recorddays.row_micros` for each agreement in `--month` (keys recomputed in
  Python for every person; DuckDB's memory limit the engine's default, `DATALEASE_ENGINE_MEMORY`) + `billing.payouts.build_run` (funds of 1,000,000.00 at 20%);
- baseline: one hand-written DuckDB query per agreement: every pinned version's files read in full
  (UNION ALL, no sharing of files between versions), keys computed in SQL, Σ rows × held time.
Both record-days totals must agree. Prints seconds, peak RSS and the ratio payout / baseline.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from datalease.billing.payouts import FundInput, build_run
from datalease.billing.period import Period
from datalease.billing.recorddays import holdings, people_keys, row_micros
from datalease.config import Settings
from datalease.releases.keys import agreement_secret, key_sql
from datalease.releases.model import KIND_BUILD, KIND_REVOCATION, Release, ReleaseTable

MASTER = b"benchmark-master-key-0123456789ab"
AGREEMENTS = ("alpha-2026", "beta-2026")
START = datetime(2026, 1, 1, tzinfo=UTC)
BUCKETS = 16


def _rows(con: duckdb.DuckDBPyConnection, secret: bytes, where: str) -> pa.Table:
    return con.sql(
        f"SELECT {key_sql(secret, 'user', 'user_id')} AS user_key, "
        f"{key_sql(secret, 'post', 'post_id')} AS post_key, CAST(user_id % {BUCKETS} AS VARCHAR) AS bucket "
        f"FROM posts WHERE {where}"
    ).to_arrow_table()


def generate(root: Path, people: int, posts: int, days: int) -> dict[str, list[Release]]:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    # Zipf-like authors: rank r = floor(people ** u) for a hash-uniform u, spread by a hash of the rank.
    con.execute(f"""
        CREATE TABLE posts AS
        SELECT i AS post_id,
               CAST(hash(CAST(floor(pow({people}, (hash(i, 'a') % 1000000) / 1000000.0)) AS BIGINT), 'r')
                    % {people} AS BIGINT) AS user_id,
               CASE WHEN i < {int(posts * 0.9)} THEN 0
                    ELSE 1 + CAST((i - {int(posts * 0.9)}) * {days} // {max(1, posts - int(posts * 0.9))} AS INTEGER)
               END AS day
        FROM range({posts}) t(i)
    """)
    histories: dict[str, list[Release]] = {}
    release_id = 0
    for agreement in AGREEMENTS:
        secret = agreement_secret(MASTER, agreement)
        path = str(root / agreement / "posts")
        write_deltalake(path, _rows(con, secret, "day = 0"), partition_by=["bucket"], mode="overwrite")
        history = []
        for day in range(days + 1):
            at = START + timedelta(days=day, hours=2)
            kind = KIND_BUILD
            if day > 0:
                new = _rows(con, secret, f"day = {day}")
                if new.num_rows:
                    write_deltalake(path, new, partition_by=["bucket"], mode="append")
                if (START + timedelta(days=day)).day == 15:  # 1% of the people withdrawn this month
                    table = DeltaTable(path)
                    month = (START + timedelta(days=day)).month
                    churned = con.execute(
                        f"SELECT DISTINCT user_id FROM range({people}) t(user_id) "
                        f"WHERE hash(user_id, 'churn{month}') % 100 = 0"
                    ).fetchall()
                    keys = people_keys(secret, (u for (u,) in churned))
                    if keys:
                        listing = ", ".join(f"'{k}'" for k in keys)
                        table.delete(f"user_key IN ({listing})")
                        kind = KIND_REVOCATION
            table = DeltaTable(path)
            version = table.version()
            if version and version % 30 == 0:
                table.create_checkpoint()
            release_id += 1
            history.append(
                Release(
                    release_id,
                    agreement,
                    at,
                    at,
                    1,
                    "v1",
                    "sha",
                    0,
                    {},
                    "duckdb",
                    False,
                    0,
                    {},
                    1,
                    (ReleaseTable("posts", version, 0, 0, 0, 0, 0),),
                    kind,
                )
            )
        histories[agreement] = history
    con.close()
    return histories


def payout_run(
    root: Path, histories: dict[str, list[Release]], period: Period, people: int
) -> tuple[int, float]:
    started = time.perf_counter()
    inputs = []
    total = 0
    for agreement, history in histories.items():
        keys = people_keys(agreement_secret(MASTER, agreement), range(people))
        micros = row_micros(
            root / agreement, history, period, keys, {}, memory_limit=Settings().engine_memory
        )
        total += sum(micros.values())
        inputs.append(FundInput(agreement, "USD", Decimal("1000000.00"), Decimal(20), micros))
    run = build_run(period, inputs, {}, Decimal("5.00"), datetime.now(UTC))
    assert sum(f.fund for f in run.funds) == sum(ln.earned for ln in run.lines)
    return total, time.perf_counter() - started


def baseline(
    root: Path, histories: dict[str, list[Release]], period: Period, people: int
) -> tuple[int, float]:
    started = time.perf_counter()
    total = 0
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    for agreement, history in histories.items():
        secret = agreement_secret(MASTER, agreement)
        parts = []
        for held in holdings(history, period):
            ((_, version),) = held.versions
            files = ", ".join(
                f"'{f}'" for f in DeltaTable(str(root / agreement / "posts"), version=version).file_uris()
            )
            seconds = int((held.end - held.start).total_seconds() * 1_000_000)
            parts.append(
                f"SELECT user_key, {seconds}::HUGEINT AS micros FROM read_parquet([{files}], hive_partitioning = false)"
            )
        if not parts:
            continue
        (result,) = con.execute(f"""
            WITH keys AS (SELECT {key_sql(secret, "user", "user_id")} AS user_key, user_id FROM range({people}) t(user_id)),
                 held AS ({" UNION ALL ".join(parts)})
            SELECT sum(micros)::HUGEINT FROM (
                SELECT k.user_id, sum(h.micros) AS micros FROM held h JOIN keys k USING (user_key) GROUP BY k.user_id)
        """).fetchall()
        total += int(result[0] or 0)
    con.close()
    return total, time.perf_counter() - started


def _child(name: str, args: tuple[Any, ...], queue: Any) -> None:
    total, seconds = (payout_run if name == "payout" else baseline)(*args)
    queue.put((total, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024))


def measure(name: str, *args: Any) -> tuple[int, float, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, args, queue))
    proc.start()
    result: tuple[int, float, float] = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--posts", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--month", type=int, default=10, help="the month of 2026 paid out")
    parser.add_argument("--keep", type=Path, help="write the history here and keep it")
    opts = parser.parse_args()
    root = opts.keep or Path(tempfile.mkdtemp(prefix="bench-payouts-"))
    try:
        started = time.perf_counter()
        histories = generate(root, opts.people, opts.posts, opts.days)
        print(f"history: {opts.people:,} people, {opts.posts:,} posts, {len(AGREEMENTS)} agreements × "
              f"{opts.days + 1} releases in {time.perf_counter() - started:.1f} s")  # fmt: skip
        period = Period(2026, opts.month)
        ours = measure("payout", root, histories, period, opts.people)
        base = measure("baseline", root, histories, period, opts.people)
        print(
            f"payout run ({period}): {ours[1]:.2f} s, peak RSS {ours[2]:.2f} GiB, record-days {ours[0] / 86_400e6:,.1f}"
        )
        print(
            f"hand-written DuckDB:  {base[1]:.2f} s, peak RSS {base[2]:.2f} GiB, record-days {base[0] / 86_400e6:,.1f}"
        )
        assert ours[0] == base[0], f"record-days differ: {ours[0]} vs {base[0]}"
        print(
            f"ratio payout / baseline: {ours[1] / base[1]:.2f} (time), {ours[2] / base[2]:.2f} (RSS); totals agree"
        )
    finally:
        if opts.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
