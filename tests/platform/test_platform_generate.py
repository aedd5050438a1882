"""The demo generator: deterministic files in the exact schemas, plausible shares, ingestible as is."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from datalease.platform.generate import POSTS_PER_USER, generate_platform
from datalease.platform.ingest import ingest_file
from datalease.platform.lake import Lake
from datalease.platform.schemas import ACCOUNT_STATES, PRIMARY_KEYS, SOURCE_SCHEMAS

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TWEETS = Path("/work/shared/data/tweeteval-sentiment/test_text.txt")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    paths = generate_platform(tmp_path_factory.mktemp("gen"), users=2000, now=NOW)
    return {name: pq.read_table(path) for name, path in paths.items()}


def share(mask: pa.ChunkedArray | pa.Array, total: int) -> float:
    return int(pc.sum(mask).as_py() or 0) / total


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first = generate_platform(tmp_path / "a", users=300, seed=3, now=NOW)
    second = generate_platform(tmp_path / "b", users=300, seed=3, now=NOW)
    other = generate_platform(tmp_path / "c", users=300, seed=4, now=NOW)
    assert sorted(first) == ["bookmarks", "likes", "posts", "reposts", "users"]
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes()
        assert first[name].read_bytes() != other[name].read_bytes()


def test_files_have_the_exact_schemas(platform: dict[str, pa.Table]) -> None:
    for name, table in platform.items():
        assert table.schema.remove_metadata() == SOURCE_SCHEMAS[name]


def test_user_shares(platform: dict[str, pa.Table]) -> None:
    users = platform["users"]
    total = users.num_rows
    adult_cutoff = date(NOW.year - 18, NOW.month, NOW.day)
    minors = share(pc.greater(users["birth_date"], pa.scalar(adult_cutoff)), total)
    assert 0.015 <= minors <= 0.05
    assert 0.002 <= users["birth_date"].null_count / total <= 0.03
    states = {
        row["values"]: row["counts"] / total for row in pc.value_counts(users["account_state"]).to_pylist()
    }
    assert set(states) == set(ACCOUNT_STATES)
    assert 0.03 <= states["protected"] <= 0.07
    for rare in ("suspended", "deactivated", "deleted"):
        assert 0.002 <= states[rare] <= 0.025
    assert len(set(users["country"].to_pylist())) >= 20
    created = users["created_at"]
    assert pc.min(created).as_py() >= datetime(2022, 1, 1, tzinfo=UTC)
    assert pc.max(created).as_py() <= NOW


def test_posts_and_engagement_shapes(platform: dict[str, pa.Table]) -> None:
    posts = platform["posts"]
    assert posts.num_rows == 2000 * POSTS_PER_USER
    assert 0.01 <= 1 - posts["deleted_at"].null_count / posts.num_rows <= 0.03
    assert 0.03 <= share(pc.equal(posts["visibility"], "followers"), posts.num_rows) <= 0.15
    per_author = pc.value_counts(posts["author_id"]).field("counts").to_pylist()
    assert max(per_author) > 20 * (posts.num_rows / len(per_author))  # a few prolific authors
    assert sorted(per_author).count(1) > 50  # many with one post
    likes = platform["likes"]
    assert 0 < likes["deleted_at"].null_count < likes.num_rows  # a few unlikes
    for name in ("likes", "reposts", "bookmarks"):
        table = platform[name]
        keys = list(PRIMARY_KEYS[name])
        assert table.group_by(keys).aggregate([]).num_rows == table.num_rows
        assert pc.all(pc.is_in(table["post_id"], posts["post_id"])).as_py()


def test_builtin_texts_carry_some_pii(platform: dict[str, pa.Table]) -> None:
    texts = platform["posts"]["text"]
    total = len(texts)
    assert len(set(texts.to_pylist())) > total // 4
    with_pii = share(pc.match_substring_regex(texts, r"@|https://|\(415\)|\+44|203\.0\.113|card "), total)
    assert 0.07 <= with_pii <= 0.13


@pytest.mark.skipif(not TWEETS.exists(), reason="the shared tweet file is not available")
def test_posts_file_lines_are_cycled_in_order(tmp_path: Path) -> None:
    paths = generate_platform(tmp_path, users=2000, now=NOW, posts_file=TWEETS)
    texts = pq.read_table(paths["posts"])["text"].to_pylist()
    lines = [line.strip() for line in TWEETS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert texts[: len(lines)] == lines
    assert texts[len(lines)] == lines[0]


def test_generated_platform_ingests_without_rejects(tmp_path: Path) -> None:
    paths = generate_platform(tmp_path / "in", users=200, now=NOW)
    lake = Lake(tmp_path / "lake")
    for name in ("users", "posts", "likes", "reposts", "bookmarks"):
        result = ingest_file(lake, name, paths[name])
        assert result.rejected == 0, name
        assert result.accepted == pq.read_metadata(paths[name]).num_rows
