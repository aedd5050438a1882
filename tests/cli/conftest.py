"""One small demo platform per test session (per xdist worker); tests that write get a copy of it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from cli_harness import Demo, copy_home, expect, rows, run

DEMO_USERS = 120


def _adult(birth: str | None, today: date) -> bool:
    if birth is None:
        return False
    born = date.fromisoformat(birth)
    return (today.year - born.year) > 19  # a year of margin either side of 18


def _pick(users: list[dict[str, Any]], region: str, exclude: set[int]) -> list[int]:
    today = datetime.now(UTC).date()
    return [
        u["user_id"]
        for u in users
        if u["region"] == region
        and u["account_state"] == "active"
        and _adult(u["birth_date"], today)
        and u["user_id"] not in exclude
    ]


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    home = tmp_path_factory.mktemp("demo") / "home"
    built = expect(run("demo", "--users", str(DEMO_USERS), "--no-serve", home=home), 0)
    assert "release 2 of sentimetrics-us-2025" in built.out, built.describe()
    users = expect(run("users", "list", "--limit", "0", "--json", home=home), 0).json()
    releases = expect(run("release", "list", "--json", home=home), 0).json()
    with_settings = {user_id for (user_id,) in rows(home, "SELECT DISTINCT user_id FROM consent_events")}

    posts = pq.read_table(home / "demo-input" / "posts.parquet").to_pylist()
    since = datetime(2020, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    live: dict[int, int] = {}
    for post in posts:
        if (
            post["visibility"] == "public"
            and post["deleted_at"] is None
            and since <= post["created_at"] <= now
        ):
            live[post["author_id"]] = live.get(post["author_id"], 0) + 1
    us_candidates = [u for u in _pick(users, "US", with_settings) if live.get(u, 0) > 0]
    eea_candidates = _pick(users, "EEA", with_settings)
    assert us_candidates and eea_candidates, "the demo has no plain US or EEA adult to test with"
    us_user = max(us_candidates, key=lambda u: live[u])
    return Demo(home, users, releases, us_user, live[us_user], eea_candidates[0])


@pytest.fixture
def home(demo: Demo, tmp_path: Path) -> Path:
    """A private copy of the demo home, for tests that write."""
    return copy_home(demo.home, tmp_path / "home")
