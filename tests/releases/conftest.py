"""Fixtures of the release tests; the world they build is described in release_world.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from release_world import build_world, copy_home

from datalease.workspace import Workspace
from home_database import drop_home


@pytest.fixture(scope="session")
def base_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The curated world, built once per worker. Never modify it: copy it with `copy_home`."""
    home = tmp_path_factory.mktemp("world") / "home"
    build_world(home)
    return home


@pytest.fixture
def world(base_home: Path, tmp_path: Path) -> Iterator[Workspace]:
    ws = copy_home(base_home, tmp_path / "home")
    yield ws
    ws.engine.dispose()
    drop_home(ws.settings.resolved_home)
