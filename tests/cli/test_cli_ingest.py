"""`datalease ingest`: one atomic commit of the good rows, a rejects file naming the bad ones."""

from __future__ import annotations

import json
from pathlib import Path

from cli_harness import Demo, expect, lake_version, run, single_error, tree

HEADER = "post_id,author_id,text,lang,created_at,visibility,deleted_at\n"


def posts_csv(path: Path, author: int) -> Path:
    """Three posts; the second (line 3 of the file) has a visibility that does not exist."""
    path.write_text(
        HEADER
        + f"900001,{author},hello from the cli tests,en,2025-02-01T10:00:00Z,public,\n"
        + f"900002,{author},this one is secret,en,2025-02-01T11:00:00Z,secret,\n"
        + f"900003,{author},and a third,en,2025-02-01T12:00:00Z,public,\n",
        encoding="utf-8",
    )
    return path


def test_direct_messages_are_never_ingested(home: Path, tmp_path: Path) -> None:
    source = posts_csv(tmp_path / "dms.csv", 1)
    lake_before = tree(home / "lake")
    result = run("ingest", "direct_messages", source, home=home)
    assert single_error(result) == (
        "table 'direct_messages': direct messages are private conversations; they are never a category "
        "and can never be ingested"
    )
    assert tree(home / "lake") == lake_before


def test_bad_row_is_rejected_with_its_line_number(demo: Demo, home: Path, tmp_path: Path) -> None:
    source = posts_csv(tmp_path / "posts.csv", demo.us_user)
    version = lake_version(home, "posts")
    assert version is not None
    result = expect(
        run("ingest", "posts", "posts.csv", "--rejects", "rejects.jsonl", home=home, cwd=tmp_path), 0
    )
    assert result.out_lines == [
        "posts: 2 accepted, 1 rejected",
        "rejected rows (row number and reason): rejects.jsonl",
    ]
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert rejects == [
        {"row": 3, "field": "visibility", "reason": "expected one of public, followers", "value": "'secret'"}
    ]
    assert source.exists()
    assert lake_version(home, "posts") == version + 1

    # the two good rows are in the lake, the bad one is not
    accepted = expect(
        run(
            "decide",
            "--user",
            str(demo.us_user),
            "--category",
            "posts",
            "--purpose",
            "train_ai_system",
            "--post",
            "900003",
            "--json",
            home=home,
        ),
        0,
    )
    assert accepted.json()["allowed"] is True
    missing = run(
        "decide",
        "--user",
        str(demo.us_user),
        "--category",
        "posts",
        "--purpose",
        "train_ai_system",
        "--post",
        "900002",
        home=home,
    )
    assert single_error(missing) == "--post 900002: no such post in the platform lake"


def test_strict_refuses_the_whole_batch(demo: Demo, home: Path, tmp_path: Path) -> None:
    posts_csv(tmp_path / "posts.csv", demo.us_user)
    version = lake_version(home, "posts")
    lake_before = tree(home / "lake" / "source")
    result = run(
        "ingest", "posts", "posts.csv", "--strict", "--rejects", "rejects.jsonl", home=home, cwd=tmp_path
    )
    assert single_error(result) == (
        "posts.csv: 1 of 3 rows are invalid, so nothing was written (strict mode); "
        "the rows and their problems are listed in rejects.jsonl"
    )
    assert lake_version(home, "posts") == version
    assert tree(home / "lake" / "source") == lake_before
    assert [json.loads(line)["row"] for line in (tmp_path / "rejects.jsonl").read_text().splitlines()] == [3]
