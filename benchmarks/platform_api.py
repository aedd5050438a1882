"""The platform API's hot paths against baselines measured in the same run.

    python -m benchmarks.platform_api [--users 20000] [--rate 500] [--seconds 60] [--batch 10000]
                                      [--writers 8] [--changes 10] [--repeat 3] [--parts abc]
                                      [--processes 1]

Set-up: a fresh home with `--users` generated users (only the users table: decisions and settings need
nothing else) and the example policy; `datalease serve` (`--processes` API processes, revocation
worker off) and a static Starlette app (`--static-child`) on loopback, each a real uvicorn process.

(a) `POST /api/v1/platform/decide` at `--rate` requests/s for `--seconds` (mixed users, threads with
    one keep-alive connection each): server side p50/p99 from `Server-Timing: app;dur`, client side
    p50/p99 from the scheduled send time (queueing included), achieved rate; baseline: the same load
    on the static app answering the same bytes. Goal (issue 16): server p99 ≤ 5 ms at 500/s.
(b) `POST decide/batch` of `--batch` records (run after (c), so people have settings): records/s via
    the API (median of `--repeat` calls after a warm-up) and via the use case in-process on both paths
    (the compiled plan, and `decide()` per record); baseline: bare `policy.decide.decide()` over the
    same records in this process. Goal ≥ 100k/s.
(c) settings writes: `--writers` concurrent clients, each call `--changes` changes, for `--seconds`/3:
    events/s with group commit (the hash chain verified afterwards); baseline: one `record()` commit
    per event in-process. Goal ≥ 2,000 events/s.
(d) `/query` with 16 concurrent clients vs a static answer of the same bytes: `python -m
    benchmarks.sharing` measures it (it is that benchmark's part (a)).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

WORK = Path(__file__).resolve().parent / ".work" / "platform_api"
GENERATIVE = "train_ai_system.generative"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_up(home: Path, users: int) -> list[int]:
    from datalease.config import Settings
    from datalease.platform.generate import generate_platform
    from datalease.platform.ingest import ingest_file
    from datalease.store.policy_revisions import save_policy_revision
    from datalease.workspace import Workspace

    ws = Workspace(Settings(home=home, database_url=None, master_key=None, api_token=None))
    ws.init()
    inputs = generate_platform(
        home.parent / "input", users=users, seed=3, now=datetime(2026, 5, 1, tzinfo=UTC)
    )
    ingest_file(ws.lake, "users", inputs["users"])
    text = files("datalease.examples").joinpath("x-2024.yaml").read_text(encoding="utf-8")
    with ws.session() as session, session.begin():
        save_policy_revision(session, "bench", text, hashlib.sha256(text.encode()).hexdigest(), "bench")
    ids: list[int] = ws.lake.read("users").column("user_id").to_pylist()
    ws.engine.dispose()
    return ids


def _wait(port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answers on port {port}")


def static_child(port: int, body_file: Path) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = body_file.read_bytes()

    async def answer(_: Request) -> Response:
        return Response(body, media_type="application/json")

    uvicorn.run(
        Starlette(routes=[Route("/{p:path}", answer, methods=["POST"])]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 2 else (values or [0.0])[0]


def paced(
    port: int, path: str, bodies: list[bytes], token: str, rate: float, seconds: float
) -> dict[str, float]:
    """Send at `rate`/s for `seconds`; client latency counts from the scheduled send time."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    client: list[float] = []
    server: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))
    threads = max(4, min(32, int(rate / 25)))

    def work() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            conn.request("POST", path, body=bodies[i % len(bodies)], headers=headers)
            answer = conn.getresponse()
            answer.read()
            took = (time.perf_counter() - due) * 1000
            timing = answer.getheader("server-timing") or ""
            with lock:
                if answer.status != 200:
                    errors += 1
                client.append(took)
                if "dur=" in timing:
                    server.append(float(timing.split("dur=")[1]))

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "achieved_per_s": len(client) / elapsed,
        "client_p50_ms": _pct(client, 50),
        "client_p99_ms": _pct(client, 99),
        "server_p50_ms": _pct(server, 50) if server else float("nan"),
        "server_p99_ms": _pct(server, 99) if server else float("nan"),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="batch calls measured (after one warm-up)")
    parser.add_argument("--parts", default="abc", help="which parts to run, e.g. ab")
    parser.add_argument("--processes", type=int, default=1, help="`serve --workers N` API processes")
    parser.add_argument("--static-child", nargs=2, metavar=("PORT", "BODY"))
    args = parser.parse_args()
    if args.static_child:
        static_child(int(args.static_child[0]), Path(args.static_child[1]))
        return
    import shutil

    shutil.rmtree(WORK, ignore_errors=True)
    home = WORK / "home"
    home.parent.mkdir(parents=True)
    print(f"set-up: {args.users:,} users ...", flush=True)
    ids = set_up(home, args.users)
    env = {
        **os.environ,
        "DATALEASE_HOME": str(home),
        "DATALEASE_REVOCATION_WORKER": "false",
        "DATALEASE_WORKERS": "1",
    }
    port = _port()
    serve = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("datalease")),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.processes),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    static = None
    try:
        _wait(port)
        token = (home / "keys" / "api.token").read_text().strip()
        rng = random.Random(5)
        records = [
            {
                "user_id": rng.choice(ids),
                "category": rng.choice(["posts", "likes", "profile"]),
                "purposes": [GENERATIVE],
            }
            for _ in range(max(args.batch, 1000))
        ]
        bodies = [json.dumps(r).encode() for r in records[:1000]]
        # warm-up, and the answer the static app will send
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(
            "POST",
            "/api/v1/platform/decide",
            body=bodies[0],
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        sample = conn.getresponse().read()
        body_file = WORK / "decide-answer.json"
        body_file.write_bytes(sample)
        static_port = _port()
        static = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.platform_api",
                "--static-child",
                str(static_port),
                str(body_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        _wait(static_port)
        print(f"load average at start: {os.getloadavg()[0]:.1f}")
        if "a" in args.parts:
            ours = paced(port, "/api/v1/platform/decide", bodies, token, args.rate, args.seconds)
            base = paced(static_port, "/api/v1/platform/decide", bodies, token, args.rate, args.seconds)
            print(
                f"(a) decide via API at {args.rate:g}/s for {args.seconds:g}s: "
                + json.dumps({k: round(v, 2) for k, v in ours.items()})
            )
            print("    static answer, same load: " + json.dumps({k: round(v, 2) for k, v in base.items()}))
            print(
                f"    client p99 ratio ours/static: {ours['client_p99_ms'] / max(base['client_p99_ms'], 1e-9):.2f}"
            )
        # (c) before (b): the batch then reads people with settings of their own
        if "c" in args.parts:
            events, seconds = _writers(port, token, ids, args.writers, args.changes, max(args.seconds / 3, 5))
            one_by_one = _one_commit_per_event(home, ids, seconds=min(5.0, max(args.seconds / 6, 2)))
            verified = _verify(home)
            print(
                f"(c) settings writes, {args.writers} clients × {args.changes} changes per call, {seconds:.0f}s: "
                f"{events:,} events = {events / seconds:,.0f} events/s (chain verified: {verified}); one commit "
                f"per event in-process {one_by_one:,.0f}/s → ratio {events / seconds / max(one_by_one, 1e-9):.1f}"
            )
        if "b" in args.parts:
            batch = json.dumps({"records": records[: args.batch]}).encode()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)  # the first one idled out
            took: list[float] = []
            in_app: list[float] = []  # Server-Timing: from the request's arrival in the app to its answer
            for _ in range(1 + args.repeat):  # the first call warms up (DuckDB, the plan's first compile)
                started = time.perf_counter()
                conn.request(
                    "POST",
                    "/api/v1/platform/decide/batch",
                    body=batch,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
                answer = conn.getresponse()
                answer.read()
                took.append(time.perf_counter() - started)
                assert answer.status == 200, answer.status
                in_app.append(float((answer.getheader("server-timing") or "dur=nan").split("dur=")[1]))
            api_rate = args.batch / statistics.median(took[1:])
            bare_rate, python_rate, compiled_rate = _in_process(home, records[: args.batch], args.repeat)
            print(
                f"(b) batch decide of {args.batch:,} (median of {args.repeat}): via API {api_rate:,.0f} records/s "
                f"({statistics.median(took[1:]) * 1000:.0f} ms a call, {statistics.median(in_app[1:]):.0f} ms of it in the app); "
                f"in-process use case: compiled plan {compiled_rate:,.0f}/s, decide() per record "
                f"{python_rate:,.0f}/s; bare decide() {bare_rate:,.0f}/s → API/bare {api_rate / bare_rate:.2f}, "
                f"compiled/per-record {compiled_rate / python_rate:.1f}"
            )
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
        print("(d) /query with 16 clients vs a static answer: python -m benchmarks.sharing [--small]")
    finally:
        for process in (serve, static):
            if process is not None:
                process.terminate()
                process.wait(timeout=20)


def _in_process(home: Path, records: list[dict[str, object]], repeat: int) -> tuple[float, float, float]:
    from datalease.config import Settings
    from datalease.policy.decide import decide
    from datalease.policy.model import RecordFacts, Scope
    from datalease.services.decision_context import context_of
    from datalease.services.platform_decide import DecideRequest, decide_many
    from datalease.workspace import Workspace

    ws = Workspace(Settings(home=home, database_url=None, master_key=None, api_token=None))
    requests = [DecideRequest(int(r["user_id"]), str(r["category"]), (GENERATIVE,)) for r in records]  # type: ignore[call-overload]
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(1 + repeat):
        for compiled in (False, True):
            started = time.perf_counter()
            decide_many(ws, requests, compiled=compiled)
            rates[compiled].append(len(requests) / (time.perf_counter() - started))
    snap = context_of(ws).snapshot()
    now = datetime.now(UTC)
    consent = {r.user_id: ws.consent_at(r.user_id, now) for r in requests}
    started = time.perf_counter()
    for r in requests:
        record = RecordFacts(r.category, snap.users[r.user_id], now)
        decide(snap.policy, record, consent[r.user_id], Scope(r.purposes, (r.category,)), now)
    bare = len(requests) / (time.perf_counter() - started)
    ws.engine.dispose()
    return bare, statistics.median(rates[False][1:]), statistics.median(rates[True][1:])


def _writers(
    port: int, token: str, ids: list[int], writers: int, changes: int, seconds: float
) -> tuple[int, float]:
    stop = time.perf_counter() + seconds
    counts = [0] * writers
    keys = ("share.posts", "share.likes", "share.reposts", "share.bookmarks", "share.profile")

    def work(w: int) -> None:
        rng = random.Random(w)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while time.perf_counter() < stop:
            body = {
                "changes": [
                    {"user_id": rng.choice(ids), "key": rng.choice(keys), "value": rng.random() < 0.5}
                    for _ in range(changes)
                ]
            }
            conn.request("POST", "/api/v1/platform/settings", body=json.dumps(body).encode(), headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.status == 200:
                counts[w] += changes

    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts), time.perf_counter() - started


def _one_commit_per_event(home: Path, ids: list[int], seconds: float) -> float:
    from datalease.config import Settings
    from datalease.workspace import Workspace

    ws = Workspace(Settings(home=home, database_url=None, master_key=None, api_token=None))
    rng = random.Random(9)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        ws.ledger.record(rng.choice(ids), "share.posts", rng.random() < 0.5)
        count += 1
    rate = count / (time.perf_counter() - started)
    ws.engine.dispose()
    return rate


def _verify(home: Path) -> bool:
    from datalease.config import Settings
    from datalease.workspace import Workspace

    ws = Workspace(Settings(home=home, database_url=None, master_key=None, api_token=None))
    ok = bool(ws.ledger.verify().ok)
    ws.engine.dispose()
    return ok


if __name__ == "__main__":
    main()
