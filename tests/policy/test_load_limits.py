"""Hostile YAML: every document is one located problem, never a crash, a hang or an exhausted machine.

The bounds (docs/policy.md, "Limits"): MAX_DOCUMENT_BYTES of UTF-8, MAX_NESTING_DEPTH levels, MAX_NODES
values counting what aliases repeat; no characters YAML forbids; numbers Python can convert.
"""

from __future__ import annotations

import pytest

from datalease.policy.documents import decode_document
from datalease.policy.load import load_policy
from datalease.policy.problems import (
    MAX_DOCUMENT_BYTES,
    MAX_NESTING_DEPTH,
    MAX_NODES,
    MAX_SHOWN_CHARS,
    Problem,
    ProblemsError,
)


def billion_laughs() -> str:
    """Ten lines, 9**9 strings once the aliases are expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    return "\n".join([*lines, "policy: *i", ""])


def only_problem(text: str) -> Problem:
    with pytest.raises(ProblemsError) as raised:
        load_policy(text, "hostile.yaml")
    assert len(raised.value.problems) == 1, raised.value
    return raised.value.problems[0]


DEPTH = f"expected at most {MAX_NESTING_DEPTH} levels of nested lists, mappings and values"
TOO_LARGE = f"expected at most 256 KiB ({MAX_DOCUMENT_BYTES:,} bytes) of YAML; this document is longer"
N = 100_000


@pytest.mark.parametrize(
    ("text", "line", "col", "expected"),
    [
        ("[" * N + "]" * N, 1, MAX_NESTING_DEPTH + 1, DEPTH),
        ("policy: " + "[" * N + "]" * N, 1, 8 + MAX_NESTING_DEPTH, DEPTH),
        ("a: " + "{a: " * 50_000 + "1" + "}" * 50_000, 1, 4 + 4 * (MAX_NESTING_DEPTH - 2) + 1, DEPTH),
        ("".join(" " * i + "a:\n" for i in range(40)), MAX_NESTING_DEPTH, MAX_NESTING_DEPTH, DEPTH),
        ("a: " + "{a: " * N + "1" + "}" * N, 1, 1, TOO_LARGE),  # 500 KB: refused before parsing
        ("policy: " + "x" * (50 * 1024 * 1024) + "\n", 1, 1, TOO_LARGE),
        ("policy: " + "é" * (MAX_DOCUMENT_BYTES // 2) + "\n", 1, 1, TOO_LARGE),  # bytes, not characters
    ],
    ids=["deep-list", "deep-list-value", "deep-mapping", "deep-indentation", "deep-mapping-100k", "50-MB-line", "utf8-bytes"],
)  # fmt: skip
def test_size_and_nesting_are_bounded(text: str, line: int, col: int, expected: str) -> None:
    assert only_problem(text) == Problem("hostile.yaml", line, col, "(document)", expected)


def test_nesting_up_to_the_bound_is_read() -> None:
    # the document, regions, EEA and 29 more lists: "DE" is the 32nd level
    nested = "[" * (MAX_NESTING_DEPTH - 3) + "DE" + "]" * (MAX_NESTING_DEPTH - 3)
    with pytest.raises(ProblemsError) as raised:
        load_policy(f"policy: x\nregions: {{EEA: {nested}}}\nversions: []\n", "hostile.yaml")
    assert [p.field for p in raised.value.problems] == ["regions.EEA[0]", "versions"]  # parsed, then checked


@pytest.mark.parametrize(
    ("character", "shown"), [("\x00", "U+0000"), ("\x07", "U+0007"), ("\x1b", "U+001B"), ("\x7f", "U+007F")]
)
def test_characters_yaml_forbids_are_located(character: str, shown: str) -> None:
    problem = only_problem(f"policy: test\ndescription: ab{character}cd\n")
    assert (problem.line, problem.col, problem.field) == (2, 16, "(document)")
    assert problem.expected.startswith(
        f"not valid YAML: character {shown} is not allowed; expected printable"
    )


def test_bytes_that_are_not_utf8_are_located() -> None:
    data = b"policy: test\nversions: \xff\xfe\x00\x01\x80garbage\n"
    with pytest.raises(ProblemsError) as raised:
        decode_document(data, "binary.yaml")
    assert raised.value.problems == [
        Problem(
            "binary.yaml",
            2,
            11,
            "(document)",
            "expected UTF-8 text, found byte 0xff (is this a binary file?)",
        )
    ]


def test_decoding_refuses_more_than_the_maximum_size() -> None:
    with pytest.raises(ProblemsError, match="expected at most 256 KiB"):
        decode_document(b"a" * (MAX_DOCUMENT_BYTES + 1), "big.yaml")


def test_an_alias_bomb_is_refused_at_the_alias_that_crosses_the_bound() -> None:
    problem = only_problem(billion_laughs())
    assert (problem.line, problem.col) == (5, 8)  # the first *d
    assert problem.expected == (
        f"expected at most {MAX_NODES:,} values in all (lists, mappings and scalars, counting every "
        "repetition by an alias); *d here repeats 7,381"
    )


def test_too_many_values_without_aliases_are_refused() -> None:
    problem = only_problem("policy: x\nversions: [" + "1, " * MAX_NODES + "1]\n")
    assert problem.line == 2
    assert problem.expected.startswith(f"expected at most {MAX_NODES:,} values in all")


def test_a_few_aliases_are_fine() -> None:
    text = "policy: x\nregions: {EEA: &eea [DE, FR], Other: *eea}\nversions: []\n"
    with pytest.raises(ProblemsError) as raised:
        load_policy(text, "hostile.yaml")
    assert "country DE is already in region EEA" in str(raised.value)  # parsed, then checked


def test_a_recursive_alias_is_refused() -> None:
    problem = only_problem("policy: x\nversions: &v [1, *v]\n")
    assert (problem.line, problem.col) == (2, 18)
    assert (
        problem.expected
        == "expected no alias inside the node its anchor &v names (it would repeat without end)"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9" * 5_000, "not valid YAML: expected a number of at most 4,300 digits"),
        ("!!int abc", "not valid YAML: expected a number of at most 4,300 digits"),
        ("!!float abc", "not valid YAML: expected a value its tag can hold (could not convert string to float: 'abc')"),
    ],
    ids=["5000-digits", "int-tag", "float-tag"],
)  # fmt: skip
def test_numbers_python_cannot_convert_are_located(value: str, expected: str) -> None:
    problem = only_problem(f"policy: x\nhard_exclusions: {{minimum_age: {value}}}\n")
    assert (problem.line, problem.col, problem.expected) == (2, 32, expected)


@pytest.mark.parametrize(
    "document",
    [
        "policy: x\nhard_exclusions: {minimum_age: 0x" + "f" * 5_000 + "}\nversions: []\n",
        "policy: x\nhard_exclusions: {minimum_age: '" + "x" * 200_000 + "'}\nversions: []\n",
        "policy: x\nhard_exclusions: {unknown_age: '" + "x" * 200_000 + "'}\nversions: []\n",
        "policy: x\n? " + "y" * 200_000 + "\n: 1\nversions: []\n",  # an explicit key: no 1024 limit
        "policy: x\n? 0x" + "f" * 5_000 + "\n: 1\nversions: []\n",
        "policy: x\nregions: {EEA: ['" + "x" * 200_000 + "']}\nversions: []\n",
    ],
    ids=["huge-hex-int", "long-string", "long-choice", "long-key", "huge-int-key", "long-country"],
)
def test_problems_quote_at_most_a_short_piece_of_a_value(document: str) -> None:
    with pytest.raises(ProblemsError) as raised:
        load_policy(document, "hostile.yaml")
    for problem in raised.value.problems:
        assert len(problem.field) + len(problem.expected) < 200 + 2 * MAX_SHOWN_CHARS, str(problem)[:400]
