"""Fixtures of the sharing tests: the world (built once per worker), a served copy of it with one
profile per partner, private servers for tests that change what is served, and a client that never
retries (the official client retries 5xx ten times with backoff: a broken server would show up only
after minutes)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
for helpers in (HERE.parent / "releases", HERE.parent / "cli"):  # release_world, cli_harness
    if str(helpers) not in sys.path:
        sys.path.insert(0, str(helpers))

from delta_sharing.rest_client import DataSharingRestClient  # noqa: E402
from sharing_world import PARTNERS, RUNNING, Served, World, build_sharing_world, serve_copy  # noqa: E402


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The finished world; never modify it (serve a copy)."""
    return build_sharing_world(tmp_path_factory.mktemp("sharing-world"))


@pytest.fixture(scope="session")
def served(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server per worker on a copy of the world. Tests may add tokens; metering figures are
    checked on private servers, since every test here adds usage rows."""
    running = serve_copy(world, world.home, tmp_path_factory.mktemp("served"))
    yield running
    running.server.stop()


@pytest.fixture
def private_server(world: World, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """`private_server(source_home, partners=...)`: a server of its own on a copy of `source_home`,
    with a profile for each of `partners` (default: all three)."""
    started: list[Served] = []

    def start(source: Path, partners: tuple[str, ...] = PARTNERS) -> Served:
        running = serve_copy(world, source, tmp_path / f"private-{len(started)}", partners)
        started.append(running)
        return running

    yield start
    for running in started:
        running.server.stop()


@pytest.fixture(autouse=True)
def client_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DataSharingRestClient the official functions build gets num_retries=0."""
    monkeypatch.setattr(DataSharingRestClient.__init__, "__defaults__", (0,))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    """A failing test's report carries the tail of every running server's output."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in RUNNING:
            report.sections.append((f"datalease serve :{server.port} (tail)", server.log()[-6000:]))
