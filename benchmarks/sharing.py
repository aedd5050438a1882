"""The Delta Sharing server (`datalease serve`) against a plain static server measured in the same run.

    python -m benchmarks.sharing [--small] [--clients 16] [--requests 3000] [--gib 1.0] [--streams 4]

Set-up (a child process, so this one stays small): a fresh home with the example policy, partner
`bench-lab` and agreement `bench-share` (posts + likes), and two Delta tables written straight into
the share directory with deltalake, plus one release-ledger row (`record_release`) pinning them.
They are not built by `release build`: a 1 GB release would need tens of millions of generated source
rows and minutes of building, while the server only reads the Delta log and the release ledger.

* `posts`: 100 files (partitioned by `bucket` into 100 partitions of 1,000 rows: the partition column
  is hidden from partners, so every answer exercises that path);
* `likes`: ~`--gib` GiB of incompressible int64 columns in 16 files (one per bucket).

Both servers are real uvicorn processes on loopback ports, one worker each: `datalease serve`, and a
Starlette app (`--static-child`) that serves the `likes` directory with `StaticFiles` and answers
`POST /query` with the bytes our server returned for the same query (the floor of what uvicorn can
do for that answer on this machine).

(a) `POST /query` of `posts` (100 signed URLs per answer, a usage row written per request) with
    `--clients` concurrent clients (threads, one keep-alive connection each): requests/s, p50 and p99
    latency; the same load on the static answer. A short single-client run first gives the service
    time without queueing.
(b) Download of every `likes` file through our signed URLs (signature check, ledger lookup,
    metering) vs the same files from StaticFiles, `--streams` parallel streams; the runs alternate
    (ours, static, three times) and the best of each counts. Goal (issue 4): ≥ 0.8× the static server.

The load generator is Python in this process: on 2 cores it competes with the server for CPU, the
same way for both servers. `--small` (8 MiB files, 600 requests) is a quick check, not a figure.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

WORK = Path(__file__).resolve().parent / ".work" / "sharing"
AGREEMENT = "bench-share"
PARTNER = "bench-lab"
AGREEMENT_YAML = """
agreement: bench-share
partner: bench-lab
status: active
term: {start: 2026-01-01, end: 2027-12-31}
purposes: [train_ai_system.generative]
categories: [posts, likes]
regions: {denied: [EEA]}
fields:
  posts: [text, created_at, lang, sentiment]
  likes: [created_at]
pricing: {model: flat_annual, amount: 1000000, currency: USD}
deletion_sla_hours: 72
"""
QUERY_FILES = 100
ROWS_PER_QUERY_FILE = 1_000
DOWNLOAD_FILES = 16
INT_COLUMNS = 8
BYTES_PER_ROW = 67  # measured on 64 MiB files: 8 random int64 columns take ~67 bytes a row in Parquet
START_SECONDS = 60.0


# --- set-up (child) ---------------------------------------------------------------------------------


def set_up(home: Path, download_bytes: int) -> None:
    """A home with the agreement, the two Delta tables in its share directory, and a ledger row."""
    import numpy as np
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from datalease.config import Settings
    from datalease.licensing.registry import create_agreement
    from datalease.policy.load import load_policy
    from datalease.releases.delta import TABLE_CONFIGURATION
    from datalease.releases.model import Release, ReleaseTable
    from datalease.store.licensing import add_partner
    from datalease.store.policy_revisions import save_policy_revision
    from datalease.store.releases import record_release
    from datalease.workspace import Workspace

    shutil.rmtree(home, ignore_errors=True)
    started = time.perf_counter()
    ws = Workspace(Settings(home=home, database_url=None, master_key=None))
    ws.init()
    policy_text = files("datalease.examples").joinpath("x-2024.yaml").read_text()
    policy = load_policy(policy_text, "x-2024.yaml")
    with ws.session() as session, session.begin():
        revision = save_policy_revision(
            session, policy.name, policy_text, hashlib.sha256(policy_text.encode()).hexdigest(), "bench"
        )
        add_partner(session, PARTNER)
        create_agreement(session, AGREEMENT_YAML, "bench.yaml", policy=policy)
    share = ws.settings.resolved_home / "shares" / AGREEMENT
    rng = np.random.default_rng(7)

    rows = QUERY_FILES * ROWS_PER_QUERY_FILE
    ids = np.arange(rows)
    posts = pa.table(
        {
            "post_key": pa.array([f"{i:032x}" for i in ids]),
            "user_key": pa.array([f"{i * 7919:032x}" for i in ids]),
            "bucket": pa.array([f"{i % QUERY_FILES:02d}" for i in ids]),
            "text": pa.array([f"post number {i}" for i in ids]),
            "created_at": pa.array(
                (np.datetime64("2025-01-01") + ids.astype("timedelta64[s]")).astype("datetime64[us]")
            ).cast(pa.timestamp("us", tz="UTC")),
            "lang": pa.array(["en"] * rows),
            "sentiment": pa.array(rng.uniform(-1, 1, rows)),
        }
    )
    write_deltalake(str(share / "posts"), posts, partition_by=["bucket"], configuration=TABLE_CONFIGURATION)

    per_file = max(1, download_bytes // DOWNLOAD_FILES // BYTES_PER_ROW)
    likes_path = share / "likes"
    for bucket in range(DOWNLOAD_FILES):  # one partition (file) at a time keeps memory at one file
        chunk = {f"v{c}": pa.array(rng.integers(0, 2**62, per_file)) for c in range(INT_COLUMNS)}
        chunk["bucket"] = pa.array([f"{bucket:x}"] * per_file)
        mode: Literal["error", "append"] = "error" if bucket == 0 else "append"
        write_deltalake(
            str(likes_path),
            pa.table(chunk),
            mode=mode,
            partition_by=["bucket"],
            configuration=TABLE_CONFIGURATION if bucket == 0 else None,
        )
    now = datetime.now(UTC)
    likes_version = int(DeltaTable(str(likes_path)).version())
    tables = (
        ReleaseTable(
            "likes", likes_version, per_file * DOWNLOAD_FILES, per_file * DOWNLOAD_FILES, 0, DOWNLOAD_FILES, 0
        ),
        ReleaseTable("posts", 0, rows, rows, 0, QUERY_FILES, 0),
    )
    release = Release(
        release_id=0,
        agreement_id=AGREEMENT,
        built_at=now,
        as_of=now,
        policy_revision_id=revision,
        policy_version=None,
        agreement_sha256="benchmark",
        consent_watermark=0,
        source_versions={},
        engine="benchmark",
        full_build=True,
        duration_ms=0,
        excluded={},
        excluded_sample_every=1,
        tables=tables,
    )
    with ws.session() as session, session.begin():
        record_release(session, release)
    ws.engine.dispose()
    size = sum(p.stat().st_size for p in likes_path.rglob("*.parquet"))
    print(
        f"set-up: posts {QUERY_FILES} files × {ROWS_PER_QUERY_FILE:,} rows; likes {DOWNLOAD_FILES} files, "
        f"{size / 2**30:.2f} GiB; {time.perf_counter() - started:.1f}s"
    )


# --- the static baseline server (child) -------------------------------------------------------------


def static_server(directory: Path, answer: Path, port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    body = answer.read_bytes()

    async def query(_: Request) -> Response:
        return Response(body, media_type="application/x-ndjson", headers={"Delta-Table-Version": "0"})

    app = Starlette(
        routes=[
            Route("/query", query, methods=["POST"]),
            Route("/ping", query, methods=["GET"]),
            Mount("/files", app=StaticFiles(directory=str(directory))),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# --- HTTP (http.client: the lightest client, so the figures are the servers') -----------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Client:
    """One keep-alive connection to the server of `url`."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=600
        )

    def request(
        self, method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        self.connection.request(method, _target(url), body=body, headers=headers or {})
        response = self.connection.getresponse()
        return Answer(response.status, response.read())

    def stream(self, url: str) -> int:
        """GET `url` in 1 MiB reads; returns the bytes received."""
        self.connection.request("GET", _target(url))
        response = self.connection.getresponse()
        if response.status != 200:
            raise SystemExit(f"GET {url}: HTTP {response.status}: {response.read()[:500]!r}")
        got = 0
        while piece := response.read(1 << 20):
            got += len(piece)
        return got

    def close(self) -> None:
        self.connection.close()


def post_json(url: str, body: dict[str, object], headers: dict[str, str]) -> Answer:
    client = Client(url)
    try:
        sent = {**headers, "Content-Type": "application/json"}
        answer = client.request("POST", url, json.dumps(body).encode(), sent)
    finally:
        client.close()
    if answer.status != 200:
        raise SystemExit(f"POST {url}: HTTP {answer.status}: {answer.body[:500]!r}")
    return answer


def file_urls(answer: Answer) -> list[str]:
    lines = answer.body.decode().splitlines()
    return [json.loads(line)["file"]["url"] for line in lines if '"file"' in line]


# --- processes --------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start(name: str, args: list[str], env: dict[str, str], probe: str) -> Process:
    """Start a server and poll `probe` until it answers (any HTTP status)."""
    log = WORK / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    running = Process(name, process, log)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        client = Client(probe)
        try:
            client.request("GET", probe)
            return running
        except OSError:
            try:
                process.wait(timeout=0.05)  # the poll interval; notices an early exit
            except subprocess.TimeoutExpired:
                continue
        finally:
            client.close()
    running.stop()
    raise SystemExit(f"{name} did not start:\n{log.read_text(errors='replace')}")


def run_child(args: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


# --- load -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def describe(self, label: str) -> str:
        return (
            f"    {label}: {self.rate:8.1f} requests/s, p50 {self.percentile(50) * 1000:7.1f} ms, "
            f"p99 {self.percentile(99) * 1000:7.1f} ms, mean {statistics.fmean(self.latencies) * 1000:7.1f} ms"
        )


def load(url: str, headers: dict[str, str], total: int, clients: int) -> LoadResult:
    """`total` POSTs of `{}` to `url` from `clients` threads, each with its own keep-alive connection."""
    latencies: list[float] = []
    lock = threading.Lock()
    remaining = [total]
    sent = {**headers, "Content-Type": "application/json"}

    def client() -> None:
        connection = Client(url)
        try:
            connection.request("POST", url, b"{}", sent)  # open the connection
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                began = time.perf_counter()
                answer = connection.request("POST", url, b"{}", sent)
                elapsed = time.perf_counter() - began
                if answer.status != 200:
                    raise SystemExit(f"HTTP {answer.status}: {answer.body[:500]!r}")
                with lock:
                    latencies.append(elapsed)
        finally:
            connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return LoadResult(total, time.perf_counter() - started, latencies)


def download(urls: list[str], streams: int) -> tuple[int, float]:
    """Read every URL to nowhere, `streams` at a time; returns (bytes, seconds)."""

    def fetch(url: str) -> int:
        client = Client(url)
        try:
            return client.stream(url)
        finally:
            client.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        total = sum(pool.map(fetch, urls))
    return total, time.perf_counter() - started


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="8 MiB files and 600 requests: a quick check")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--gib", type=float, default=1.0, help="size of the download table")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--setup-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--static-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.setup_child:
        set_up(Path(args.setup_child[0]), int(args.setup_child[1]))
        return
    if args.static_child:
        static_server(Path(args.static_child[0]), Path(args.static_child[1]), int(args.static_child[2]))
        return

    total = 600 if args.small else args.requests
    download_bytes = DOWNLOAD_FILES * 8 * 2**20 if args.small else int(args.gib * 2**30)
    WORK.mkdir(parents=True, exist_ok=True)
    home = WORK / "home"
    print(f"load average at start: {loadavg()}")
    setup = [sys.executable, "-m", "benchmarks.sharing", "--setup-child", str(home), str(download_bytes)]
    print(run_child(setup).strip())

    exe = str(Path(sys.executable).with_name("datalease"))
    env = {"DATALEASE_HOME": str(home), "DATALEASE_WORKERS": "1"}
    ours_port, static_port = free_port(), free_port()
    static_base = f"http://127.0.0.1:{static_port}"
    ours = start(
        "datalease-serve",
        [exe, "serve", "--port", str(ours_port)],
        env,
        f"http://127.0.0.1:{ours_port}/delta-sharing/shares",
    )
    static: Process | None = None
    try:
        profile_path = WORK / "bench.share"
        endpoint = f"http://127.0.0.1:{ours_port}"
        run_child([exe, "partner", "token", PARTNER, "--out", str(profile_path), "--endpoint", endpoint], env)
        profile = json.loads(profile_path.read_text())
        auth = {"Authorization": f"Bearer {profile['bearerToken']}"}
        table = f"{profile['endpoint']}/shares/{AGREEMENT}/schemas/platform/tables"

        answer = post_json(f"{table}/posts/query", {}, auth)
        assert len(file_urls(answer)) == QUERY_FILES, f"expected {QUERY_FILES} files"
        answer_path = WORK / "query-answer.ndjson"
        answer_path.write_bytes(answer.body)
        static_dir = home / "shares" / AGREEMENT / "likes"
        static = start(
            "static",
            [
                sys.executable,
                "-m",
                "benchmarks.sharing",
                "--static-child",
                str(static_dir),
                str(answer_path),
                str(static_port),
            ],
            {},
            f"{static_base}/ping",
        )

        # (a) /query throughput
        print(
            f"(a) POST /query of a {QUERY_FILES}-file table ({len(answer.body):,} bytes per answer), "
            f"{args.clients} concurrent clients, {total:,} requests"
        )
        alone = load(f"{table}/posts/query", auth, max(50, total // 20), 1)
        print(alone.describe("datalease, 1 client  "))
        ours_load = load(f"{table}/posts/query", auth, total, args.clients)
        print(ours_load.describe(f"datalease, {args.clients} clients"))
        static_load = load(f"{static_base}/query", {}, total, args.clients)
        print(static_load.describe(f"static,    {args.clients} clients"))
        print(
            f"    ratio datalease / static answer: {ours_load.rate / static_load.rate:.2f}  (load average {loadavg()})"
        )

        # (b) download throughput
        signed = file_urls(post_json(f"{table}/likes/query", {}, auth))
        plain = [
            f"{static_base}/files/{p.relative_to(static_dir)}" for p in sorted(static_dir.rglob("*.parquet"))
        ]
        assert len(signed) == len(plain) == DOWNLOAD_FILES, (len(signed), len(plain))
        best_ours = best_static = 0.0
        size = 0
        print(
            f"(b) download of {DOWNLOAD_FILES} files, {args.streams} parallel streams, alternating, best of 3"
        )
        for attempt in (1, 2, 3):
            for label, urls in (("signed URLs", signed), ("StaticFiles", plain)):
                got, seconds = download(urls, args.streams)
                rate = got / seconds
                if label == "signed URLs":
                    size, best_ours = got, max(best_ours, rate)
                else:
                    assert got == size, (got, size)
                    best_static = max(best_static, rate)
                print(
                    f"    run {attempt} {label}: {got / 2**20:7.0f} MiB in {seconds:6.2f}s = {rate / 2**20:7.1f} MiB/s"
                )
        print(f"    ratio signed / static (best runs): {best_ours / best_static:.2f}  (goal >= 0.8)")
        print(f"load average at end: {loadavg()}")
        figures = {
            "query_rps": round(ours_load.rate, 1),
            "query_p50_ms": round(ours_load.percentile(50) * 1000, 2),
            "query_p99_ms": round(ours_load.percentile(99) * 1000, 2),
            "query_1_client_p50_ms": round(alone.percentile(50) * 1000, 2),
            "static_query_rps": round(static_load.rate, 1),
            "download_mib_s": round(best_ours / 2**20, 1),
            "static_download_mib_s": round(best_static / 2**20, 1),
            "download_bytes": size,
        }
        print(json.dumps(figures))
    finally:
        if static is not None:
            static.stop()
        ours.stop()


if __name__ == "__main__":
    main()
