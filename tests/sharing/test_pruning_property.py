"""Predicate pruning never drops a file that holds a matching row (hypothesis over generated files —
rows with a `user_key` and an integer column, the file's min/max/null stats and its bucket — and
generated predicates: comparisons, and/or/not, isNull, SQL hints, unknown operators)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from datalease.sharing.deltalog import FileEntry
from datalease.sharing.pruning import predicate, prune

HEX = "0123456789abcdef"
keys = st.text(alphabet=HEX, min_size=3, max_size=3)
row = st.fixed_dictionaries({"user_key": keys, "n": st.one_of(st.none(), st.integers(-5, 5))})
OPS = ("equal", "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual")


def _file(rows: list[dict[str, Any]], index: int) -> FileEntry:
    bucket = rows[0]["user_key"][0]
    rows = [{**r, "user_key": bucket + r["user_key"][1:]} for r in rows]
    numbers = [r["n"] for r in rows if r["n"] is not None]
    stats: dict[str, Any] = {
        "numRecords": len(rows),
        "minValues": {"user_key": min(r["user_key"] for r in rows)},
        "maxValues": {"user_key": max(r["user_key"] for r in rows)},
        "nullCount": {"user_key": 0, "n": len(rows) - len(numbers)},
    }
    if numbers:
        stats["minValues"]["n"], stats["maxValues"]["n"] = min(numbers), max(numbers)
    entry = FileEntry(f"bucket={bucket}/part-{index}.parquet", 1, 0, len(rows), json.dumps(stats))
    object.__setattr__(entry, "_rows", rows)  # the rows the stats describe, for the oracle below
    return entry


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    key_cmp = st.builds(
        lambda op, v: {
            "op": op,
            "children": [
                {"op": "column", "name": "user_key", "valueType": "string"},
                {"op": "literal", "value": v, "valueType": "string"},
            ],
        },
        st.sampled_from(OPS),
        keys,
    )
    int_cmp = st.builds(
        lambda op, v: {
            "op": op,
            "children": [
                {"op": "column", "name": "n", "valueType": "long"},
                {"op": "literal", "value": str(v), "valueType": "long"},
            ],
        },
        st.sampled_from(OPS),
        st.integers(-6, 6),
    )
    null = st.just({"op": "isNull", "children": [{"op": "column", "name": "n", "valueType": "long"}]})
    odd = st.just({"op": "frobnicate", "children": []})
    return st.one_of(key_cmp, int_cmp, null, odd)


trees = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(lambda c: {"op": "and", "children": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"op": "or", "children": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"op": "not", "children": [c]}, inner),
    ),
    max_leaves=6,
)


def _holds(tree: dict[str, Any], r: dict[str, Any]) -> bool:
    op, children = tree["op"], tree["children"]
    if op == "and":
        return all(_holds(c, r) for c in children)
    if op == "or":
        return any(_holds(c, r) for c in children)
    if op == "not":
        return not _holds(children[0], r)
    if op == "isNull":
        return r[children[0]["name"]] is None
    if op in OPS:
        name, literal = children[0]["name"], children[1]["value"]
        value = r[name]
        if value is None:
            return False
        target = literal if name == "user_key" else int(literal)
        return {
            "equal": value == target,
            "lessThan": value < target,
            "lessThanOrEqual": value <= target,
            "greaterThan": value > target,
            "greaterThanOrEqual": value >= target,
        }[op]
    return True  # an operator the server does not know: the client filters


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(row, min_size=1, max_size=6), min_size=1, max_size=6), trees)
def test_pruning_keeps_every_file_with_a_matching_row(
    groups: list[list[dict[str, Any]]], tree: dict[str, Any]
) -> None:
    files = [_file(rows, i) for i, rows in enumerate(groups)]
    kept = {f.path for f in prune(files, predicate(json.dumps(tree), None))}
    for entry in files:
        if any(_holds(tree, r) for r in entry._rows):  # type: ignore[attr-defined]
            assert entry.path in kept, (tree, entry)


@given(st.lists(st.lists(row, min_size=1, max_size=6), min_size=1, max_size=6), keys)
def test_a_sql_equality_hint_keeps_every_file_with_the_key(
    groups: list[list[dict[str, Any]]], key: str
) -> None:
    files = [_file(rows, i) for i, rows in enumerate(groups)]
    kept = {f.path for f in prune(files, predicate(None, [f"user_key = '{key}'"]))}
    for entry in files:
        if any(r["user_key"] == key for r in entry._rows):  # type: ignore[attr-defined]
            assert entry.path in kept
