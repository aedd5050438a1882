"""Fixtures of the licensing tests. The store tests use the shared `engine` fixture of
tests/conftest.py, so they run on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from datalease.policy.load import load_policy
from datalease.policy.model import Policy

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "datalease" / "examples"


@pytest.fixture(scope="session")
def policy() -> Policy:
    path = EXAMPLES / "x-2024.yaml"
    return load_policy(path.read_text(encoding="utf-8"), str(path))


@pytest.fixture(scope="session")
def agreements_dir() -> Path:
    return EXAMPLES / "agreements"
