"""Bulk withdrawals: an order halting the US and a termination, delivered by the bulk worker of a real
`datalease serve`, while single opt-outs keep arriving — against the same opt-outs without one.

    python -m benchmarks.bulk_withdrawal [--users 2000] [--opt-outs 10] [--chunk-rows 1000000] [--chunk-seconds S]
    python -m benchmarks.bulk_withdrawal --scale [--users 1000000 --posts 10000000 --likes 0]

Set-up: `datalease demo --users N --no-serve` (N users, ~10 N posts; x-2024 policy, lumen-genai-2025
and sentimetrics-us-2025 released), copied into two homes. In each home a `datalease serve` runs with
its workers on, and a lumen-labs profile is issued.

`--scale`: instead of the demo (curation per post is far too slow at a million users), the generated
lake of benchmarks/releases.py (users in 14 countries, a few in the US — about a third of the released
rows, the EEA being denied —, Zipf-like authors, 5% opted out) with its agreement `bench-genai` (posts
+ likes) and a second one, `bench-analytics` (posts, partner bench-lab-2), both built; the opt-outs are bench-genai's, the
termination ends bench-analytics.

(a) Baseline, same run: `--opt-outs` non-US users with posts in lumen's share opt out one at a time;
    the official client polls lumen's posts feed until the user's delete shows. p50/p95/max.
(b) `order apply` halting the US (home 1) / `agreement terminate sentimetrics-us-2025` (home 2): the
    seconds from the command to the withdrawal completed (every chunk committed, forget entries
    written), rows deleted and rows/s; meanwhile the same kind of opt-outs, measured the same way.
(c) The server's peak RSS (VmHWM), i.e. the worker's, for each scenario.

The load average (1 min) is printed with the figures: this machine is shared.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import releases, revocation
from benchmarks.revocation import (
    AGREEMENT,
    DATALEASE,
    PARTNER,
    candidates,
    cli,
    describe,
    env_for,
    load,
    opt_out,
    percentile,
    serve,
    until_deleted,
)
from benchmarks.soak import authors

WORK = Path(__file__).resolve().parent / ".work" / "bulk_withdrawal"
US_ORDER = """\
order: bench-us-halt
issued_by: Federal Trade Commission
reference: BENCH-0001
regions: [US]
purposes: [train_ai_system]
effective: 2026-01-01
"""
SCALE_OTHER = "bench-analytics"
SCALE_OTHER_PARTNER = "bench-lab-2"
SCALE_OTHER_YAML = (
    releases.AGREEMENT_YAML.replace(f"agreement: {releases.AGREEMENT}", f"agreement: {SCALE_OTHER}")
    .replace("partner: bench-lab", f"partner: {SCALE_OTHER_PARTNER}")
    .replace("categories: [posts, likes]", "categories: [posts]")
    .replace("  likes: [created_at]\n", "")
)


def scale_set_up(home: Path, users: int, posts: int, likes: int) -> None:
    """The generated lake and its two agreements, both released."""
    from datalease.licensing.registry import create_agreement
    from datalease.store.licensing import add_partner

    ws = releases.set_up(home, users, posts, likes)
    with ws.session() as session, session.begin():
        add_partner(session, SCALE_OTHER_PARTNER)
        create_agreement(session, SCALE_OTHER_YAML, "bench-analytics.yaml", policy=ws.require_policy())
    ws.engine.dispose()
    for agreement in (releases.AGREEMENT, SCALE_OTHER):
        started = time.perf_counter()
        cli(home, "release", "build", agreement)
        print(f"set-up: release build {agreement} in {time.perf_counter() - started:.1f} s")


def non_us(home: Path, chosen: list[tuple[int, str]]) -> list[tuple[int, str]]:
    from datalease.config import Settings
    from datalease.workspace import Workspace

    ws = Workspace(Settings(home=home))
    country = {r["user_id"]: r["country"] for r in ws.lake.read("users").to_pylist()}
    ws.engine.dispose()
    return [(u, k) for u, k in chosen if country[u] != "US"]


def bulk_state(home: Path) -> tuple[bool, int]:
    """(every bulk withdrawal completed, rows deleted so far)."""
    from sqlalchemy import text

    from datalease.config import Settings
    from datalease.workspace import Workspace

    ws = Workspace(Settings(home=home))
    with ws.session() as session:
        pending = session.execute(
            text("SELECT count(*) FROM bulk_withdrawals WHERE completed_at IS NULL")
        ).scalar()
        rows = session.execute(text("SELECT coalesce(sum(rows_deleted), 0) FROM bulk_deliveries")).scalar()
    ws.engine.dispose()
    return int(pending or 0) == 0, int(rows or 0)


def delivery_seconds(home: Path) -> float:
    """Seconds from the withdrawal recorded to its completion (the bulk worker's own time)."""
    from datalease.config import Settings
    from datalease.store.bulk import list_withdrawals
    from datalease.workspace import Workspace

    ws = Workspace(Settings(home=home))
    with ws.session() as session:
        spans = [
            (w.completed_at - w.requested_at).total_seconds()
            for w in list_withdrawals(session)
            if w.completed_at is not None
        ]
    ws.engine.dispose()
    return sum(spans)


def committed_latencies(
    home: Path, agreement: str, since: datetime, split: datetime
) -> tuple[list[float], list[float]]:
    """The server's side of the single opt-outs recorded since `since`: seconds from recorded to
    their deletes committed to `agreement` (visible to the partner from then), those recorded before
    `split` (the command) and after."""
    from sqlalchemy import text

    from datalease.config import Settings
    from datalease.timeparse import parse_instant
    from datalease.workspace import Workspace

    ws = Workspace(Settings(home=home))
    with ws.session() as session:
        found = session.execute(
            text(
                "SELECT i.requested_at, d.delivered_at FROM revocation_intents i JOIN revocation_deliveries d "
                "ON d.intent_id = i.intent_id WHERE i.source != 'bulk' AND d.agreement_id = :agreement"
            ),
            {"agreement": agreement},
        ).all()
    ws.engine.dispose()
    without: list[float] = []
    during: list[float] = []
    for requested, delivered in found:
        asked, done = parse_instant(str(requested)), parse_instant(str(delivered))
        if asked >= since:
            (without if asked < split else during).append((done - asked).total_seconds())
    return without, during


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scenario(
    home: Path,
    name: str,
    action: list[str],
    users: list[tuple[int, str]],
    count: int,
    *,
    agreement: str = AGREEMENT,
    partner: str = PARTNER,
) -> None:
    """`count` opt-outs without, then `action` and opt-outs (the rest of `users`) until it completes;
    the feed watched is `agreement`'s posts, read as `partner`."""
    import delta_sharing

    profile = home.parent / f"{name}-{partner}.share"
    url = f"{profile}#{agreement}.platform.posts"
    record = opt_out(home)
    server = serve(home, worker=True)
    try:
        cli(home, "partner", "token", partner, "--out", str(profile), "--endpoint", server.base)
        baseline: list[float] = []
        since = datetime.now(UTC)
        for user, key in users[:count]:
            before = int(delta_sharing.get_table_version(url))
            started = time.perf_counter()
            record(user)
            until_deleted(url, key, before)
            baseline.append(time.perf_counter() - started)
        loads = [load()]
        started = time.perf_counter()
        split = datetime.now(UTC)
        command = subprocess.Popen(
            [DATALEASE, *action],
            env=env_for(home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        during: list[float] = []
        queue = users[count:]
        done, rows = False, 0
        while command.poll() is None or not done:
            if queue:
                user, key = queue.pop(0)
                before = int(delta_sharing.get_table_version(url))
                began = time.perf_counter()
                record(user)
                until_deleted(url, key, before)
                during.append(time.perf_counter() - began)
                loads.append(load())
            else:
                time.sleep(0.2)
            done, rows = bulk_state(home) if command.poll() is not None else (False, 0)
        if command.returncode != 0:
            raise SystemExit(
                f"datalease {' '.join(action)} failed: {command.stderr.read() if command.stderr else ''}"
            )
        elapsed = time.perf_counter() - started
        delivery = delivery_seconds(home)
        rss = peak_rss_mib(server.process.pid)
    finally:
        server.stop()
    print(
        f"[{name}] {rows} rows deleted: {elapsed:.1f} s from the command to the last chunk and forget entry "
        f"(the command computes and prints the impact first); the worker's delivery (recorded → completed) "
        f"{delivery:.1f} s = {rows / max(delivery, 1e-9):,.0f} rows/s"
    )
    print(f"[{name}] single opt-outs without a bulk withdrawal: {describe(baseline)}")
    if during:
        ratio = sorted(during)[round(0.95 * (len(during) - 1))] / max(
            sorted(baseline)[round(0.95 * (len(baseline) - 1))], 1e-9
        )
        print(f"[{name}] single opt-outs during it: {describe(during)}; p95 ratio during/without {ratio:.2f}")
    else:
        print(f"[{name}] the withdrawal completed before a single opt-out could be measured during it")
    without, inside = committed_latencies(home, agreement, since, split)
    if without and inside:
        print(
            f"[{name}] server side, recorded → delete committed: without {describe(without)}; "
            f"during {describe(inside)}; p95 ratio {percentile(inside, 0.95) / max(percentile(without, 0.95), 1e-9):.2f}"
        )
    print(f"[{name}] server (workers) peak RSS {rss:.0f} MiB; load average {max(loads):.1f} (max)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--opt-outs", type=int, default=10)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=None,
        help="DATALEASE_BULK_CHUNK_SECONDS (default: its default)",
    )
    parser.add_argument("--scale", action="store_true", help="the generated lake, not the demo")
    parser.add_argument("--posts", type=int, default=10_000_000, help="with --scale")
    parser.add_argument("--likes", type=int, default=0, help="with --scale")
    parser.add_argument("--during", type=int, default=400, help="opt-outs at most during each withdrawal")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    first = WORK / "order" / "home"
    first.parent.mkdir()
    started = time.perf_counter()
    wanted = 3 * (args.opt_outs + args.during)
    if args.scale:
        scale_set_up(first, args.users, args.posts, args.likes)
        print(f"set-up: the generated lake and two builds in {time.perf_counter() - started:.1f} s")
        watched, partner, ended = releases.AGREEMENT, "bench-lab", SCALE_OTHER
        # Typical people, not the heaviest authors first: a sample of those with posts in the share.
        chosen = random.Random(14).sample(authors(first, args.users // 4), wanted)
    else:
        cli(first, "demo", "--users", str(args.users), "--no-serve")
        print(f"set-up: `datalease demo --users {args.users}` in {time.perf_counter() - started:.1f} s")
        watched, partner, ended = AGREEMENT, PARTNER, "sentimetrics-us-2025"
        chosen = candidates(first, min(args.users, wanted))
    second = WORK / "termination" / "home"
    shutil.copytree(first, second)
    users = non_us(first, chosen)[: args.opt_outs + args.during]
    if len(users) < 2 * args.opt_outs:
        raise SystemExit(f"too few non-US users with posts in {watched}'s share; use more --users")
    plain_env = revocation.env_for  # the servers get the chunk size too

    chunking = {"DATALEASE_BULK_CHUNK_ROWS": str(args.chunk_rows)}
    if args.chunk_seconds is not None:
        chunking["DATALEASE_BULK_CHUNK_SECONDS"] = str(args.chunk_seconds)

    def env_with_chunks(home: Path, **extra: str) -> dict[str, str]:
        return plain_env(home, **chunking, **extra)

    revocation.env_for = env_with_chunks
    order_file = WORK / "us-halt.yaml"
    order_file.write_text(US_ORDER)
    scenario(
        first,
        "order US",
        ["order", "apply", str(order_file)],
        users,
        args.opt_outs,
        agreement=watched,
        partner=partner,
    )
    scenario(
        second,
        f"terminate {ended}",
        ["agreement", "terminate", ended, "--reason", "benchmark"],
        users,
        args.opt_outs,
        agreement=watched,
        partner=partner,
    )


if __name__ == "__main__":
    main()
