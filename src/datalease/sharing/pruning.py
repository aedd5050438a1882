"""Predicate hints (`jsonPredicateHints`, `predicateHints`) turned into file pruning: a file is left
out only when its statistics (`minValues` / `maxValues` / `nullCount`) or its hidden bucket (the first
characters of `user_key`, the partition the writer used) prove that no row in it can match. Anything
the server does not understand keeps the file — hints are hints: the client filters rows itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from datalease.sharing.deltalog import FileEntry

BUCKET_COLUMN: Final = "user_key"  # the bucket is a prefix of it (releases/plan.py)
MAX_HINT_CHARS: Final = 100_000
_COMPARISONS: Final = ("equal", "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual")
_TYPES: Final = {
    "string": str,
    "int": int,
    "long": int,
    "short": int,
    "byte": int,
    "double": float,
    "float": float,
}
_SQL: Final = re.compile(
    r"^\s*`?([A-Za-z_][A-Za-z0-9_]*)`?\s*(=|<=|>=|<|>)\s*('(?:[^']|'')*'|-?\d+(?:\.\d+)?)\s*$"
)
_SQL_OPS: Final = {
    "=": "equal",
    "<": "lessThan",
    "<=": "lessThanOrEqual",
    ">": "greaterThan",
    ">=": "greaterThanOrEqual",
}


@dataclass(frozen=True)
class Stats:
    bucket: str | None
    low: dict[str, Any]
    high: dict[str, Any]
    nulls: dict[str, Any]


def _stats(entry: FileEntry) -> Stats:
    bucket = next((p.split("=", 1)[1] for p in entry.path.split("/")[:-1] if p.startswith("bucket=")), None)
    try:
        parsed = json.loads(entry.stats) if entry.stats else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}

    def part(name: str) -> dict[str, Any]:
        found = parsed.get(name)
        return found if isinstance(found, dict) else {}

    return Stats(bucket, part("minValues"), part("maxValues"), part("nullCount"))


def _literal(node: Any) -> Any:
    """The literal's value in its type, or None when it cannot be compared here."""
    kind = _TYPES.get(str(node.get("valueType", "")))
    if kind is None:
        return None
    try:
        return kind(node.get("value"))
    except (TypeError, ValueError):
        return None


def _may_match(node: Any, stats: Stats, depth: int = 0) -> bool:
    if not isinstance(node, dict) or depth > 50:
        return True
    op = node.get("op")
    children = node.get("children")
    if not isinstance(children, list):
        return True
    if op == "and":
        return all(_may_match(c, stats, depth + 1) for c in children)
    if op == "or":
        return any(_may_match(c, stats, depth + 1) for c in children) if children else True
    if op == "isNull" and len(children) == 1 and isinstance(children[0], dict):
        nulls = stats.nulls.get(str(children[0].get("name")))
        return not (isinstance(nulls, int) and nulls == 0)
    if op in _COMPARISONS and len(children) == 2:
        column, literal = children
        if not isinstance(column, dict) or not isinstance(literal, dict):
            return True
        if column.get("op") == "literal" and literal.get("op") == "column":
            column, literal = literal, column
            op = {
                "lessThan": "greaterThan",
                "greaterThan": "lessThan",
                "lessThanOrEqual": "greaterThanOrEqual",
                "greaterThanOrEqual": "lessThanOrEqual",
            }.get(str(op), op)
        if column.get("op") != "column" or literal.get("op") != "literal":
            return True
        return _compare(str(op), str(column.get("name")), _literal(literal), stats)
    return True  # not, unknown operators: keep the file


def _compare(op: str, name: str, value: Any, stats: Stats) -> bool:
    if value is None:
        return True
    bucket = stats.bucket
    in_other_bucket = bucket is not None and isinstance(value, str) and not value.startswith(bucket)
    if op == "equal" and name == BUCKET_COLUMN and in_other_bucket:
        return False
    low, high = stats.low.get(name), stats.high.get(name)
    try:
        if op == "equal":
            return not ((low is not None and value < low) or (high is not None and value > high))
        if op == "lessThan":
            return low is None or low < value
        if op == "lessThanOrEqual":
            return low is None or low <= value
        if op == "greaterThan":
            return high is None or high > value
        return high is None or high >= value
    except TypeError:  # stats of another type than the literal
        return True


def _from_sql(hints: Sequence[str]) -> dict[str, Any] | None:
    """`predicateHints` (SQL, each a conjunct) of the form `col OP literal`; others are ignored."""
    children = []
    for hint in hints:
        match = _SQL.match(hint)
        if match is None:
            continue
        name, op, text = match.groups()
        if text.startswith("'"):
            literal = {"op": "literal", "value": text[1:-1].replace("''", "'"), "valueType": "string"}
        else:
            literal = {"op": "literal", "value": text, "valueType": "double" if "." in text else "long"}
        children.append({"op": _SQL_OPS[op], "children": [{"op": "column", "name": name}, literal]})
    return {"op": "and", "children": children} if children else None


def predicate(json_hints: str | None, sql_hints: Sequence[str] | None) -> dict[str, Any] | None:
    """The hints as one expression tree (None: no usable hint, every file is kept)."""
    tree: Any = None
    if json_hints and len(json_hints) <= MAX_HINT_CHARS:
        try:
            tree = json.loads(json_hints)
        except ValueError:
            tree = None
    sql = _from_sql(sql_hints or ())
    parts = [t for t in (tree if isinstance(tree, dict) else None, sql) if t is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"op": "and", "children": parts}


def prune(files: Sequence[FileEntry], tree: dict[str, Any] | None) -> list[FileEntry]:
    if tree is None:
        return list(files)
    return [f for f in files if _may_match(tree, _stats(f))]
