"""Fixtures of the revocation tests: the world (built once per pytest-xdist worker, see
revocation_world.py), private copies of it, servers of their own, and an official client that never
retries (it retries 5xx ten times with backoff: a broken server would show up only after minutes)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for helpers in (HERE.parent / "releases", HERE.parent / "cli", HERE.parent / "sharing"):
    if str(helpers) not in sys.path:
        sys.path.insert(0, str(helpers))

from delta_sharing.rest_client import DataSharingRestClient  # noqa: E402
from revocation_world import Base, Served, build_base, copy_base, serve  # noqa: E402

from datalease.workspace import Workspace  # noqa: E402
from home_database import drop_home  # noqa: E402


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """The released world; never modify it (copy it)."""
    return build_base(tmp_path_factory.mktemp("revocation-world"))


@pytest.fixture
def home(base: Base, tmp_path: Path) -> Iterator[Workspace]:
    """A private copy of the world, as a workspace in this process."""
    ws = copy_base(base, tmp_path / "home")
    yield ws
    ws.engine.dispose()
    drop_home(ws.settings.resolved_home)


@pytest.fixture
def server(base: Base, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """`server(home_path, worker=False)`: a `datalease serve` of the test's own on that home."""
    started: list[Served] = []

    def start(home_path: Path, *, worker: bool = False) -> Served:
        served = serve(base, home_path, tmp_path / f"server-{len(started)}", worker=worker)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture(autouse=True)
def client_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DataSharingRestClient the official functions build gets num_retries=0."""
    monkeypatch.setattr(DataSharingRestClient.__init__, "__defaults__", (0,))
