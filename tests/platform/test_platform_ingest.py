"""Ingest into the source lake: parsing, every kind of bad row, file-level errors, atomicity."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalease.platform.ingest import IngestError, ingest_file
from datalease.platform.lake import Lake
from datalease.platform.schemas import MAX_HANDLE_CHARS, MAX_TEXT_CHARS, POSTS, USERS

WriteFile = Callable[[str, str | bytes], Path]

USERS_HEADER = "user_id,handle,country,birth_date,account_state,created_at"
POSTS_HEADER = "post_id,author_id,text,lang,created_at,visibility,deleted_at"
GOOD_USER = "1,alice,DE,1990-01-02,active,2024-01-01T10:00:00Z"


def jsonl(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def read_rejects(path: Path | None) -> list[dict[str, Any]]:
    assert path is not None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def post(**fields: Any) -> dict[str, Any]:
    row = {
        "post_id": 20,
        "author_id": 1,
        "text": "hello",
        "created_at": "2024-05-01T10:00:00Z",
        "visibility": "public",
    }
    return {**row, **fields}


# --- accepted rows -------------------------------------------------------------------------------


def test_csv_rows_are_parsed_into_the_schema(lake: Lake, write_file: WriteFile) -> None:
    csv_text = "\n".join(
        [
            USERS_HEADER,
            "1,alice,de,1990-01-02,active,2024-01-01T10:00:00Z",
            "2,bob,US,,protected,2024-01-01 12:30",
            "3,carol,FR,,active,2024-01-01T12:00:00+02:00",
            "4,dave,GB,,active,1704067200",
        ]
    )
    result = ingest_file(lake, "users", write_file("users.csv", csv_text + "\n"))
    assert (result.accepted, result.rejected, result.rejects_path, result.lake_version) == (4, 0, None, 0)
    users = {row["user_id"]: row for row in lake.read("users").to_pylist()}
    assert users[1]["country"] == "DE"  # normalised to upper case
    assert users[1]["birth_date"] == date(1990, 1, 2)
    assert users[2]["birth_date"] is None
    assert users[2]["created_at"] == datetime(2024, 1, 1, 12, 30, tzinfo=UTC)  # naive means UTC
    assert users[3]["created_at"] == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert users[4]["created_at"] == datetime(2024, 1, 1, tzinfo=UTC)  # epoch seconds
    assert lake.read("users").schema == USERS


def test_parquet_with_typed_columns(lake_with_users: Lake, tmp_path: Path) -> None:
    table = pa.table(
        {
            "post_id": pa.array([1, 2], pa.int32()),
            "author_id": pa.array([1, 2], pa.int64()),
            "text": ["one", "two"],
            "created_at": pa.array([datetime(2024, 5, 1, 9), datetime(2024, 5, 2, 9)], pa.timestamp("ms")),
            "visibility": pa.array(["public", "followers"]).dictionary_encode(),
        }
    )
    path = tmp_path / "posts.parquet"
    pq.write_table(table, path)
    result = ingest_file(lake_with_users, "posts", path)
    assert (result.accepted, result.rejected) == (2, 0)
    posts = lake_with_users.read("posts")
    assert posts.schema == POSTS
    assert posts.column("created_at").to_pylist()[0] == datetime(2024, 5, 1, 9, tzinfo=UTC)
    assert posts.column("lang").null_count == 2


def test_reingest_updates_rows_by_primary_key(lake_with_users: Lake, write_file: WriteFile) -> None:
    changed = "\n".join([USERS_HEADER, "2,bobby,US,,suspended,2024-02-01", "4,dora,IE,,active,2024-04-01"])
    result = ingest_file(lake_with_users, "users", write_file("users-2.csv", changed + "\n"))
    assert (result.accepted, result.rejected, result.lake_version) == (2, 0, 1)
    users = {row["user_id"]: row for row in lake_with_users.read("users").to_pylist()}
    assert sorted(users) == [1, 2, 3, 4]
    assert (users[2]["handle"], users[2]["account_state"]) == ("bobby", "suspended")


def test_files_without_rows_write_nothing(lake: Lake, write_file: WriteFile) -> None:
    for name, content in (("users.csv", USERS_HEADER + "\n"), ("users.jsonl", b""), ("users.parquet", b"")):
        result = ingest_file(lake, "users", write_file(name, content))
        assert (result.accepted, result.rejected, result.rejects_path, result.lake_version) == (
            0,
            0,
            None,
            None,
        )
    assert not lake.exists("users")  # not even an empty table


@pytest.mark.parametrize(
    "content", [b"", b"\n\n", b"\xef\xbb\xbf"], ids=["zero-bytes", "blank-lines", "bom-only"]
)
def test_an_empty_csv_file_has_no_header_and_is_refused(
    lake: Lake, write_file: WriteFile, content: bytes
) -> None:
    with pytest.raises(IngestError, match=r"users\.csv: the file is empty .*expected a header line naming"):
        ingest_file(lake, "users", write_file("users.csv", content))
    assert not lake.exists("users")


def test_progress_reports_every_line(lake: Lake, write_file: WriteFile) -> None:
    seen: list[int] = []
    lines = [USERS_HEADER] + [f"{i},user{i},US,,active,2024-01-01" for i in range(1, 6)]
    ingest_file(lake, "users", write_file("users.csv", "\n".join(lines) + "\n"), on_progress=seen.append)
    assert sum(seen) == len(lines)


# --- row-level rejects: CSV ----------------------------------------------------------------------

LONG_HANDLE = "h" * (MAX_HANDLE_CHARS + 1)
BAD_USER_ROWS = [
    ("1,,DE,,active,2024-01-01", "handle", "a value is required: handle", "None"),
    ("x1,ann,DE,,active,2024-01-01", "user_id", "expected a whole number", "'x1'"),
    (
        "99999999999999999999,ann,DE,,active,2024-01-01",
        "user_id",
        "expected a whole number",
        "'99999999999999999999'",
    ),
    ("1,ann,DE,,active,yesterday", "created_at", "expected an ISO-8601 date-time", "'yesterday'"),
    ("1,ann,DE,,active,2024-13-01", "created_at", "expected an ISO-8601 date-time", "'2024-13-01'"),
    ("1,ann,DE,,active,1704067200000", "created_at", "too large (milliseconds?)", "'1704067200000'"),
    (
        "1,ann,DE,1990-02-30,active,2024-01-01",
        "birth_date",
        "expected a date such as 2001-04-30",
        "'1990-02-30'",
    ),
    (
        "1,ann,DE,02/03/1990,active,2024-01-01",
        "birth_date",
        "expected a date such as 2001-04-30",
        "'02/03/1990'",
    ),
    ("1,ann,XX,,active,2024-01-01", "country", "expected an ISO-3166 alpha-2 country code", "'XX'"),
    ("1,ann,UK,,active,2024-01-01", "country", "(UK is not one: use GB)", "'UK'"),
    ("1,ann,DE,,sleeping,2024-01-01", "account_state", "expected one of active, protected", "'sleeping'"),
    (
        "1,a\x00b,DE,,active,2024-01-01",
        "handle",
        "a NUL character (\\x00) is not allowed in handle",
        "'a\\x00b'",
    ),
    (
        f"1,{LONG_HANDLE},DE,,active,2024-01-01",
        "handle",
        f"expected at most {MAX_HANDLE_CHARS} characters, got 51",
        None,
    ),
    ("1,ann,DE,,active", None, "expected 6 fields as in the header, found 5", None),
]


@pytest.mark.parametrize(("line", "field", "reason", "value"), BAD_USER_ROWS)
def test_csv_bad_row_is_rejected_with_line_field_and_reason(
    lake: Lake, write_file: WriteFile, line: str, field: str | None, reason: str, value: str | None
) -> None:
    path = write_file("users.csv", "\n".join([USERS_HEADER, "7,good,US,,active,2024-01-01", line]) + "\n")
    result = ingest_file(lake, "users", path)
    assert (result.accepted, result.rejected) == (1, 1)
    [reject] = read_rejects(result.rejects_path)
    assert reject["row"] == 3  # physical line: header is 1, the good row 2
    assert reject["field"] == field
    assert reason in reject["reason"]
    if value is not None:
        assert reject["value"] == value
    assert lake.read("users").column("user_id").to_pylist() == [7]


def test_csv_invalid_utf8_line_is_one_reject(lake: Lake, write_file: WriteFile) -> None:
    data = (USERS_HEADER + "\n1,caf\xe9,FR,,active,2024-01-01\n2,bob,US,,active,2024-01-01\n").encode(
        "latin-1"
    )
    result = ingest_file(lake, "users", write_file("users.csv", data))
    assert (result.accepted, result.rejected) == (1, 1)
    [reject] = read_rejects(result.rejects_path)
    assert (reject["row"], reject["field"]) == (2, None)
    assert reject["reason"] == "not valid UTF-8: byte 0xe9 at position 6 of the line"


def test_csv_multiline_record_is_numbered_by_its_first_line(lake: Lake, write_file: WriteFile) -> None:
    text = "\n".join([USERS_HEADER, '1,"two\nlines",DE,,active,2024-01-01', "2,bob,ZZ,,active,2024-01-01"])
    result = ingest_file(lake, "users", write_file("users.csv", text + "\n"))
    assert (result.accepted, result.rejected) == (1, 1)
    assert read_rejects(result.rejects_path)[0]["row"] == 4
    assert lake.read("users").column("handle").to_pylist() == ["two\nlines"]


def test_csv_record_over_the_csv_field_limit_is_one_reject(
    lake_with_users: Lake, write_file: WriteFile
) -> None:
    huge = "x" * 200_000
    text = "\n".join([POSTS_HEADER, f"20,1,{huge},,2024-05-01,public,", "21,1,fine,,2024-05-01,public,"])
    result = ingest_file(lake_with_users, "posts", write_file("posts.csv", text + "\n"))
    assert (result.accepted, result.rejected) == (1, 1)
    [reject] = read_rejects(result.rejects_path)
    assert reject["row"] == 2
    assert "field larger than field limit" in reject["reason"]


def test_duplicate_keys_keep_the_first_occurrence(lake: Lake, write_file: WriteFile) -> None:
    text = "\n".join(
        [
            USERS_HEADER,
            "1,ann,ZZ,,active,2024-01-01",  # invalid: does not count as the first occurrence
            "1,first,DE,,active,2024-01-01",
            "1,second,DE,,active,2024-01-01",
            "2,bob,DE,,active,2024-01-01",
            "1,third,DE,,active,2024-01-01",
        ]
    )
    result = ingest_file(lake, "users", write_file("users.csv", text + "\n"))
    assert (result.accepted, result.rejected) == (2, 3)
    rejects = read_rejects(result.rejects_path)
    assert [(r["row"], r["field"]) for r in rejects] == [(2, "country"), (4, "user_id"), (6, "user_id")]
    assert rejects[1]["reason"] == "duplicate primary key (user_id): row 3 has the same key and is kept"
    assert rejects[1]["value"] == "1"
    assert sorted(lake.read("users").column("handle").to_pylist()) == ["bob", "first"]


def test_engagement_duplicate_composite_key(lake_with_posts: Lake, write_file: WriteFile) -> None:
    rows = jsonl(
        {"user_id": 1, "post_id": 10, "created_at": "2024-06-01T00:00:00Z"},
        {"user_id": 1, "post_id": 10, "created_at": "2024-06-02T00:00:00Z"},
    )
    result = ingest_file(lake_with_posts, "likes", write_file("likes.jsonl", rows))
    assert (result.accepted, result.rejected) == (1, 1)
    [reject] = read_rejects(result.rejects_path)
    assert (reject["row"], reject["field"], reject["value"]) == (2, "user_id, post_id", "(1, 10)")


# --- row-level rejects: posts, references --------------------------------------------------------


def test_post_text_over_the_limit_and_bad_visibility(lake_with_users: Lake, write_file: WriteFile) -> None:
    rows = jsonl(
        post(post_id=20, text="x" * (MAX_TEXT_CHARS + 1)),
        post(post_id=21, visibility="friends"),
        post(post_id=22, text="x" * MAX_TEXT_CHARS),
        post(post_id=23, text="nul\x00inside"),
    )
    result = ingest_file(lake_with_users, "posts", write_file("posts.jsonl", rows))
    assert (result.accepted, result.rejected) == (1, 3)
    rejects = read_rejects(result.rejects_path)
    assert [(r["row"], r["field"]) for r in rejects] == [(1, "text"), (2, "visibility"), (4, "text")]
    assert rejects[0]["reason"] == f"expected at most {MAX_TEXT_CHARS} characters, got {MAX_TEXT_CHARS + 1}"
    assert rejects[0]["value"].endswith("…") and len(rejects[0]["value"]) == 80
    assert rejects[1]["reason"] == "expected one of public, followers"
    assert "NUL character" in rejects[2]["reason"]


def test_post_author_must_exist_in_the_lake(lake_with_users: Lake, write_file: WriteFile) -> None:
    rows = jsonl(post(post_id=20, author_id=1), post(post_id=21, author_id=404))
    result = ingest_file(lake_with_users, "posts", write_file("posts.jsonl", rows))
    assert (result.accepted, result.rejected) == (1, 1)
    [reject] = read_rejects(result.rejects_path)
    assert (reject["row"], reject["field"], reject["value"]) == (2, "author_id", "404")
    assert reject["reason"] == (
        "expected the user_id of a row in the lake's users table; 404 is not there (ingest users first)"
    )


def test_posts_into_a_lake_without_users_are_all_rejected(lake: Lake, write_file: WriteFile) -> None:
    result = ingest_file(lake, "posts", write_file("posts.jsonl", jsonl(post())))
    assert (result.accepted, result.rejected) == (0, 1)
    assert read_rejects(result.rejects_path)[0]["field"] == "author_id"


def test_engagement_user_and_post_must_exist(lake_with_posts: Lake, write_file: WriteFile) -> None:
    rows = jsonl(
        {"user_id": 1, "post_id": 10, "created_at": "2024-06-01T00:00:00Z"},
        {"user_id": 9, "post_id": 10, "created_at": "2024-06-01T00:00:00Z"},
        {"user_id": 2, "post_id": 99, "created_at": "2024-06-01T00:00:00Z"},
        {
            "user_id": 3,
            "post_id": 11,
            "created_at": "2024-06-01T00:00:00Z",
            "deleted_at": "2024-06-03T00:00:00Z",
        },
    )
    for table in ("likes", "reposts", "bookmarks"):
        result = ingest_file(lake_with_posts, table, write_file(f"{table}.jsonl", rows))
        assert (result.accepted, result.rejected) == (2, 2)
        rejects = read_rejects(result.rejects_path)
        assert [(r["row"], r["field"]) for r in rejects] == [(2, "user_id"), (3, "post_id")]
        assert "lake's posts table; 99 is not there" in rejects[1]["reason"]
    likes = lake_with_posts.read("likes").sort_by("user_id")
    assert likes.column("deleted_at").to_pylist() == [None, datetime(2024, 6, 3, tzinfo=UTC)]


# --- row-level rejects: JSONL --------------------------------------------------------------------

BAD_JSON_LINES: list[tuple[bytes, str | None, str]] = [
    (b'{"post_id": 20, "author_id": 1, "text": 5, "created_at": "2024-05-01", "visibility": "public"}', "text", "expected a string, got JSON number"),
    (b'{"post_id": true, "author_id": 1, "text": "t", "created_at": "2024-05-01", "visibility": "public"}', "post_id", "expected a whole number, got JSON boolean"),
    (b'{"post_id": 2.5, "author_id": 1, "text": "t", "created_at": "2024-05-01", "visibility": "public"}', "post_id", "expected a whole number"),
    (b'{"post_id": 20, "author_id": 1, "text": "t", "created_at": [2024], "visibility": "public"}', "created_at", "got JSON array"),
    (b'{"post_id": 20, "author_id": 1, "created_at": "2024-05-01", "visibility": "public"}', "text", "a value is required: text"),
    (b'{"post_id": 20, "author_id": 1, "text": null, "created_at": "2024-05-01", "visibility": "public"}', "text", "a value is required: text"),
    (b'{"post_id": 20, "author_id": 1, "text": "t", "created_at": "2024-05-01", "visibility": "public", "views": 3}', "views", "unexpected field 'views'"),
    (b'{"post_id": 20, "author_id": 1, "text": "\\ud800", "created_at": "2024-05-01", "visibility": "public"}', "text", "lone surrogate"),
    (b'{"post_id": 20, "author_id": 1, "text": "caf\xe9", "created_at": "2024-05-01", "visibility": "public"}', None, "not valid UTF-8: byte 0xe9"),
    (b'{"post_id": 20,', None, "not valid JSON"),
    (b"[20, 1]", None, "expected a JSON object"),
]  # fmt: skip
# Lines that used to crash the whole ingest (RecursionError, ValueError from int()): each is one reject.
HOSTILE_JSON_LINES: list[tuple[bytes, str | None, str]] = [
    (b"[" * 100_000 + b"]" * 100_000, None, "nested too deeply"),
    (b'{"post_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None, "nested too deeply"),
    (b'{"post_id": ' + b"9" * 5_000 + b"}", None, "a number of more than 4,300 digits"),
    (b'{"post_id": 20, "author_id": 1, "text": "t", "created_at": 1e400, "visibility": "public"}', "created_at", "expected an ISO-8601 date-time"),
    (b'{"post_id": 1' + b"0" * 30 + b', "author_id": 1, "text": "t", "created_at": "2024-05-01", "visibility": "public"}', "post_id", "expected a whole number"),
    (b'{"post_id": 20, "author_id": 1, "text": ' + b"[" * 500 + b"]" * 500 + b', "created_at": "2024-05-01", "visibility": "public"}', "text", "got JSON array"),
    (b'"a string"', None, "expected a JSON object"),
    (b"\xff\xfe\x00garbage", None, "not valid UTF-8: byte 0xff"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "field", "reason"), BAD_JSON_LINES + HOSTILE_JSON_LINES)
def test_jsonl_bad_line_is_rejected_with_line_field_and_reason(
    lake_with_users: Lake, write_file: WriteFile, line: bytes, field: str | None, reason: str
) -> None:
    good = json.dumps(post(post_id=30)).encode()
    data = good + b"\n\n" + line + b"\n"  # the blank line 2 counts, so the bad line is 3
    result = ingest_file(lake_with_users, "posts", write_file("posts.jsonl", data))
    assert (result.accepted, result.rejected) == (1, 1)
    [reject] = read_rejects(result.rejects_path)
    assert (reject["row"], reject["field"]) == (3, field)
    assert reason in reject["reason"]


def test_jsonl_accepts_numeric_strings_and_epoch_numbers(
    lake_with_users: Lake, write_file: WriteFile
) -> None:
    rows = jsonl(post(post_id="21", author_id="2", created_at=1714557600.5))
    result = ingest_file(lake_with_users, "posts", write_file("posts.ndjson", rows))
    assert (result.accepted, result.rejected) == (1, 0)
    [row] = lake_with_users.read("posts").to_pylist()
    assert (row["post_id"], row["author_id"]) == (21, 2)
    assert row["created_at"] == datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)


# --- row numbers in Parquet ----------------------------------------------------------------------


def test_parquet_rejects_use_one_based_row_numbers(lake: Lake, tmp_path: Path) -> None:
    table = pa.table(
        {
            "user_id": [1, 2, 3],
            "handle": ["a", "b", "c"],
            "country": ["DE", "Germany", "US"],
            "account_state": ["active", "active", "active"],
            "created_at": ["2024-01-01", "2024-01-01", "not a date"],
        }
    )
    path = tmp_path / "users.parquet"
    pq.write_table(table, path)
    result = ingest_file(lake, "users", path)
    assert (result.accepted, result.rejected) == (1, 2)
    assert [(r["row"], r["field"]) for r in read_rejects(result.rejects_path)] == [
        (2, "country"),
        (3, "created_at"),
    ]


# --- file-level errors: nothing written ----------------------------------------------------------


def test_missing_required_column_names_it(lake_with_users: Lake, write_file: WriteFile) -> None:
    path = write_file(
        "users.csv", "user_id,handle,birth_date,account_state,created_at\n5,eve,,active,2024-01-01\n"
    )
    with pytest.raises(IngestError, match=r"users\.csv: required column\(s\) country missing"):
        ingest_file(lake_with_users, "users", path)
    assert lake_with_users.version("users") == 0
    assert not (lake_with_users.root / "rejects").exists()


def test_missing_required_parquet_column_names_it(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "users.parquet"
    pq.write_table(
        pa.table({"user_id": [1], "handle": ["a"], "country": ["DE"], "created_at": ["2024-01-01"]}), path
    )
    with pytest.raises(IngestError, match="account_state"):
        ingest_file(lake, "users", path)
    assert lake.version("users") is None


def test_unexpected_column_is_refused(lake: Lake, write_file: WriteFile) -> None:
    path = write_file("users.csv", USERS_HEADER + ",delted_at\n" + GOOD_USER + ",\n")
    with pytest.raises(IngestError, match="unexpected column\\(s\\) delted_at"):
        ingest_file(lake, "users", path)


def test_incompatible_parquet_column_type_is_refused(lake: Lake, tmp_path: Path) -> None:
    path = tmp_path / "users.parquet"
    table = pa.table(
        {
            "user_id": [1.5],
            "handle": ["a"],
            "country": ["DE"],
            "account_state": ["active"],
            "created_at": ["2024-01-01"],
        }
    )
    pq.write_table(table, path)
    with pytest.raises(IngestError, match="column 'user_id' has type double, expected int64"):
        ingest_file(lake, "users", path)


def test_unreadable_and_unknown_files(lake: Lake, write_file: WriteFile, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"users\.parquet: not a readable Parquet file"):
        ingest_file(lake, "users", write_file("users.parquet", b"definitely not parquet"))
    with pytest.raises(IngestError, match=r"users\.xlsx: unknown file type '\.xlsx'"):
        ingest_file(lake, "users", write_file("users.xlsx", b"x"))
    with pytest.raises(IngestError, match="no such file"):
        ingest_file(lake, "users", tmp_path / "absent.csv")
    with pytest.raises(IngestError, match="header line is not valid UTF-8"):
        ingest_file(lake, "users", write_file("users.csv", b"user_id,h\xffandle\n"))
    assert lake.version("users") is None


@pytest.mark.parametrize("table", ["dms", "direct_messages", "DMs", "messages"])
def test_direct_messages_are_never_ingested(lake: Lake, write_file: WriteFile, table: str) -> None:
    with pytest.raises(IngestError, match=r"direct messages .* never a category and can never be ingested"):
        ingest_file(lake, table, write_file("dms.jsonl", jsonl({"from": 1, "to": 2, "text": "hi"})))
    assert not (lake.root / "source" / table).exists()


def test_unknown_table_lists_the_valid_ones(lake: Lake, write_file: WriteFile) -> None:
    with pytest.raises(IngestError, match="unknown table 'follows': expected one of users, posts, likes"):
        ingest_file(lake, "follows", write_file("f.csv", "a\n"))


# --- strict mode, rejects file, atomicity --------------------------------------------------------


def test_strict_mode_writes_nothing_and_says_where_the_rejects_are(
    lake_with_users: Lake, write_file: WriteFile, tmp_path: Path
) -> None:
    text = "\n".join([USERS_HEADER, "1,renamed,DE,,active,2024-01-01", "9,x,ZZ,,active,2024-01-01"])
    rejects = tmp_path / "out" / "rejects.jsonl"
    with pytest.raises(IngestError) as caught:
        ingest_file(
            lake_with_users, "users", write_file("users.csv", text + "\n"), strict=True, rejects_path=rejects
        )
    assert "1 of 2 rows are invalid, so nothing was written (strict mode)" in str(caught.value)
    assert str(rejects) in str(caught.value)
    assert read_rejects(rejects)[0]["row"] == 3
    assert lake_with_users.version("users") == 0
    assert "renamed" not in lake_with_users.read("users").column("handle").to_pylist()


def test_strict_mode_with_good_rows_commits(lake: Lake, write_file: WriteFile) -> None:
    result = ingest_file(
        lake, "users", write_file("users.csv", USERS_HEADER + "\n" + GOOD_USER + "\n"), strict=True
    )
    assert (result.accepted, result.rejected, result.lake_version) == (1, 0, 0)


def test_default_rejects_file_lives_under_the_lake_root(lake: Lake, write_file: WriteFile) -> None:
    result = ingest_file(
        lake, "users", write_file("users.csv", USERS_HEADER + "\n1,a,ZZ,,active,2024-01-01\n")
    )
    assert result.rejects_path is not None
    assert result.rejects_path.parent == lake.root / "rejects"
    assert result.rejects_path.name.startswith("users-") and result.rejects_path.suffix == ".jsonl"
    assert [p.name for p in result.rejects_path.parent.iterdir()] == [
        result.rejects_path.name
    ]  # no temp file left


def test_explicit_rejects_path_is_written_even_when_empty(
    lake: Lake, write_file: WriteFile, tmp_path: Path
) -> None:
    target = tmp_path / "rejects.jsonl"
    target.write_text("stale\n")
    result = ingest_file(
        lake, "users", write_file("users.csv", USERS_HEADER + "\n" + GOOD_USER + "\n"), rejects_path=target
    )
    assert result.rejects_path == target
    assert target.read_text() == ""


def test_one_commit_per_ingest_and_failures_leave_the_version(
    lake_with_users: Lake, write_file: WriteFile
) -> None:
    before = lake_with_users.version("users")
    mixed = "\n".join(
        [
            USERS_HEADER,
            "4,dora,IE,,active,2024-04-01",
            "5,ed,ZZ,,active,2024-04-01",
            "6,fay,SE,,active,2024-04-01",
        ]
    )
    assert before is not None
    result = ingest_file(lake_with_users, "users", write_file("mixed.csv", mixed + "\n"))
    assert (result.accepted, result.rejected, result.lake_version) == (2, 1, before + 1)
    with pytest.raises(IngestError):
        ingest_file(lake_with_users, "users", write_file("broken.csv", "user_id\n7\n"))
    assert lake_with_users.version("users") == before + 1
    assert lake_with_users.read("users").num_rows == 5
