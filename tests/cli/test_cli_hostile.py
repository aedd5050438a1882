"""Hostile input on every command: a short error naming the input, exit 2, no traceback, nothing stored.

"Nothing stored" is checked on the whole SQLite store (a dump of every table before and after) and,
for commands that could write the lake, on the lake's files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_harness import Demo, Run, expect, lake_version, run, single_error, store_dump, tree

N = 100_000  # nesting levels


def billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    return "\n".join([*lines, "policy: *i", "agreement: *i", ""])


# name → (content, how the located problem after "FILE:" starts)
HOSTILE_DOCUMENTS: dict[str, tuple[bytes, str]] = {
    "nested-lists": (
        b"[" * N + b"]" * N,
        "1:33: (document): expected at most 32 levels of nested lists, mappings and values",
    ),
    "nested-mappings": (
        b"a: " + b"{a: " * N + b"1" + b"}" * N,  # 500 KB: refused for its size before it is parsed
        "1:1: (document): expected at most 256 KiB (262,144 bytes) of YAML; this document is longer",
    ),
    "nul": (b"policy: test\ndescription: a\x00b\n", "2:15: (document): not valid YAML: character U+0000"),
    "control-character": (b"policy: te\x1bst\n", "1:11: (document): not valid YAML: character U+001B"),
    "binary": (
        bytes(range(256)) * 16,
        "2:118: (document): expected UTF-8 text, found byte 0x80 (is this a binary file?)",
    ),
    "50-MB-line": (
        b"policy: " + b"x" * (50 * 1024 * 1024) + b"\n",
        "1:1: (document): expected at most 256 KiB (262,144 bytes) of YAML; this document is longer",
    ),
    "billion-laughs": (
        billion_laughs().encode(),
        "5:8: (document): expected at most 10,000 values in all (lists, mappings and scalars, counting "
        "every repetition by an alias); *d here repeats 7,381",
    ),
}
DOCUMENT_COMMANDS = [("policy", "validate"), ("policy", "apply"), ("agreement", "create")]


def assert_refused_without_a_trace(result: Run, mentions: str) -> None:
    """Exit 2 (not 0, not 1 with a traceback), nothing on stdout, a few lines naming the input."""
    assert result.code == 2, result.describe()
    assert "Traceback" not in result.err, result.describe()
    assert result.out == "", result.describe()
    assert 1 <= len(result.err_lines) <= 5, result.describe()
    assert all(len(line) < 500 for line in result.err_lines), result.describe()
    assert mentions.lower() in result.err.lower(), result.describe()


@pytest.mark.parametrize("command", DOCUMENT_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("document", list(HOSTILE_DOCUMENTS))
def test_a_hostile_document_is_one_located_problem(
    home: Path, tmp_path: Path, document: str, command: tuple[str, str]
) -> None:
    content, problem = HOSTILE_DOCUMENTS[document]
    (tmp_path / "hostile.yaml").write_bytes(content)
    before = store_dump(home)
    result = run(*command, "hostile.yaml", home=home, cwd=tmp_path)
    assert_refused_without_a_trace(result, "hostile.yaml")
    assert len(result.err_lines) == 2, result.describe()
    assert result.err_lines[0].startswith(f"hostile.yaml:{problem}"), result.describe()
    assert result.err_lines[1] == "1 problem(s) found"
    assert store_dump(home) == before


@pytest.mark.parametrize(
    "expires",
    ["99999999d", "99999999999h", "10000-01-01T00:00:00Z", ""],
)
def test_partner_token_refuses_an_absurd_lifetime(home: Path, tmp_path: Path, expires: str) -> None:
    out = tmp_path / "p.share"
    before = store_dump(home)
    result = run("partner", "token", "lumen-labs", "--out", out, "--expires", expires, home=home)
    message = single_error(result)
    assert message.startswith(f"--expires {expires!r}: "), message
    assert "at most 10 years (3650d) from now" in message
    assert not out.exists()
    assert store_dump(home) == before


def post_line(post_id: int, author: int) -> bytes:
    row = {
        "post_id": post_id,
        "author_id": author,
        "text": "from the hostile tests",
        "created_at": "2025-02-01T10:00:00Z",
        "visibility": "public",
    }
    return json.dumps(row).encode()


def hostile_jsonl(author: int) -> bytes:
    return b"\n".join(
        [
            post_line(910001, author),
            b"[" * N + b"]" * N,
            b'{"post_id": ' + b"9" * 5_000 + b"}",
            b'"not an object"',
            b'{"post_id": 910002, "text": "caf\xe9"}',
            post_line(910003, author),
            b"",
        ]
    )


def test_ingest_rejects_each_hostile_row_and_keeps_the_others(demo: Demo, home: Path, tmp_path: Path) -> None:
    (tmp_path / "posts.jsonl").write_bytes(hostile_jsonl(demo.us_user))
    version = lake_version(home, "posts")
    assert version is not None
    result = expect(
        run("ingest", "posts", "posts.jsonl", "--rejects", "rejects.jsonl", home=home, cwd=tmp_path), 0
    )
    assert "Traceback" not in result.err
    assert result.out_lines[0] == "posts: 2 accepted, 4 rejected"
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["field"]) for r in rejects] == [(2, None), (3, None), (4, None), (5, None)]
    reasons = [r["reason"] for r in rejects]
    assert reasons[0].startswith("nested too deeply: expected one JSON object")
    assert reasons[1].startswith("a number of more than 4,300 digits")
    assert reasons[2] == "expected a JSON object with the row's fields"
    assert reasons[3].startswith("not valid UTF-8: byte 0xe9")
    assert all(len(r["value"]) <= 80 for r in rejects)
    assert lake_version(home, "posts") == version + 1


def test_strict_ingest_of_hostile_rows_writes_nothing(demo: Demo, home: Path, tmp_path: Path) -> None:
    (tmp_path / "posts.jsonl").write_bytes(hostile_jsonl(demo.us_user))
    lake_before = tree(home / "lake" / "source")
    result = run("ingest", "posts", "posts.jsonl", "--strict", home=home, cwd=tmp_path)
    assert "4 of 6 rows are invalid, so nothing was written (strict mode)" in single_error(result)
    assert tree(home / "lake" / "source") == lake_before


def test_ingest_of_an_empty_csv_file_says_so(home: Path, tmp_path: Path) -> None:
    (tmp_path / "posts.csv").write_bytes(b"")
    lake_before = tree(home / "lake")
    message = single_error(run("ingest", "posts", "posts.csv", home=home, cwd=tmp_path))
    assert message.startswith(
        "posts.csv: the file is empty (0 bytes); expected a header line naming the columns"
    )
    assert tree(home / "lake") == lake_before


def test_ingest_of_a_csv_file_with_only_a_header_writes_nothing(home: Path, tmp_path: Path) -> None:
    (tmp_path / "posts.csv").write_text("post_id,author_id,text,lang,created_at,visibility,deleted_at\n")
    lake_before = tree(home / "lake")
    result = expect(run("ingest", "posts", "posts.csv", home=home, cwd=tmp_path), 0)
    assert result.out_lines == ["posts: no rows in posts.csv; nothing written"]
    assert tree(home / "lake") == lake_before


# Every command with an input of the same class: ids past int64, instants Python cannot hold or an
# operator cannot mean, arguments of 100,000 characters (Linux caps one argument at 128 KiB, so a
# "10 MB" argument cannot even be passed). `U` stands for a real user of the demo.
U = "{user}"
HUGE = str(2**63)
LONG = "k" * 100_000
DECIDE = ("decide", "--user", U, "--category", "posts", "--purpose", "train_ai_system")
HOSTILE_ARGUMENTS: list[tuple[tuple[str, ...], str]] = [
    (("policy", "show", "--at", "0000-01-01"), "--at"),
    (("policy", "show", "--at", "99999"), "--at"),
    (("policy", "show", "--at", "0001-01-01T00:00:00+01:00"), "--at"),
    ((*DECIDE, "--at", "0001-01-01"), "--at"),
    (("release", "purge", "--at", "0001-01-01"), "--at"),
    (("consent", "set", HUGE, "share_with_partners", "false"), "user"),
    (("consent", "set", "9" * 5_000, "share_with_partners", "false"), "USER"),
    (("consent", "set", U, LONG, "false"), "KEY"),
    (("consent", "set", U, "share_with_partners", "false", "--at", "9999-12-31T23:59:59"), "--at"),
    (("consent", "show", HUGE), "user"),
    (("decide", "--user", HUGE, "--category", "posts", "--purpose", "train_ai_system"), "user"),
    ((*DECIDE, "--post", HUGE), "--post"),
    ((*DECIDE, "--post=-1"), "--post"),
    (("event", "post_delete", HUGE, "--post", "1"), "user"),
    (("event", "post_delete", U, "--post", HUGE), "--post"),
    (("event", "post_delete", U, "--post", "1", "--id", LONG), "--id"),
    (("event", "user_protect", U, "--at", "9999-12-31T23:59:59"), "--at"),
    (("report", "user", HUGE), "user"),
    (("release", "show", HUGE), "release_id"),
    (("users", "list", "--limit", "-1"), "--limit"),
    (("partner", "add", LONG), "NAME"),
    (("serve", "--port", "99999999"), "--port"),
    (("ingest", "posts", "p" * 5_000 + ".csv"), "FILE"),
]


@pytest.mark.parametrize(
    ("args", "mentions"),
    HOSTILE_ARGUMENTS,
    ids=[
        re.sub(
            r"(\w)\1{20,}",
            lambda m: f"{m[1]}*{len(m[0])}",
            " ".join(args).replace(" ".join(DECIDE), "decide"),
        )
        for args, _ in HOSTILE_ARGUMENTS
    ],
)
def test_a_hostile_argument_is_a_short_error(
    demo: Demo, home: Path, tmp_path: Path, args: tuple[str, ...], mentions: str
) -> None:
    before, lake_before = store_dump(home), tree(home / "lake")
    result = run(*(a.replace(U, str(demo.us_user)) for a in args), home=home, cwd=tmp_path)
    assert_refused_without_a_trace(result, mentions)
    assert store_dump(home) == before
    assert tree(home / "lake") == lake_before
