"""Reading JSONL for ingest: one JSON object per line; a line that is not one (invalid UTF-8, not JSON,
nested too deeply, a field the table does not have, a value of the wrong kind) is one rejected row."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

from datalease.platform.rows import PROGRESS_EVERY, Progress, RawBatch, raw_table, utf8_reason
from datalease.platform.schemas import TS
from datalease.platform.validate import Reject, describe_value

NESTED_TOO_DEEPLY: Final = (
    "nested too deeply: expected one JSON object of plain values (text, numbers, true/false, null)"
)


class _JsonValueError(ValueError):
    """A JSON value of the wrong kind for its column."""


def read_jsonl(data: bytes, schema: pa.Schema, on_progress: Progress) -> RawBatch:
    names = schema.names
    allowed = frozenset(names)
    columns: dict[str, list[str | None]] = {name: [] for name in names}
    converters = [(name, _json_converter(schema.field(name).type)) for name in names]
    numbers: list[int] = []
    rejects: list[Reject] = []
    for number, line in _numbered_lines(data, on_progress):
        try:
            values = _json_row(line, converters, allowed)
        except _RowError as problem:
            rejects.append(Reject(number, problem.field, problem.reason, problem.value))
            continue
        numbers.append(number)
        for name, value in zip(names, values, strict=True):
            columns[name].append(value)
    return RawBatch(raw_table(schema, columns, numbers), rejects)


@dataclass
class _RowError(Exception):
    """A line refused while decoding, before any column is parsed."""

    field: str | None
    reason: str
    value: str


def _numbered_lines(data: bytes, on_progress: Progress) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of each non-blank line."""
    lines = data.removeprefix(b"\xef\xbb\xbf").splitlines()
    for number, line in enumerate(lines, start=1):
        if number % PROGRESS_EVERY == 0:
            on_progress(PROGRESS_EVERY)
        if line.strip():
            yield number, line
    on_progress(len(lines) % PROGRESS_EVERY)


def _json_row(
    line: bytes, converters: list[tuple[str, Callable[[object], str]]], allowed: frozenset[str]
) -> list[str | None]:
    """One JSONL line as text values in schema order; _RowError if it cannot be one."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _RowError(None, utf8_reason(exc), describe_value(line)) from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _RowError(
            None, f"not valid JSON: {exc.msg} at column {exc.colno}", describe_value(text)
        ) from exc
    except ValueError as exc:  # an integer of more digits than Python converts
        reason = (
            f"a number of more than {sys.get_int_max_str_digits():,} digits: expected a row of plain values"
        )
        raise _RowError(None, reason, describe_value(text)) from exc
    except RecursionError as exc:  # the decoder refuses nesting deeper than the interpreter's stack
        raise _RowError(None, NESTED_TOO_DEEPLY, describe_value(text)) from exc
    if not isinstance(obj, dict):
        raise _RowError(None, "expected a JSON object with the row's fields", describe_value(text))
    unexpected = obj.keys() - allowed
    if unexpected:
        first = sorted(unexpected)[0]
        reason = f"unexpected field {first!r}: expected only {', '.join(name for name, _ in converters)}"
        raise _RowError(first, reason, describe_value(obj[first]))
    values: list[str | None] = []
    for name, convert in converters:
        value = obj.get(name)
        try:
            values.append(value if value is None or type(value) is str else convert(value))
        except _JsonValueError as exc:
            raise _RowError(name, str(exc), describe_value(value)) from exc
    if "\\u" in text:
        _require_encodable(values, [name for name, _ in converters])
    return values


def _json_converter(target: pa.DataType) -> Callable[[object], str]:
    """How a non-string, non-null JSON value becomes text for a column of type `target`."""
    numbers_allowed = pa.types.is_integer(target) or target == TS

    def convert(value: object) -> str:
        if numbers_allowed and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _JsonValueError(f"expected {_json_expected(target)}, got JSON {_json_kind(value)}")

    return convert


def _json_expected(target: pa.DataType) -> str:
    if pa.types.is_integer(target):
        return "a whole number"
    if target == TS:
        return "an ISO-8601 date-time string or epoch seconds"
    if pa.types.is_date(target):
        return "a date string such as 2001-04-30"
    return "a string"


def _json_kind(value: object) -> str:
    kinds = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}
    return kinds.get(type(value), type(value).__name__)


def _require_encodable(values: list[str | None], names: list[str]) -> None:
    """Refuse strings holding lone surrogates (from \\ud800-style escapes): they are not Unicode text."""
    for name, value in zip(names, values, strict=True):
        if value is None:
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _RowError(
                name, "not valid Unicode: a lone surrogate escape (\\ud800-\\udfff)", describe_value(value)
            ) from exc
