"""Shared fixtures for the platform tests: a lake in tmp_path and small input files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from datalease.platform.ingest import ingest_file
from datalease.platform.lake import Lake

USERS_HEADER = "user_id,handle,country,birth_date,account_state,created_at"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """Write text or bytes to tmp_path/name and return the path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / "input" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


def jsonl(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


@pytest.fixture
def lake_with_users(lake: Lake, write_file: Callable[[str, str | bytes], Path]) -> Lake:
    """A lake holding users 1, 2 and 3."""
    users = "\n".join(
        [
            USERS_HEADER,
            "1,alice,DE,1990-01-02,active,2024-01-01T10:00:00Z",
            "2,bob,US,,protected,2024-02-01",
            "3,carol,FR,2010-05-05,active,2024-03-01 08:00:00",
        ]
    )
    result = ingest_file(lake, "users", write_file("seed-users.csv", users + "\n"))
    assert result.rejected == 0
    return lake


@pytest.fixture
def lake_with_posts(lake_with_users: Lake, write_file: Callable[[str, str | bytes], Path]) -> Lake:
    """Users 1–3 and posts 10 (by 1), 11 (by 2), 12 (by 3)."""
    posts = jsonl(
        {"post_id": 10, "author_id": 1, "text": "I love this, mail me at ann@example.com", "created_at": "2024-05-01T10:00:00Z", "visibility": "public"},
        {"post_id": 11, "author_id": 2, "text": "This is terrible and I hate it", "created_at": "2024-05-02T10:00:00Z", "visibility": "followers"},
        {"post_id": 12, "author_id": 3, "text": "The meeting starts at noon", "created_at": "2024-05-03T10:00:00Z", "visibility": "public", "lang": "en"},
    )  # fmt: skip
    result = ingest_file(lake_with_users, "posts", write_file("seed-posts.jsonl", posts))
    assert result.rejected == 0
    return lake_with_users
