"""Sustained churn: a steady stream of opt-outs against `datalease serve` (its revocation worker on) while
a partner polls its change feed and a prober queries the table, without and with hourly-style
compaction (`release optimize`) — the run without is the baseline of the run with.

    python -m benchmarks.soak [--users 100000 --posts 1000000 --likes 3000000 --rate 20 --minutes 10]
                              [--optimize-every 60] [--small]

Set-up once (benchmarks/releases.py's generated lake and agreement `bench-genai`: posts + likes, a full
build), then each phase on its own copy of the home:

* the driver records `--rate` opt-outs a second (ledger appends in this process) of users who have
  posts in the share, each stamped with the wall time it was recorded;
* a partner thread polls `/changes` from its last version + 1 every 0.1 s over one keep-alive
  connection, downloads every change file and notes when the first `delete` of each opted-out
  user's key shows: opt-out → delete latency, p50/p95 per minute of the run;
* a prober thread `POST /query`s the posts table every 0.2 s: its p99 per minute (the goal: the last
  minute within 1.5× of the first — per-request time must not grow with the table's versions);
* phase "optimize" also runs `release optimize` every `--optimize-every` seconds from this process.

At the end of each phase: bytes rewritten per opt-out (data files the revocation commits added),
the posts and likes tables' file counts and `_delta_log` size. Goals (issue 13): p95 ≤ 2 s in every
minute; `/query` p99 in the last minute ≤ 1.5× the first. The load average is printed per minute:
this machine is shared. `--small` (5k users, 5 opt-outs/s, 2 minutes) checks the harness, it is no
figure.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import shutil
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
from deltalake import DeltaTable

from benchmarks.releases import AGREEMENT, set_up
from benchmarks.revocation import cli, load, percentile, serve
from datalease.config import Settings
from datalease.releases.keys import agreement_secret, user_key
from datalease.workspace import Workspace

WORK = Path(__file__).resolve().parent / ".work" / "soak"
PARTNER = "bench-lab"
FEED_POLL_S = 0.1
QUERY_EVERY_S = 0.2
DRAIN_S = 60.0


@dataclass
class Observed:
    recorded: dict[str, float] = field(default_factory=dict)  # user_key → wall time of the opt-out
    deleted: dict[str, float] = field(default_factory=dict)  # user_key → wall time the delete showed
    queries: list[tuple[float, float]] = field(default_factory=list)  # (wall time, seconds)
    loads: list[tuple[float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Partner:
    """One keep-alive connection to the server, as a partner's poller would hold it."""

    def __init__(self, base: str, bearer: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
        self.conn.request(method, path, body=body, headers=self.headers)
        answer = self.conn.getresponse()
        return answer.status, answer.read(), dict(answer.getheaders())

    def fetch(self, url: str) -> bytes:
        parts = urlsplit(url)
        status, body, _ = self.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
        if status != 200:
            raise RuntimeError(f"download {parts.path}: {status}")
        return body


@dataclass(frozen=True)
class PhaseResult:
    worst_p95: float
    query_growth: float
    missing: int
    files: int


def table_path(table: str) -> str:
    return f"/delta-sharing/shares/{AGREEMENT}/schemas/platform/tables/{table}"


def poll_feed(partner: Partner, observed: Observed, stop: threading.Event, start_version: int) -> None:
    last = start_version
    while not stop.is_set():
        try:
            status, body, headers = partner.request("GET", table_path("posts") + "/version")
            latest = int(headers.get("delta-table-version") or headers.get("Delta-Table-Version") or last)
            if status == 200 and latest > last:
                status, body, _ = partner.request(
                    "GET", table_path("posts") + f"/changes?startingVersion={last + 1}&endingVersion={latest}"
                )
                if status != 200:
                    raise RuntimeError(f"/changes: {status} {body[:200]!r}")
                for line in body.splitlines():
                    action = json.loads(line)
                    if "cdf" not in action and "add" not in action:
                        continue
                    entry = action.get("cdf") or action["add"]
                    frame = pq.read_table(io.BytesIO(partner.fetch(entry["url"])))
                    if "_change_type" not in frame.column_names:
                        continue
                    seen = time.time()
                    kinds = frame.column("_change_type").to_pylist()
                    keys = frame.column("user_key").to_pylist()
                    with observed.lock:
                        for kind, key in zip(kinds, keys, strict=True):
                            if kind == "delete" and key not in observed.deleted:
                                observed.deleted[key] = seen
                last = latest
        except Exception as exc:  # a benchmark notes the error and goes on polling
            observed.errors.append(f"feed: {exc}")
            partner.conn.close()
        stop.wait(FEED_POLL_S)


def probe_queries(partner: Partner, observed: Observed, stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            status, _, _ = partner.request("POST", table_path("posts") + "/query", b"{}")
            if status != 200:
                raise RuntimeError(f"/query: {status}")
            observed.queries.append((time.time(), time.perf_counter() - started))
        except Exception as exc:
            observed.errors.append(f"query: {exc}")
            partner.conn.close()
        stop.wait(QUERY_EVERY_S)


def authors(home: Path, count: int) -> list[tuple[int, str]]:
    """(user, user_key) of users with posts in the share."""
    ws = Workspace(Settings(home=home))
    secret = agreement_secret(ws.master_key, AGREEMENT)
    posts = DeltaTable(str(home / "shares" / AGREEMENT / "posts")).to_pyarrow_table(columns=["user_key"])
    present = set(posts.column("user_key").to_pylist())
    chosen = []
    for user in ws.lake.read("users").column("user_id").to_pylist():
        key = user_key(secret, user)
        if key in present:
            chosen.append((int(user), key))
            if len(chosen) == count:
                break
    ws.engine.dispose()
    if len(chosen) < count:
        raise SystemExit(
            f"only {len(chosen)} users have posts in the share; use more --users or a lower --rate"
        )
    return chosen


def table_shape(path: Path) -> tuple[int, int]:
    files = len(DeltaTable(str(path)).file_uris())
    log_bytes = sum(f.stat().st_size for f in (path / "_delta_log").iterdir() if f.is_file())
    return files, log_bytes


def bytes_added_since(path: Path, version: int) -> int:
    total = 0
    for entry in DeltaTable(str(path)).history():
        if int(entry["version"]) > version and entry.get("datalease.kind") == "revocation":
            commit = path / "_delta_log" / f"{int(entry['version']):020d}.json"
            for line in commit.read_text().splitlines():
                action = json.loads(line)
                if "add" in action:
                    total += int(action["add"]["size"])
    return total


def run_phase(name: str, prepared: Path, args: argparse.Namespace) -> PhaseResult:
    home = WORK / name / "home"
    shutil.rmtree(home.parent, ignore_errors=True)
    shutil.copytree(prepared, home)
    chosen = authors(home, int(args.rate * args.minutes * 60))
    ws = Workspace(Settings(home=home))
    versions = {
        t: int(DeltaTable(str(home / "shares" / AGREEMENT / t)).version()) for t in ("posts", "likes")
    }
    server = serve(home, worker=True)
    observed = Observed()
    stop = threading.Event()
    try:
        profile = home.parent / "partner.share"
        cli(home, "partner", "token", PARTNER, "--out", str(profile), "--endpoint", server.base)
        bearer = json.loads(profile.read_text())["bearerToken"]
        threads = [
            threading.Thread(
                target=poll_feed, args=(Partner(server.base, bearer), observed, stop, versions["posts"])
            ),
            threading.Thread(target=probe_queries, args=(Partner(server.base, bearer), observed, stop)),
        ]
        for thread in threads:
            thread.start()
        started = time.time()
        next_optimize = started + args.optimize_every
        for n, (user, key) in enumerate(chosen):
            due = started + n / args.rate
            time.sleep(max(0.0, due - time.time()))
            ws.ledger.record(user, "share_with_partners", False)
            with observed.lock:
                observed.recorded[key] = time.time()
            if n % int(args.rate) == 0:
                observed.loads.append((time.time(), load()))
            if name == "optimize" and time.time() >= next_optimize:
                cli(home, "release", "optimize", AGREEMENT)
                next_optimize = time.time() + args.optimize_every
        deadline = time.time() + DRAIN_S
        while time.time() < deadline and len(observed.deleted.keys() & observed.recorded.keys()) < len(
            chosen
        ):
            time.sleep(0.2)
    finally:
        stop.set()
        server.stop()
    return summarise(name, home, started, observed, versions, len(chosen))


def summarise(
    name: str, home: Path, started: float, observed: Observed, versions: dict[str, int], opt_outs: int
) -> PhaseResult:
    latency: dict[int, list[float]] = defaultdict(list)
    missing = 0
    for key, at in observed.recorded.items():
        shown = observed.deleted.get(key)
        if shown is None:
            missing += 1
        else:
            latency[int((at - started) // 60)].append(shown - at)
    queries: dict[int, list[float]] = defaultdict(list)
    for at, seconds in observed.queries:
        queries[int((at - started) // 60)].append(seconds)
    loads: dict[int, list[float]] = defaultdict(list)
    for at, value in observed.loads:
        loads[int((at - started) // 60)].append(value)
    print(
        f"\n== phase {name}: {opt_outs:,} opt-outs, {missing} not delivered within the run + {DRAIN_S:.0f} s"
    )
    print("minute  opt-outs  p50 s   p95 s   /query p99 ms  load")
    minutes = sorted(latency.keys() | queries.keys())
    for minute in minutes:
        values = latency.get(minute, [])
        q = queries.get(minute, [])
        print(
            f"{minute:>6}  {len(values):>8}  {statistics.median(values) if values else 0:5.2f}  "
            f"{percentile(values, 0.95) if values else 0:6.2f}  {percentile(q, 0.99) * 1000 if q else 0:13.1f}  "
            f"{statistics.mean(loads[minute]) if loads.get(minute) else 0:4.1f}"
        )
    shapes = {t: table_shape(home / "shares" / AGREEMENT / t) for t in versions}
    rewritten = sum(bytes_added_since(home / "shares" / AGREEMENT / t, v) for t, v in versions.items())
    print(
        f"bytes rewritten per opt-out: {rewritten / max(1, opt_outs):,.0f}; "
        + "; ".join(
            f"{t}: {files} files, _delta_log {size / 1e6:.1f} MB" for t, (files, size) in shapes.items()
        )
    )
    for error in observed.errors[:5]:
        print(f"error: {error}")
    # Minutes of the run itself: the drain after the last opt-out carries no churn, so it is no "last minute".
    run_minutes = sorted(latency.keys()) or minutes
    first = queries.get(run_minutes[0], [])
    last = queries.get(run_minutes[-1], [])
    p95s = [percentile(latency[m], 0.95) for m in minutes if latency.get(m)]
    return PhaseResult(
        max(p95s) if p95s else float("inf"),
        (percentile(last, 0.99) / percentile(first, 0.99)) if first and last else float("inf"),
        missing,
        sum(f for f, _ in shapes.values()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--likes", type=int, default=3_000_000)
    parser.add_argument("--rate", type=float, default=20.0, help="opt-outs per second")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--optimize-every", type=float, default=60.0, help="seconds between compactions")
    parser.add_argument("--small", action="store_true", help="5k users, 5 opt-outs/s, 2 minutes")
    args = parser.parse_args()
    if args.small:
        args.users, args.posts, args.likes, args.rate, args.minutes = 5_000, 50_000, 150_000, 5.0, 2.0
        args.optimize_every = 30.0
    prepared = WORK / "prepared"
    shutil.rmtree(WORK, ignore_errors=True)
    set_up(prepared, args.users, args.posts, args.likes)
    cli(prepared, "release", "build", AGREEMENT)
    results = {name: run_phase(name, prepared, args) for name in ("baseline", "optimize")}
    base, optimized = results["baseline"], results["optimize"]
    print("\n== summary (baseline: no compaction, same run)")
    for name, result in results.items():
        print(
            f"{name:>9}: worst minute p95 {result.worst_p95:.2f} s (goal ≤ 2 s), /query p99 last/first "
            f"{result.query_growth:.2f}× (goal ≤ 1.5×), {result.missing} undelivered, {result.files} files"
        )
    print(f"files at the end, optimize / baseline: {optimized.files / max(1, base.files):.2f}×")


if __name__ == "__main__":
    main()
