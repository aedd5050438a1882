"""Fixtures of the billing tests: the release tests' generated world (tests/releases/release_world.py),
built once, with a June 2026 history of releases, an opt-out and metered queries on top (`history`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "releases"))

from billing_world import History, make_history
from release_world import build_world, copy_home


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    root = tmp_path_factory.mktemp("billing")
    build_world(root / "base")
    ws = copy_home(root / "base", root / "home")
    yield make_history(ws, root / "home")
    ws.engine.dispose()
