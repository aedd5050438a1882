"""Several processes on one PostgreSQL store: two `datalease worker`s, two `datalease serve`s and a
release build loop, with one worker killed with SIGKILL mid-batch (the `revoke:after_commit` crash
point: its Delta commit made, its delivery not recorded, its claim open).

What must hold: the dead worker's claim went with its connection (the intent is taken over); every
revocation is delivered exactly once to every agreement that released data (one delivery per pair,
forget entries neither missing nor duplicated in the store and in the partner's forget table, no
Delta commit left unpinned, the shares hold what the oracle allows, no key deleted twice in the
partner's change feed); every build succeeds; SIGTERM stops each worker with exit 0; and the
metering rows of both servers add up to exactly the requests made against them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Final

import pytest
import requests
from cli_harness import cli_env, rows
from deltalake import DeltaTable
from release_world import LUMEN, SENTIMETRICS, cli_command, run_cli, workspace
from revocation_world import (
    API_TOKEN,
    RELEASED,
    TABLES,
    Base,
    Served,
    as_rows,
    build_base,
    delta_rows,
    frame_rows,
    heavy_users,
    identity,
    oracle_now,
    released_posts_of,
    serve,
)
from sharing_world import free_port

from datalease.policy.vocabulary import MASTER_KEY
from datalease.services.sharing import usage
from datalease.store.releases import latest_release, list_releases
from datalease.workspace import Workspace
from home_database import PG_URL_ENV, SELECT_ENV

pytestmark = pytest.mark.postgres

QUERIES_PER_SERVER: Final = 5
SETTLE_S: Final = 300.0


@pytest.fixture(scope="module")
def pg_base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """The revocation world, its store on a PostgreSQL database of its own."""
    if not os.environ.get(PG_URL_ENV):
        if os.environ.get("DATALEASE_REQUIRE_PG") == "1":
            pytest.fail(f"DATALEASE_REQUIRE_PG=1 but {PG_URL_ENV} is not set", pytrace=False)
        pytest.skip(f"needs {PG_URL_ENV}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SELECT_ENV, "postgresql")
        return build_base(tmp_path_factory.mktemp("processes-world"))


def start_worker(home: Path, log: Path, crashpoint: str | None = None) -> subprocess.Popen[bytes]:
    extra = {"DATALEASE_WORKERS": "1", "DATALEASE_REVOCATION_WINDOW_S": "0.2"}
    if crashpoint is not None:
        extra["DATALEASE_CRASHPOINT"] = crashpoint
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            [*cli_command(), "worker"], env=cli_env(home, extra), stdout=out, stderr=subprocess.STDOUT
        )


def pending(home: Path) -> int:
    return int(rows(home, "SELECT count(*) FROM revocation_intents WHERE processed_at IS NULL")[0][0])


def query(served: Served, table: str) -> list[dict[str, object]]:
    answer = served.partner("lumen-labs").api(
        "POST", f"/delta-sharing/shares/{LUMEN}/schemas/platform/tables/{table}/query", json={}
    )
    assert answer.status_code == 200, answer.text
    return [json.loads(line) for line in answer.text.splitlines() if line.strip()]


def latest_commit_pinned(ws: Workspace, agreement: str) -> None:
    """The latest commit of every table is pinned by the latest release that has the table, and
    deliveries point at releases of the agreement. (Not every commit: the dead worker's commits are
    followed, not redone, by the batch that took its claim over, which delivered more intents.)"""
    with ws.session() as session:
        releases = list_releases(session, agreement)
    for category in sorted({t.category for r in releases for t in r.tables}):
        pinned = max(t.table_version for r in releases for t in r.tables if t.category == category)
        path = ws.settings.resolved_home / "shares" / agreement / category
        assert pinned == DeltaTable(str(path)).version(), f"{agreement}.{category}: latest commit not pinned"
    ids = {r.release_id for r in releases}
    home = ws.settings.resolved_home
    for (release_id,) in rows(
        home, "SELECT release_id FROM revocation_deliveries WHERE agreement_id = ?", (agreement,)
    ):
        assert release_id in ids


def test_two_workers_two_servers_and_builds_deliver_each_revocation_once(
    pg_base: Base, tmp_path: Path
) -> None:
    home = pg_base.home
    ws = workspace(home)
    assert ws.engine.dialect.name == "postgresql"
    logs = tmp_path / "logs"
    with ws.session() as session:
        before = {a: latest_release(session, a) for a in RELEASED}
    ((mark,),) = rows(home, "SELECT coalesce(max(intent_id), 0) FROM revocation_intents")
    people = heavy_users(ws, LUMEN, 9, also=SENTIMETRICS)

    # A worker alone, killed by the crash point in its first delivery.
    crashing = start_worker(home, logs / "worker-crashing.log", crashpoint="revoke:after_commit")
    ws.ledger.record(people[0], MASTER_KEY, False)
    assert crashing.wait(timeout=SETTLE_S) == -signal.SIGKILL, (logs / "worker-crashing.log").read_text()
    assert pending(home) == 1

    servers = [serve(pg_base, home, tmp_path / f"server-{n}") for n in range(2)]
    workers = [start_worker(home, logs / f"worker-{n}.log") for n in range(2)]
    builds: list[subprocess.CompletedProcess[str]] = []
    stop = threading.Event()

    def build_loop() -> None:
        while not stop.is_set():
            builds.append(run_cli(home, "release", "build", LUMEN))

    builder = threading.Thread(target=build_loop)
    builder.start()
    try:
        # Revocations from the ledger (opt-outs) and as platform events through both servers.
        for n, person in enumerate(people[1:]):
            if n % 2 == 0:
                ws.ledger.record(person, MASTER_KEY, False)
            else:
                post = released_posts_of(ws, LUMEN, person)[0]
                event = {"id": f"procs-{n}", "type": "post_delete", "user_id": person, "post_id": post}
                answer = servers[n % 4 // 2].post_events({"events": [event]}, token=API_TOKEN)
                assert answer.status_code < 300, answer.text
        # Partners' requests against both servers: /query, and every file of one answer downloaded.
        files = downloaded = 0
        for served in servers:
            for n in range(QUERIES_PER_SERVER):
                lines = query(served, "posts")
                urls = [str(line["file"]["url"]) for line in lines if "file" in line]  # type: ignore[index]
                files += len(urls)
                if n == 0:
                    for url in urls:
                        body = requests.get(url, timeout=30)
                        assert body.status_code == 200
                        downloaded += len(body.content)
        deadline = time.monotonic() + SETTLE_S
        while pending(home):
            assert time.monotonic() < deadline, "revocations still pending"
            assert all(w.poll() is None for w in workers), "a worker died"
            time.sleep(0.2)  # poll interval while the workers deliver
        while not builds:  # at least one build ran beside the workers
            assert builder.is_alive()
            time.sleep(0.2)
    finally:
        stop.set()
        builder.join(timeout=SETTLE_S)
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=120) for w in workers]
        for served in servers:
            served.stop()  # SIGTERM: each flushes the downloads it metered
    assert codes == [0, 0], [(logs / f"worker-{n}.log").read_text() for n in range(2)]
    assert all(b.returncode == 0 for b in builds), [b.stderr for b in builds if b.returncode]

    # Every intent delivered once to every agreement that had released data.
    intents = [
        i for (i,) in rows(home, "SELECT intent_id FROM revocation_intents WHERE intent_id > ?", (mark,))
    ]
    assert len(intents) == len(people)
    assert pending(home) == 0
    deliveries = rows(
        home, "SELECT intent_id, agreement_id FROM revocation_deliveries WHERE intent_id > ?", (mark,)
    )
    assert Counter(deliveries) == Counter((i, a) for i in intents for a in RELEASED)
    for agreement in RELEASED:
        stored = rows(
            home, "SELECT forget_id, intent_id FROM forget_entries WHERE agreement_id = ?", (agreement,)
        )
        ids = [f for f, _ in stored]
        assert len(ids) == len(set(ids))
        assert {i for _, i in stored} <= set(intents)
        assert len({i for _, i in stored}) == len(people), f"{agreement}: a subject without its forget entry"
        forget = DeltaTable(str(home / "shares" / agreement / "forget")).to_pyarrow_table()
        in_delta = forget.column("forget_id").to_pylist()
        assert len(in_delta) == len(set(in_delta)), f"{agreement}: duplicated forget rows"
        assert set(in_delta) == set(ids), agreement
        assert before[agreement] is not None
        latest_commit_pinned(ws, agreement)
        allowed = oracle_now(ws, agreement)
        for table in TABLES[agreement]:
            assert as_rows(delta_rows(ws, agreement, table)) == allowed[table], f"{agreement}.{table}"

    # Metering: both servers' rows add up to the requests made.
    (total,) = [t for t in usage(ws, partner="lumen-labs") if t.agreement_id == LUMEN]
    assert total.queries == 2 * QUERIES_PER_SERVER
    assert total.files == files
    assert total.bytes == downloaded

    # The partner's change feed: no key deleted twice.
    served = serve(pg_base, home, tmp_path / "server-check")
    try:
        for table in TABLES[LUMEN]:
            feed = frame_rows(served.partner("lumen-labs").changes(LUMEN, table, 0))
            deletes = Counter(identity(c, table) for c in feed if c["_change_type"] == "delete")
            assert deletes and all(n == 1 for n in deletes.values()), f"{LUMEN}.{table}"
    finally:
        served.stop()
    ws.engine.dispose()


def test_serve_with_several_processes_answers_and_meters_every_request(pg_base: Base, tmp_path: Path) -> None:
    """`datalease serve --workers 2`: two uvicorn processes on one port, no revocation worker inside,
    every /query metered once whichever process answered."""
    home = pg_base.home
    ws = workspace(home)

    def queries() -> int:
        return sum(t.queries for t in usage(ws, partner="lumen-labs") if t.agreement_id == LUMEN)

    before = queries()
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cli_command(), "serve", "--port", str(port), "--workers", "2"],
            env=cli_env(home, {"DATALEASE_API_TOKEN": API_TOKEN}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}/delta-sharing"
    try:
        deadline = time.monotonic() + SETTLE_S
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                requests.get(f"{endpoint}/shares", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)  # poll interval until the processes listen
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(children) >= 2, children  # the N workers (uvicorn may add a resource tracker)
        bearer = pg_base.bearers["lumen-labs"]
        for _ in range(2 * QUERIES_PER_SERVER):
            answer = requests.post(
                f"{endpoint}/shares/{LUMEN}/schemas/platform/tables/posts/query",
                json={},
                headers={"Authorization": f"Bearer {bearer}"},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert "with 2 processes" in log.read_text()
    assert queries() - before == 2 * QUERIES_PER_SERVER
    ws.engine.dispose()
