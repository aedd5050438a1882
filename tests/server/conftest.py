"""Fixtures of the HTTP-surface tests: a small prepared home (built once per worker), private copies
of it, the app in-process (FastAPI TestClient) and real `datalease serve` processes on loopback."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

HERE = Path(__file__).resolve().parent
for helpers in (HERE.parent / "releases", HERE.parent / "cli", HERE.parent / "sharing"):
    if str(helpers) not in sys.path:
        sys.path.insert(0, str(helpers))

from sharing_world import Server, start_server  # noqa: E402
from small_home import SmallHome, build_small_home, settings  # noqa: E402

from datalease.app import create_app  # noqa: E402


@pytest.fixture(scope="session")
def small_home(tmp_path_factory: pytest.TempPathFactory) -> SmallHome:
    """The prepared home; never modify it (copy it)."""
    return build_small_home(tmp_path_factory.mktemp("small-home") / "home")


@pytest.fixture
def home(small_home: SmallHome, tmp_path: Path) -> SmallHome:
    """A private copy of the small home."""
    target = tmp_path / "home"
    shutil.copytree(small_home.home, target)
    facts = json.loads((target / "small-home.json").read_text())
    token = (target / "keys" / "api.token").read_text().strip()
    return SmallHome(target, facts["bearer"], token, facts["user_id"])


AppClient = Callable[..., TestClient]


@pytest.fixture
def app_client(home: SmallHome) -> Iterator[AppClient]:
    """`app_client(**settings)`: the app on the private home, in-process, worker off; server errors
    come back as 500 answers (not as exceptions) so that tests see what a client sees."""
    clients: list[TestClient] = []

    def make(**extra: object) -> TestClient:
        app = create_app(settings(home.home, revocation_worker=False, **extra))
        client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(app_client: AppClient, home: SmallHome) -> TestClient:
    """The app on the private home, in-process, calling as the platform (its API token)."""
    made = app_client()
    made.headers.update(home.platform_headers)
    return made


@pytest.fixture
def real_server(home: SmallHome, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """`real_server(**env)`: `datalease serve` on the private home (worker off), env adds settings."""
    started: list[Server] = []

    def start(**env: str) -> Server:
        server = start_server(
            home.home, tmp_path / f"logs-{len(started)}", env={"DATALEASE_REVOCATION_WORKER": "false", **env}
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
