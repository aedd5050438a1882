"""Curation: PII placeholders, sentiment labels, incremental runs over a real lake, the pool."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datalease.platform.curate import Scrubber, curate, plan_curation, sentiment_label
from datalease.platform.ingest import ingest_file
from datalease.platform.lake import Lake
from datalease.platform.schemas import POSTS_CURATED

WriteFile = Callable[[str, str | bytes], Path]


@pytest.fixture(scope="module")
def scrubber() -> Scrubber:
    return Scrubber()


def jsonl(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def post(post_id: int, text: str, **fields: Any) -> dict[str, Any]:
    return {
        "post_id": post_id,
        "author_id": 1,
        "text": text,
        "created_at": "2024-05-01T10:00:00Z",
        "visibility": "public",
        **fields,
    }


# --- scrubbing -----------------------------------------------------------------------------------

PLACEHOLDER_CASES = [
    ("mail me at jane.doe@example.com today", "mail me at <EMAIL> today", ["EMAIL"]),
    ("call me on +1 (415) 555-0134 tonight", "call me on <PHONE> tonight", ["PHONE"]),
    ("ring +44 20 7946 0123", "ring <PHONE>", ["PHONE"]),
    ("read https://example.org/a/b?c=1 now", "read <URL> now", ["URL"]),
    ("my server is at 203.0.113.7", "my server is at <IP_ADDRESS>", ["IP_ADDRESS"]),
    ("card 4111 1111 1111 1111 lol", "card <CREDIT_CARD> lol", ["CREDIT_CARD"]),
    ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN <IBAN> please", ["IBAN"]),
    ("my ssn is 536-22-8726", "my ssn is <US_SSN>", ["US_SSN"]),
    ("thanks @bob_smith and @Ann42!", "thanks @user and @user!", ["MENTION"]),
    ("@user already anonymous", "@user already anonymous", []),
    ("a@b is not an address, x@y.com is", "a@b is not an address, <EMAIL> is", ["EMAIL"]),
    ("mail ann@example.com or see example.com", "mail <EMAIL> or see <URL>", ["EMAIL", "URL"]),
    ("we met on 2024-05-01, room p2", "we met on 2024-05-01, room p2", []),
    ("nothing personal here", "nothing personal here", []),
]


@pytest.mark.parametrize(("text", "scrubbed", "types"), PLACEHOLDER_CASES)
def test_scrub_replaces_pii_with_typed_placeholders(
    scrubber: Scrubber, text: str, scrubbed: str, types: list[str]
) -> None:
    assert scrubber.scrub(text) == (scrubbed, types)


@given(st.emails(), st.sampled_from(["write to {} please", "{}", "({}).", "mail:{}"]))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_scrubbed_text_never_contains_the_email(scrubber: Scrubber, email: str, template: str) -> None:
    scrubbed, types = scrubber.scrub(template.format(email))
    assert email not in scrubbed
    assert "EMAIL" in types


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I love this, it is wonderful and amazing!", "positive"),
        ("This is terrible, I hate it so much.", "negative"),
        ("The meeting is on Tuesday.", "neutral"),
    ],
)
def test_sentiment_labels(scrubber: Scrubber, text: str, label: str) -> None:
    compound, got = scrubber.sentiment(text)
    assert got == label
    assert -1.0 <= compound <= 1.0


def test_sentiment_thresholds_are_vaders() -> None:
    assert [sentiment_label(x) for x in (0.05, 0.0499, 0.0, -0.0499, -0.05)] == [
        "positive",
        "neutral",
        "neutral",
        "neutral",
        "negative",
    ]


def test_an_uninstalled_spacy_model_is_refused_not_downloaded() -> None:
    with pytest.raises(ValueError, match="'xx_no_such_model' is not installed: install it with pip first"):
        Scrubber(spacy_model="xx_no_such_model")


# --- incremental curation over a lake ------------------------------------------------------------


def curated_rows(lake: Lake) -> dict[int, dict[str, Any]]:
    return {row["post_id"]: row for row in lake.read("posts_curated").to_pylist()}


def test_first_run_curates_every_live_post(lake_with_posts: Lake) -> None:
    result = curate(lake_with_posts, workers=1)
    assert (result.curated, result.unchanged, result.removed) == (3, 0, 0)
    rows = curated_rows(lake_with_posts)
    assert lake_with_posts.read("posts_curated").schema == POSTS_CURATED
    assert rows[10]["text_scrubbed"] == "I love this, mail me at <EMAIL>"
    assert rows[10]["pii_types"] == ["EMAIL"]
    assert rows[10]["sentiment_label"] == "positive"
    assert rows[11]["sentiment_label"] == "negative"
    assert rows[12]["sentiment_label"] == "neutral"
    assert rows[12]["text_sha256"] == hashlib.sha256(b"The meeting starts at noon").hexdigest()


def test_second_run_curates_nothing(lake_with_posts: Lake) -> None:
    curate(lake_with_posts, workers=1)
    version = lake_with_posts.version("posts_curated")
    result = curate(lake_with_posts, workers=1)
    assert (result.curated, result.unchanged, result.removed) == (0, 3, 0)
    assert lake_with_posts.version("posts_curated") == version  # no empty commit


def test_an_edited_post_is_curated_again(lake_with_posts: Lake, write_file: WriteFile) -> None:
    curate(lake_with_posts, workers=1)
    before = curated_rows(lake_with_posts)
    ingest_file(
        lake_with_posts,
        "posts",
        write_file("edit.jsonl", jsonl(post(12, "Call me at 555-123-4567, great news"))),
    )
    assert plan_curation(lake_with_posts).todo.column("post_id").to_pylist() == [12]
    result = curate(lake_with_posts, workers=1)
    assert (result.curated, result.unchanged, result.removed) == (1, 2, 0)
    after = curated_rows(lake_with_posts)
    assert after[12]["text_scrubbed"] == "Call me at <PHONE>, great news"
    assert after[10] == before[10]


def test_a_deleted_post_keeps_its_curated_row(lake_with_posts: Lake, write_file: WriteFile) -> None:
    """A post deleted at T2 was live before T2 (and a policy may release deleted content): the policy
    decides what a deletion withholds, so curation keeps the row (issue 11, item 0d)."""
    curate(lake_with_posts, workers=1)
    deleted = post(10, "I love this, mail me at ann@example.com", deleted_at="2024-06-01T00:00:00Z")
    ingest_file(lake_with_posts, "posts", write_file("delete.jsonl", jsonl(deleted)))
    result = curate(lake_with_posts, workers=1)
    assert (result.curated, result.unchanged, result.removed) == (0, 3, 0)
    assert sorted(curated_rows(lake_with_posts)) == [10, 11, 12]


def test_a_post_deleted_before_its_first_curation_is_curated(
    lake_with_users: Lake, write_file: WriteFile
) -> None:
    rows = jsonl(post(1, "kept"), post(2, "gone", deleted_at="2024-05-02T00:00:00Z"))
    ingest_file(lake_with_users, "posts", write_file("posts.jsonl", rows))
    assert curate(lake_with_users, workers=1).curated == 2
    assert sorted(curated_rows(lake_with_users)) == [1, 2]


def test_a_post_gone_from_the_lake_loses_its_curated_row(lake_with_posts: Lake) -> None:
    curate(lake_with_posts, workers=1)
    lake_with_posts.delete_keys("posts", pa.table({"post_id": pa.array([10], pa.int64())}))
    result = curate(lake_with_posts, workers=1)
    assert (result.curated, result.unchanged, result.removed) == (0, 2, 1)
    assert sorted(curated_rows(lake_with_posts)) == [11, 12]


def test_a_lake_without_posts_gets_an_empty_curated_table(lake: Lake) -> None:
    result = curate(lake)
    assert (result.curated, result.unchanged, result.removed) == (0, 0, 0)
    assert lake.exists("posts_curated")


def test_the_process_pool_gives_the_same_rows(
    lake_with_users: Lake, write_file: WriteFile, tmp_path: Path
) -> None:
    texts = [
        f"post {i}: mail u{i}@example.com, I {'love' if i % 2 else 'hate'} it @friend{i}" for i in range(24)
    ]
    ingest_file(
        lake_with_users, "posts", write_file("posts.jsonl", jsonl(*(post(i, t) for i, t in enumerate(texts))))
    )
    progress: list[int] = []
    result = curate(lake_with_users, workers=2, batch_size=5, on_progress=progress.append)
    assert (result.curated, sum(progress), len(progress)) == (24, 24, 5)
    rows = curated_rows(lake_with_users)
    local = Scrubber()
    for i, text in enumerate(texts):
        expected = local.curate(text)
        assert (
            rows[i]["text_scrubbed"]
            == expected.text_scrubbed
            == f"post {i}: mail <EMAIL>, I {'love' if i % 2 else 'hate'} it @user"
        )
        assert rows[i]["pii_types"] == expected.pii_types == ["EMAIL", "MENTION"]
        assert rows[i]["sentiment_compound"] == expected.sentiment_compound
