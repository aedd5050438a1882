"""The adapter: every call the oracle tests make to datalease, through the in-process entry points the
CLI uses (src/datalease/cli.py). If the lead renames them, this is the one file to change.

`System` feeds a world's steps to a workspace of its own and serves it with `create_app` under uvicorn
in a background thread (the revocation worker off: the world runs its batches itself).
`pinned_rows` reads what the latest release pins straight from Delta, only to tell, when a partner
sees the wrong rows, whether the table or the serving is wrong.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq
import uvicorn
from deltalake import DeltaTable
from inputs import (
    AddPartner,
    ApplyPolicy,
    Build,
    CreateAgreement,
    Curate,
    Ingest,
    KilledBuild,
    PlatformEvent,
    RecordConsent,
    RevocationBatch,
    Step,
    SubmitEvents,
)

from datalease.app import create_app
from datalease.config import Settings
from datalease.licensing.registry import create_agreement
from datalease.platform.curate import curate
from datalease.platform.ingest import ingest_file
from datalease.platform.schemas import SOURCE_SCHEMAS
from datalease.policy.load import load_policy
from datalease.revocation.worker import process_pending
from datalease.services.events import submit_events
from datalease.services.releases import build_release
from datalease.sharing.profiles import issue_profile
from datalease.store.licensing import add_partner
from datalease.store.policy_revisions import save_policy_revision
from datalease.store.releases import latest_release
from datalease.workspace import Workspace

SERVER_START_SECONDS: Final = 30.0


def settings(home: Path, master_key: bytes) -> Settings:
    """A home of its own, whatever the environment says: SQLite under it, the world's master key
    (DATALEASE_MASTER_KEY), one worker, no revocation loop in the server."""
    return Settings(
        home=home,
        database_url=None,
        master_key=master_key.hex(),
        workers=1,
        revocation_worker=False,
        host="127.0.0.1",
    )


def make_template(home: Path) -> Path:
    """An initialised, migrated empty home that worlds copy (migrating a store takes a second)."""
    ws = Workspace(settings(home, b"\0" * 32))
    ws.init()
    ws.engine.dispose()
    return home


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class System:
    def __init__(self, home: Path, master_key: bytes, template: Path | None = None) -> None:
        if template is not None:
            shutil.copytree(template, home)
        self.home = home
        self.master_key = master_key
        self.port = 0  # chosen when the server starts
        self.ws = Workspace(settings(home, master_key))
        self.ws.init()
        self.scratch = home.parent / f"{home.name}-files"
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- steps ---------------------------------------------------------------------------------

    def apply(self, step: Step) -> None:
        ws = self.ws
        if isinstance(step, ApplyPolicy):
            policy = load_policy(step.text, "world-policy.yaml")
            with ws.write_session() as session, session.begin():
                digest = hashlib.sha256(step.text.encode()).hexdigest()
                save_policy_revision(session, policy.name, step.text, digest, "oracle")
        elif isinstance(step, AddPartner):
            with ws.write_session() as session, session.begin():
                add_partner(session, step.name)
        elif isinstance(step, CreateAgreement):
            policy = ws.require_policy()
            with ws.write_session() as session, session.begin():
                create_agreement(session, step.text, "world-agreement.yaml", policy=policy)
        elif isinstance(step, Ingest):
            self._ingest(step)
        elif isinstance(step, Curate):
            curate(ws.lake, workers=1)
        elif isinstance(step, RecordConsent):
            for change in step.changes:
                ws.ledger.record(change.user_id, change.key, change.value, at=change.at)
        elif isinstance(step, SubmitEvents):
            submit_events(ws, [_event_json(e) for e in step.events])
        elif isinstance(step, Build):
            build_release(ws, step.agreement_id, at=step.at)
        elif isinstance(step, KilledBuild):
            self._killed_build(step)
        elif isinstance(step, RevocationBatch):
            process_pending(ws, now=step.now)
        else:
            raise TypeError(f"unknown step {step!r}")

    def _ingest(self, step: Ingest) -> None:
        rows = [asdict(r) for r in step.rows]
        path = self.scratch / f"{step.table}-{len(list(self.scratch.iterdir()))}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=SOURCE_SCHEMAS[step.table]), path)
        result = ingest_file(self.ws.lake, step.table, path)
        if result.rejected:
            rejects = result.rejects_path.read_text() if result.rejects_path else ""
            raise AssertionError(f"ingest {step.table}: {result.rejected} rows rejected:\n{rejects}")

    def _killed_build(self, step: KilledBuild) -> None:
        """A real `datalease release build` process, killed with SIGKILL at the crash point."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATALEASE_")}
        env |= {
            "DATALEASE_HOME": str(self.home),
            "DATALEASE_MASTER_KEY": self.master_key.hex(),
            "DATALEASE_WORKERS": "1",
            "DATALEASE_CRASHPOINT": step.crashpoint,
        }
        command = [str(Path(sys.executable).with_name("datalease")), "release", "build", step.agreement_id]
        done = subprocess.run(
            [*command, "--at", step.at.isoformat()],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != -signal.SIGKILL:
            raise AssertionError(
                f"release build was not killed at {step.crashpoint} (exit {done.returncode}):\n{done.stderr}"
            )

    # --- reading what the ledger pins (diagnosis only) -----------------------------------------

    def pinned_rows(self, agreement_id: str, category: str) -> list[dict[str, Any]] | None:
        with self.ws.session() as session:
            release = latest_release(session, agreement_id)
        pinned = release.table(category) if release else None
        if pinned is None:
            return None
        path = self.home / "shares" / agreement_id / category
        table = DeltaTable(str(path), version=pinned.table_version).to_pyarrow_table()
        rows: list[dict[str, Any]] = table.drop_columns(
            [c for c in table.column_names if c == "bucket"]
        ).to_pylist()
        return rows

    # --- serving -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_server(self, attempts: int = 3) -> None:
        """The app on a free loopback port (another is tried if that one was taken meanwhile)."""
        for _ in range(attempts):
            self.port = free_port()
            app = create_app(self.ws.settings.model_copy(update={"port": self.port}))  # URLs name it
            config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(
                target=self._server.run, name=f"datalease-{self.port}", daemon=True
            )
            self._thread.start()
            deadline = time.monotonic() + SERVER_START_SECONDS
            while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.005)
            if self._server.started:
                return
            self._server.should_exit = True
            self._thread.join(timeout=30)
        raise AssertionError(f"the server did not start on a free port in {attempts} attempts")

    def profile(self, partner: str, path: Path) -> Path:
        return issue_profile(self.ws, partner, path, expires=None, endpoint_base=self.base_url).path

    def close(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
        self.ws.engine.dispose()


def failed_in_batch(exc: BaseException) -> bool:
    """Whether an exception of `build_release` came from the revocation batch it runs first."""
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_name == process_pending.__name__:
            return True
        trace = trace.tb_next
    return False


def _event_json(event: PlatformEvent) -> dict[str, Any]:
    raw: dict[str, Any] = {"id": event.event_id, "type": event.type, "user_id": event.user_id}
    if event.post_id is not None:
        raw["post_id"] = event.post_id
    if event.country is not None:
        raw["country"] = event.country
    raw["at"] = event.at.isoformat()
    return raw
