"""Compiled eligibility vs a hand-written DuckDB query doing the same join, in the same run.

    python -m benchmarks.eligibility [--posts 10000000 --users 1000000 --repeat 3]

Both queries read the same generated tables (users, posts, a consent snapshot of ~3 settings per
10 users) and count the posts eligible for `train_ai_system.generative` under examples/x-2024.yaml.
The script checks that both counts are equal, then prints the best-of-N time of each and the ratio
compiled / hand-written (goal ≤ 1.25).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from importlib.resources import files

import duckdb

from datalease.policy.compile import compile_plan
from datalease.policy.load import load_policy
from datalease.policy.model import Scope
from datalease.policy.resolve import adult_cutoff

AT = datetime(2025, 6, 1, tzinfo=UTC)
PURPOSE = "train_ai_system.generative"
COUNTRIES = ["US", "US", "US", "DE", "FR", "GB", "CH", "BR", "IN", "JP", "IE", "ES", "MX", "CA"]


def generate(con: duckdb.DuckDBPyConnection, users: int, posts: int) -> None:
    countries = "[" + ", ".join(f"'{c}'" for c in COUNTRIES) + "]"
    con.execute(f"""
        CREATE TABLE users AS
        SELECT i AS user_id,
               'user' || i AS handle,
               list_extract({countries}, 1 + CAST(hash(i, 'c') % {len(COUNTRIES)} AS INTEGER)) AS country,
               CASE WHEN hash(i, 'b') % 100 < 1 THEN NULL
                    ELSE DATE '1960-01-01' + CAST(hash(i, 'd') % 17000 AS INTEGER) END AS birth_date,
               CASE WHEN hash(i, 's') % 100 < 5 THEN 'protected'
                    WHEN hash(i, 's') % 100 < 6 THEN 'suspended'
                    WHEN hash(i, 's') % 100 < 7 THEN 'deleted'
                    ELSE 'active' END AS account_state,
               TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_seconds(CAST(hash(i, 't') % 150000000 AS BIGINT)) AS created_at
        FROM range({users}) t(i)""")
    # Zipf-like authorship: a few prolific authors, many with one post.
    con.execute(f"""
        CREATE TABLE posts AS
        SELECT i AS post_id,
               CAST(floor(pow((hash(i, 'a') % 1000003) / 1000003.0, 3) * {users}) AS BIGINT) AS author_id,
               'text' AS text,
               'en' AS lang,
               TIMESTAMPTZ '2023-01-01 00:00:00+00' + to_seconds(CAST(hash(i, 'p') % 90000000 AS BIGINT)) AS created_at,
               CASE WHEN hash(i, 'v') % 100 < 3 THEN 'followers' ELSE 'public' END AS visibility,
               CASE WHEN hash(i, 'x') % 100 < 2 THEN TIMESTAMPTZ '2025-01-01 00:00:00+00' END AS deleted_at
        FROM range({posts}) t(i)""")
    keys = "['share_with_partners', 'share.posts', 'share.bookmarks', 'purpose.train_ai_system.generative', 'purpose.train_ai_system']"
    con.execute(f"""
        CREATE TABLE consent AS
        SELECT DISTINCT ON (user_id, key) user_id, key, value FROM (
            SELECT CAST(hash(j, 'u') % {users} AS BIGINT) AS user_id,
                   list_extract({keys}, 1 + CAST(hash(j, 'k') % 5 AS INTEGER)) AS key,
                   hash(j, 'w') % 3 = 0 AS value
            FROM range({users * 3 // 10}) t(j))""")


def hand_written_sql(eea: list[str]) -> str:
    cutoff = adult_cutoff(AT, 18).isoformat()
    countries = ", ".join(f"'{c}'" for c in eea)
    return f"""
        SELECT COUNT(*) FROM posts p
        JOIN users u ON u.user_id = p.author_id
        LEFT JOIN (
            SELECT user_id,
                   bool_or(key = 'share_with_partners' AND NOT value) AS master_off,
                   bool_or(key = 'share.posts' AND NOT value) AS posts_off,
                   bool_or(key IN ('purpose.train_ai_system', 'purpose.train_ai_system.generative') AND NOT value) AS purpose_off
            FROM consent GROUP BY user_id
        ) c ON c.user_id = u.user_id
        WHERE u.account_state = 'active'
          AND u.birth_date <= DATE '{cutoff}'
          AND (p.deleted_at IS NULL OR p.deleted_at > TIMESTAMPTZ '{AT.isoformat()}')
          AND p.visibility = 'public'
          AND p.created_at <= TIMESTAMPTZ '{AT.isoformat()}'
          AND u.country NOT IN ({countries})
          AND NOT COALESCE(c.master_off, FALSE)
          AND NOT COALESCE(c.posts_off, FALSE)
          AND NOT COALESCE(c.purpose_off, FALSE)"""


def best_of(con: duckdb.DuckDBPyConnection, sql: str, repeat: int) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = int(con.execute(sql).fetchall()[0][0])
        times.append(time.perf_counter() - start)
    return min(times), count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    policy = load_policy(files("datalease.examples").joinpath("x-2024.yaml").read_text(), "x-2024.yaml")
    con = duckdb.connect()
    start = time.perf_counter()
    generate(con, args.users, args.posts)
    print(f"generated {args.users:,} users, {args.posts:,} posts in {time.perf_counter() - start:.1f}s")

    plan = compile_plan(policy, Scope((PURPOSE,), ("posts",)), "posts", AT)
    compiled_sql = f"SELECT COUNT(*) FROM ({plan.eligible_sql(select=['r.post_id'])})"
    baseline_sql = hand_written_sql(sorted(policy.regions["EEA"]))
    # Interleave so both see the same cache state and machine noise.
    baseline_s, baseline_n = best_of(con, baseline_sql, args.repeat)
    compiled_s, compiled_n = best_of(con, compiled_sql, args.repeat)
    baseline_s2, _ = best_of(con, baseline_sql, args.repeat)
    baseline_s = min(baseline_s, baseline_s2)
    if baseline_n != compiled_n:
        raise SystemExit(f"MISMATCH: hand-written counts {baseline_n:,}, compiled counts {compiled_n:,}")
    print(f"eligible posts: {compiled_n:,} of {args.posts:,} (both queries agree)")
    print(f"hand-written DuckDB SQL: {baseline_s:.3f}s  ({args.posts / baseline_s / 1e6:.1f}M posts/s)")
    print(f"compiled plan:           {compiled_s:.3f}s  ({args.posts / compiled_s / 1e6:.1f}M posts/s)")
    print(f"ratio compiled / hand-written: {compiled_s / baseline_s:.2f}  (goal <= 1.25)")


if __name__ == "__main__":
    main()
