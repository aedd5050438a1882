"""Release builds at scale, against a hand-written DuckDB + write_deltalake baseline in the same run.

    python -m benchmarks.releases [--users 1000000 --posts 10000000 --likes 30000000]
                                  [--engine spark [--cluster]] [--full-only]

1. Generates a lake directly with DuckDB (users, posts, likes, curated posts; Zipf-like authors and
   likers; 1% minors, 5% protected, 2% deleted accounts, 3% followers-only and 2% deleted posts),
   applies examples/x-2024.yaml, records opt-outs for 5% of users, and creates one agreement taking
   posts + likes for `train_ai_system.generative` everywhere but the EEA.
2. Full build with `datalease release build` in a subprocess (its own peak RSS), then the baseline:
   one hand-written DuckDB script doing the same eligibility join, the same HMAC-SHA256 keys and the
   same bucketed Delta write — also in a subprocess. Prints source rows/s, peak RSS and the ratio.
3. 1% of users opt out (10,000 at full size); an incremental build vs a full rebuild (`--full`) of the
   same state. Then what bounds the incremental build under copy-on-write Delta (no deletion vectors:
   a file holding one affected row is rewritten whole): the files and bytes it rewrote, the share of
   files that 1% of owners would touch under N buckets, and a floor measured in the same run
   (process start-up + DuckDB rewriting just the files the build rewrote).
4. One user opts out: the files the next build rewrites.
With `--engine spark`, after step 2: the same full build on Spark `local[2]` (and with `--cluster` on a
standalone master + 2 one-core workers on 127.0.0.1), each in its own home over the same lake, with
the peak RSS of the whole process tree (the JVM is a child) and a check that the released rows equal
DuckDB's. `--full-only` stops there.
Goals (issue 3): ≥ 2M source rows/s, ≤ 2 GiB RSS, ratio ≤ 1.25; incremental ≥ 20× cheaper.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import duckdb
from deltalake import DeltaTable, write_deltalake

from datalease.config import Settings
from datalease.consent.ledger import NewConsentEvent
from datalease.licensing.registry import create_agreement
from datalease.platform.lake import TABLE_CONFIGURATION
from datalease.policy.compile import quote
from datalease.policy.load import load_policy
from datalease.policy.resolve import adult_cutoff
from datalease.releases import delta
from datalease.releases.keys import agreement_secret, key_sql
from datalease.store.licensing import add_partner
from datalease.store.policy_revisions import save_policy_revision
from datalease.workspace import Workspace

WORK = Path(__file__).resolve().parent / ".work" / "releases"
AT = datetime(2026, 6, 1, tzinfo=UTC)
AGREEMENT = "bench-genai"
AGREEMENT_YAML = """
agreement: bench-genai
partner: bench-lab
status: active
term: {start: 2026-01-01, end: 2026-12-31}
purposes: [train_ai_system.generative]
categories: [posts, likes]
regions: {denied: [EEA]}
fields:
  posts: [text, created_at, lang, sentiment]
  likes: [created_at]
pricing: {model: flat_annual, amount: 1000000, currency: USD}
deletion_sla_hours: 72
"""
COUNTRIES = ["US", "US", "US", "DE", "FR", "GB", "CH", "BR", "IN", "JP", "IE", "ES", "MX", "CA"]


def generate_lake(ws: Workspace, users: int, posts: int, likes: int) -> None:
    con = duckdb.connect()
    countries = "[" + ", ".join(quote(c) for c in COUNTRIES) + "]"
    tables = {
        "users": f"""
            SELECT i AS user_id, 'u' || i AS handle,
                   list_extract({countries}, 1 + CAST(hash(i, 'c') % {len(COUNTRIES)} AS INTEGER)) AS country,
                   CASE WHEN hash(i, 'm') % 100 = 0 THEN DATE '2012-01-01'
                        ELSE DATE '1960-01-01' + CAST(hash(i, 'd') % 15000 AS INTEGER) END AS birth_date,
                   CASE WHEN hash(i, 's') % 100 < 5 THEN 'protected'
                        WHEN hash(i, 's') % 100 < 7 THEN 'deleted' ELSE 'active' END AS account_state,
                   TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_seconds(CAST(hash(i, 't') % 100000000 AS BIGINT)) AS created_at
            FROM range({users}) t(i)""",
        "posts": f"""
            SELECT i AS post_id,
                   CAST(floor(pow((hash(i, 'a') % 1000003) / 1000003.0, 3) * {users}) AS BIGINT) AS author_id,
                   'post number ' || i AS text, 'en' AS lang,
                   TIMESTAMPTZ '2023-01-01 00:00:00+00' + to_seconds(CAST(hash(i, 'p') % 90000000 AS BIGINT)) AS created_at,
                   CASE WHEN hash(i, 'v') % 100 < 3 THEN 'followers' ELSE 'public' END AS visibility,
                   CASE WHEN hash(i, 'x') % 100 < 2 THEN TIMESTAMPTZ '2025-01-01 00:00:00+00' END AS deleted_at
            FROM range({posts}) t(i)""",
        "likes": f"""
            SELECT DISTINCT ON (user_id, post_id) user_id, post_id, created_at, deleted_at FROM (
              SELECT CAST(floor(pow((hash(j, 'l') % 1000003) / 1000003.0, 2) * {users}) AS BIGINT) AS user_id,
                     CAST(hash(j, 'q') % {posts} AS BIGINT) AS post_id,
                     TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(CAST(hash(j, 'w') % 60000000 AS BIGINT)) AS created_at,
                     CAST(NULL AS TIMESTAMPTZ) AS deleted_at
              FROM range({likes}) t(j))""",
        "posts_curated": f"""
            SELECT i AS post_id, sha256('post number ' || i) AS text_sha256, 'post number ' || i AS text_scrubbed,
                   CAST([] AS VARCHAR[]) AS pii_types, ((hash(i, 's') % 2001) / 1000.0) - 1 AS sentiment_compound,
                   'neutral' AS sentiment_label, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS curated_at
            FROM range({posts}) t(i)""",
    }
    for name, sql in tables.items():
        path = ws.lake.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        reader = con.sql(sql).to_arrow_reader(1_000_000)
        write_deltalake(str(path), reader, configuration=TABLE_CONFIGURATION, schema_mode=None)
    for name in ("reposts", "bookmarks"):
        empty = con.sql(f"SELECT * FROM ({tables['likes']}) LIMIT 0").to_arrow_table()
        write_deltalake(str(ws.lake.path(name)), empty, configuration=TABLE_CONFIGURATION)
    con.close()


def set_up(home: Path, users: int, posts: int, likes: int) -> Workspace:
    shutil.rmtree(home, ignore_errors=True)
    ws = Workspace(Settings(home=home))
    ws.init()
    started = time.perf_counter()
    generate_lake(ws, users, posts, likes)
    policy_text = files("datalease.examples").joinpath("x-2024.yaml").read_text()
    policy = load_policy(policy_text, "x-2024.yaml")
    with ws.session() as session, session.begin():
        save_policy_revision(
            session, policy.name, policy_text, hashlib.sha256(policy_text.encode()).hexdigest(), "bench"
        )
        add_partner(session, "bench-lab")
        create_agreement(session, AGREEMENT_YAML, "bench.yaml", policy=policy)
    opt_outs = [
        NewConsentEvent(u, "share_with_partners", False, at=AT - timedelta(days=30))
        for u in range(0, users, 20)
    ]
    ws.ledger.record_many(opt_outs)
    print(
        f"set-up: {users:,} users, {posts:,} posts, {likes:,} likes in {time.perf_counter() - started:.1f}s"
    )
    return ws


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a child process; return (seconds, its own peak RSS in bytes, stdout)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, env={**os.environ, **env}, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{out.read()}\n{err.read()}")
        return seconds, usage.ru_maxrss * 1024, out.read()


def datalease(home: Path, *args: str) -> tuple[float, int, str]:
    exe = str(Path(sys.executable).with_name("datalease"))
    return run_child(
        [exe, "release", "build", AGREEMENT, "--at", AT.isoformat(), *args], {"DATALEASE_HOME": str(home)}
    )


def baseline(home: Path, out_dir: Path) -> None:
    """The hand-written version: one SQL per table, same keys, same bucketed Delta write."""
    ws = Workspace(Settings(home=home))
    secret = agreement_secret(ws.master_key, AGREEMENT)
    policy = ws.require_policy()
    eea = ", ".join(quote(c) for c in sorted(policy.regions["EEA"]))
    cutoff = adult_cutoff(AT, 18).isoformat()
    at = AT.isoformat()
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET memory_limit = '{ws.settings.engine_memory}'")
    con.execute(f"SET temp_directory = '{home / 'tmp'}'")
    for name in ("users", "posts", "likes", "posts_curated"):
        ws.lake.register(con, name)
    from datalease.consent.snapshot import consent_snapshot

    con.register("consent", consent_snapshot(ws.engine, AT).table)
    con.execute(f"""
        CREATE TEMP TABLE ok_users AS
        SELECT u.user_id, {key_sql(secret, "user", "u.user_id")} AS user_key FROM users u
        LEFT JOIN (SELECT user_id, bool_or(NOT value) AS refused FROM consent
                   WHERE key IN ('share_with_partners', 'purpose.train_ai_system', 'purpose.train_ai_system.generative',
                                 'block_partner.bench-lab', 'share.posts', 'share.likes')
                   GROUP BY user_id) c ON c.user_id = u.user_id
        WHERE u.account_state = 'active' AND u.birth_date <= DATE '{cutoff}' AND u.country NOT IN ({eea})
          AND NOT COALESCE(c.refused, FALSE)""")
    con.execute(f"""
        CREATE TEMP TABLE ok_posts AS
        SELECT p.post_id, p.author_id, p.created_at, p.lang, {key_sql(secret, "post", "p.post_id")} AS post_key
        FROM posts p JOIN ok_users u ON u.user_id = p.author_id
        WHERE p.visibility = 'public' AND (p.deleted_at IS NULL OR p.deleted_at > TIMESTAMPTZ '{at}')
          AND p.created_at <= TIMESTAMPTZ '{at}'""")
    posts = con.sql("""
        SELECT p.post_key, u.user_key, substr(u.user_key, 1, 1) AS bucket,
               c.text_scrubbed AS text, p.created_at, p.lang, c.sentiment_compound AS sentiment
        FROM ok_posts p JOIN ok_users u ON u.user_id = p.author_id JOIN posts_curated c ON c.post_id = p.post_id""")
    delta.create(out_dir / "posts", con, posts.sql_query(), commit_info={"benchmark": "baseline"})
    likes = con.sql(f"""
        SELECT u.user_key, p.post_key, substr(u.user_key, 1, 1) AS bucket, l.created_at
        FROM likes l JOIN ok_users u ON u.user_id = l.user_id JOIN ok_posts p ON p.post_id = l.post_id
        WHERE (l.deleted_at IS NULL OR l.deleted_at > TIMESTAMPTZ '{at}') AND l.created_at <= TIMESTAMPTZ '{at}'""")
    delta.create(out_dir / "likes", con, likes.sql_query(), commit_info={"benchmark": "baseline"})


def prolific_us_author(ws: Workspace) -> int:
    """An active adult US author with posts and likes, who has not opted out (the demo's typical user)."""
    con = duckdb.connect()
    for name in ("users", "posts"):
        ws.lake.register(con, name)
    row = con.execute(
        "SELECT p.author_id FROM posts p JOIN users u ON u.user_id = p.author_id "
        "WHERE u.country = 'US' AND u.account_state = 'active' AND u.birth_date < DATE '2000-01-01' "
        "AND p.author_id % 20 <> 0 AND p.author_id % 100 <> 7 "
        "GROUP BY p.author_id ORDER BY count(*) DESC, p.author_id LIMIT 1 OFFSET 100"
    ).fetchall()
    return int(row[0][0])


def rows_in(path: Path) -> int:
    return int(DeltaTable(str(path)).to_pyarrow_dataset().count_rows())


def table_files(path: Path, version: int) -> dict[str, int]:
    """The table's files at `version` with their sizes in bytes."""
    return {uri: Path(uri).stat().st_size for uri in DeltaTable(str(path), version=version).file_uris()}


def changed_owners(path: Path, version: int) -> int:
    """Distinct owners (`user_key`, the bucketed column) of the rows commit `version` changed: rows of
    the files it removed that are not in the files it added, and the reverse."""
    before = set(table_files(path, version - 1))
    after = set(table_files(path, version))
    con = duckdb.connect()
    try:

        def relation(files: set[str]) -> str:
            if not files:
                return "(SELECT NULL::VARCHAR AS user_key, NULL::VARCHAR AS post_key WHERE FALSE)"
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in sorted(files))
            return f"read_parquet([{listing}], union_by_name = true)"

        old, new = relation(before - after), relation(after - before)
        key = "user_key || post_key"  # both tables carry both keys
        (count,) = con.execute(
            f"SELECT count(DISTINCT user_key) FROM ((SELECT user_key, {key} AS k FROM {old} EXCEPT "
            f"SELECT user_key, {key} FROM {new}) UNION ALL (SELECT user_key, {key} FROM {new} EXCEPT "
            f"SELECT user_key, {key} FROM {old}))"
        ).fetchall()[0]
    finally:
        con.close()
    return int(count)


def rewrite_floor(files: list[str], scratch: Path) -> float:
    """Seconds to read the rows of `files` (DuckDB) and write them with the release writer (same
    Parquet settings, same bucketed layout) into a scratch table: what any copy-on-write build pays
    for rewriting those files, before joining, diffing or writing a change feed."""
    shutil.rmtree(scratch, ignore_errors=True)
    if not files:
        return 0.0
    con = duckdb.connect()
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    started = time.perf_counter()
    delta.create(
        scratch,
        con,
        f"SELECT * FROM read_parquet([{listing}], hive_partitioning = true, hive_types_autocast = false)",
        commit_info={"benchmark": "floor"},
    )
    seconds = time.perf_counter() - started
    con.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds


def cost_bounds(
    home: Path, before: dict[str, int], after: dict[str, int], startup_s: float, full_s: float
) -> dict[str, float]:
    """What the last incremental build rewrote, and the copy-on-write floor of any build doing it."""
    share = home / "shares" / AGREEMENT
    rewrite_s = 0.0
    for name, old_version in sorted(before.items()):
        path = share / name
        new_version = after[name]
        old, new = table_files(path, old_version), table_files(path, new_version)
        gone = [f for f in old if f not in new]
        rewrite_s += rewrite_floor(gone, WORK / "floor")
        owners = changed_owners(path, new_version) if new_version != old_version else 0
        touched = ", ".join(f"{n}: {1 - (1 - 1 / n) ** owners:.0%}" for n in (16, 256, 4096, 65536))
        print(
            f"  {name}: {len(gone)} of {len(old)} files rewritten, {sum(old[f] for f in gone) / 2**20:,.0f} "
            f"of {sum(old.values()) / 2**20:,.0f} MiB; rows of {owners:,} owners changed — files they touch "
            f"with N one-file buckets: {touched}"
        )
    floor_s = startup_s + rewrite_s
    print(
        f"  copy-on-write floor: start-up {startup_s:.2f}s + rewriting those files {rewrite_s:.2f}s "
        f"= {floor_s:.2f}s → no build doing this change can be more than {full_s / floor_s:.1f}x cheaper "
        "than the --full rebuild"
    )
    return {"startup_s": startup_s, "rewrite_floor_s": rewrite_s}


def spark_full_builds(home: Path, source_rows: int, duck_s: float, cluster: bool) -> None:
    """The same full build on Spark local[2] (and a standalone master + 2 one-core workers), each in a
    home of its own over the same lake; peak RSS of the whole process tree; rows equal DuckDB's."""
    from benchmarks.spark_cluster import rows_differ, run_tree, sibling_home, standalone_cluster

    exe = str(Path(sys.executable).with_name("datalease"))
    command = [exe, "release", "build", AGREEMENT, "--at", AT.isoformat(), "--engine", "spark"]
    duck_share = home / "shares" / AGREEMENT

    def measure(label: str, env: dict[str, str]) -> None:
        spark_home = sibling_home(home, WORK / ("home-" + "".join(c for c in label if c.isalnum())))
        seconds, rss, _ = run_tree(command, {"DATALEASE_HOME": str(spark_home), **env})
        for name in ("posts", "likes"):
            differ = rows_differ(duck_share / name, spark_home / "shares" / AGREEMENT / name)
            if differ:
                raise SystemExit(f"MISMATCH in {name}: {differ:,} rows differ between DuckDB and {label}")
        print(
            f"full build ({label}): {seconds:.1f}s, {source_rows / seconds / 1e6:.2f}M source rows/s, "
            f"peak RSS (process tree) {rss / 2**30:.2f} GiB, {seconds / duck_s:.2f}x DuckDB's time (rows equal)"
        )

    measure("spark local[2]", {"DATALEASE_SPARK_MASTER": "local[2]"})
    if cluster:
        with standalone_cluster(WORK / "cluster", workers=2, memory="2g") as running:
            measure(
                "spark standalone, 2 workers x 1 core",
                {**running.env, "DATALEASE_SPARK_MASTER": running.master_url, "DATALEASE_SPARK_MEMORY": "2g"},
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--posts", type=int, default=10_000_000)
    parser.add_argument("--likes", type=int, default=30_000_000)
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    parser.add_argument("--cluster", action="store_true", help="with --engine spark: also standalone")
    parser.add_argument("--full-only", action="store_true", help="stop after the full builds")
    parser.add_argument("--baseline-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--setup-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    home = WORK / "home"
    if args.baseline_child:
        baseline(Path(args.baseline_child[0]), Path(args.baseline_child[1]))
        return
    if args.setup_child:
        set_up(home, args.users, args.posts, args.likes)
        return

    # Set-up runs in a child too: a child's peak RSS starts at its parent's, so the parent stays small.
    sizes = ["--users", str(args.users), "--posts", str(args.posts), "--likes", str(args.likes)]
    print(run_child([sys.executable, "-m", "benchmarks.releases", "--setup-child", *sizes], {})[2].strip())
    ws = Workspace(Settings(home=home))
    source_rows = args.posts + args.likes
    ours_s, ours_rss, _ = datalease(home)
    base_dir = WORK / "baseline"
    shutil.rmtree(base_dir, ignore_errors=True)
    base_s, base_rss, _ = run_child(
        [sys.executable, "-m", "benchmarks.releases", "--baseline-child", str(home), str(base_dir)], {}
    )
    share = home / "shares" / AGREEMENT
    for name in ("posts", "likes"):
        ours_n, base_n = rows_in(share / name), rows_in(base_dir / name)
        if ours_n != base_n:
            raise SystemExit(f"MISMATCH in {name}: datalease {ours_n:,} rows, baseline {base_n:,}")
    print(
        f"released rows: posts {rows_in(share / 'posts'):,}, likes {rows_in(share / 'likes'):,} (baseline agrees)"
    )
    print(
        f"full build (datalease): {ours_s:.1f}s, {source_rows / ours_s / 1e6:.2f}M source rows/s, peak RSS {ours_rss / 2**30:.2f} GiB"
    )
    print(
        f"baseline (hand SQL):    {base_s:.1f}s, {source_rows / base_s / 1e6:.2f}M source rows/s, peak RSS {base_rss / 2**30:.2f} GiB"
    )
    print(f"ratio datalease / baseline: {ours_s / base_s:.2f}  (goal <= 1.25; both include process start-up)")
    if args.engine == "spark":
        spark_full_builds(home, source_rows, ours_s, args.cluster)  # DuckDB's RSS: above (no children)
    if args.full_only:
        return

    changed = [
        NewConsentEvent(u, "share_with_partners", False, at=AT - timedelta(days=1))
        for u in range(7, args.users, 100)
    ]
    ws.ledger.record_many(changed)
    before = {name: int(DeltaTable(str(share / name)).version()) for name in ("posts", "likes")}
    incremental_s, _, _ = datalease(home)
    after = {name: int(DeltaTable(str(share / name)).version()) for name in ("posts", "likes")}
    print(f"incremental build after {len(changed):,} users (1%) opted out: {incremental_s:.2f}s")
    full_s, _, _ = datalease(home, "--full")
    print(
        f"full rebuild of the same state: {full_s:.2f}s — incremental is {full_s / incremental_s:.1f}x cheaper (goal >= 20x)"
    )
    startup_s = min(
        run_child([str(Path(sys.executable).with_name("datalease")), "release", "build", "--help"], {})[0]
        for _ in range(3)
    )
    bounds = cost_bounds(home, before, after, startup_s, full_s)

    one = prolific_us_author(ws)
    ws.ledger.record(one, "share_with_partners", False, at=AT - timedelta(hours=1))
    one_s, _, _ = datalease(home)
    print(f"one user opts out: incremental build {one_s:.2f}s")
    with ws.session() as session:
        from datalease.store.releases import latest_release

        release = latest_release(session, AGREEMENT)
    assert release is not None
    for table in release.tables:
        print(
            f"one user opts out → {table.category}: {table.rows_removed} rows removed, "
            f"{table.files_removed} files rewritten of {len(DeltaTable(str(share / table.category)).file_uris())}"
        )
    print(
        json.dumps(
            {
                "full_s": ours_s,
                "baseline_s": base_s,
                "incremental_s": incremental_s,
                "rebuild_s": full_s,
                "one_opt_out_s": one_s,
                **bounds,
            }
        )
    )


if __name__ == "__main__":
    main()
