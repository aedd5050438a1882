"""Line-accurate problems in YAML documents (policy files, agreement files).

Every problem prints as `FILE:LINE:COL: field: what was expected`, the format editors and CI
annotations understand. The reader collects all problems of a document instead of stopping at the first.

The work of reading a document is bounded before and while it is parsed, so that hostile text is a
located problem and never a crash or an exhausted machine: at most MAX_DOCUMENT_BYTES of UTF-8,
at most MAX_NESTING_DEPTH levels of nested lists and mappings, and at most MAX_NODES values in all,
counting every repetition by an alias (a "billion laughs" document is a few lines long).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, TypeVar

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from datalease.timeparse import TimeFormatError, as_utc, parse_instant

T = TypeVar("T")

MAX_DOCUMENT_BYTES: Final = 256 * 1024  # the example policy is 1.5 KiB
MAX_NESTING_DEPTH: Final = 32  # a policy needs 7: versions → a version → rules → a rule → regions → a name
MAX_NODES: Final = 10_000  # the example policy has 128, an agreement about 50
MAX_SHOWN_CHARS: Final = 80


@dataclass(frozen=True)
class Problem:
    source: str
    line: int  # 1-based
    col: int  # 1-based
    field: str
    expected: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.col}: {self.field}: {self.expected}"


class ProblemsError(ValueError):
    """Raised with every problem found in a document."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Reader:
    """Walks a ruamel round-trip tree, recording problems with their positions."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    # --- positions ------------------------------------------------------------------------------
    def report(self, position: tuple[int, int], field: str, expected: str) -> None:
        self.problems.append(Problem(self.source, position[0] + 1, position[1] + 1, field, expected))

    @staticmethod
    def node_position(node: Any) -> tuple[int, int]:
        lc = getattr(node, "lc", None)
        return (lc.line, lc.col) if lc is not None else (0, 0)

    @staticmethod
    def key_position(mapping: CommentedMap, key: str) -> tuple[int, int]:
        line, col = mapping.lc.key(key)
        return (line, col)

    @staticmethod
    def value_position(mapping: CommentedMap, key: str) -> tuple[int, int]:
        line, col = mapping.lc.value(key)
        return (line, col)

    @staticmethod
    def item_position(seq: CommentedSeq, index: int) -> tuple[int, int]:
        line, col = seq.lc.item(index)
        return (line, col)

    # --- structure ------------------------------------------------------------------------------
    def mapping(self, node: Any, field: str, position: tuple[int, int]) -> CommentedMap | None:
        if isinstance(node, CommentedMap):
            return node
        self.report(position, field, f"expected a mapping of keys to values, got {describe(node)}")
        return None

    def known_keys(self, mapping: CommentedMap, field: str, allowed: tuple[str, ...]) -> None:
        for key in mapping:
            if key not in allowed:
                self.report(
                    self.key_position(mapping, key),
                    join(field, key),
                    f"unknown field; expected one of {', '.join(allowed)}",
                )

    def items(
        self, mapping: CommentedMap, key: str, field: str
    ) -> Iterator[tuple[int, Any, tuple[int, int]]]:
        """Yield (index, item, position) of a list value; report if it is not a list."""
        value = mapping.get(key)
        if value is None:
            return
        if not isinstance(value, CommentedSeq):
            self.report(
                self.value_position(mapping, key), join(field, key), f"expected a list, got {describe(value)}"
            )
            return
        for index, item in enumerate(value):
            yield index, item, self.item_position(value, index)

    def required(self, mapping: CommentedMap, key: str, field: str) -> bool:
        if mapping.get(key) is None:
            self.report(self.node_position(mapping), join(field, key), "required field is missing")
            return False
        return True

    # --- scalars --------------------------------------------------------------------------------
    def scalar(
        self,
        mapping: CommentedMap,
        key: str,
        field: str,
        convert: Callable[[Any], T],
        expected: str,
        default: T,
    ) -> T:
        if key not in mapping or mapping[key] is None:
            return default
        try:
            return convert(mapping[key])
        except (TypeError, ValueError):
            self.report(
                self.value_position(mapping, key),
                join(field, key),
                f"expected {expected}, got {describe(mapping[key])}",
            )
            return default

    def string(self, mapping: CommentedMap, key: str, field: str, default: str = "") -> str:
        return self.scalar(mapping, key, field, _as_str, "a text", default)

    def boolean(self, mapping: CommentedMap, key: str, field: str, default: bool) -> bool:
        return self.scalar(mapping, key, field, _as_bool, "true or false", default)

    def instant(self, mapping: CommentedMap, key: str, field: str) -> datetime | None:
        return self.scalar(
            mapping, key, field, as_instant, "a date (2024-11-15) or an ISO-8601 date-time", None
        )

    def choice(self, mapping: CommentedMap, key: str, field: str, allowed: tuple[str, ...]) -> str | None:
        value = mapping.get(key)
        if value is None:
            return None
        if isinstance(value, str) and value in allowed:
            return value
        self.report(
            self.value_position(mapping, key),
            join(field, key),
            f"expected one of {', '.join(allowed)}, got {describe(value)}",
        )
        return None

    def names(
        self,
        mapping: CommentedMap,
        key: str,
        field: str,
        allowed: tuple[str, ...],
        *,
        any_word: str | None = None,
        allow_empty: bool = True,
    ) -> tuple[str, ...] | None:
        """A list of names from `allowed` (or the single word `any_word`); None when absent."""
        value = mapping.get(key)
        if value is None:
            return None
        if any_word is not None and value == any_word:
            return (any_word,)
        if isinstance(value, str):
            if value in allowed or value == any_word:
                return (value,)
            choices = ", ".join(allowed) + (f" or {any_word!r}" if any_word else "")
            self.report(
                self.value_position(mapping, key),
                join(field, key),
                f"expected one of {choices}, got {describe(value)}",
            )
            return None
        if isinstance(value, CommentedSeq):
            value_list: list[Any] = list(value)
            positions = [self.item_position(value, i) for i in range(len(value))]
            if not value_list and not allow_empty:
                hint = f" (or {any_word!r} for all)" if any_word else ""
                self.report(
                    self.value_position(mapping, key),
                    join(field, key),
                    f"expected at least one name{hint}, got an empty list",
                )
                return None
        else:
            self.report(
                self.value_position(mapping, key),
                join(field, key),
                f"expected a list of names, got {describe(value)}",
            )
            return None
        out: list[str] = []
        choices = ", ".join(allowed) + (f" or {any_word!r}" if any_word else "")
        for index, (item, position) in enumerate(zip(value_list, positions, strict=True)):
            if isinstance(item, str) and (item in allowed or item == any_word):
                if item not in out:
                    out.append(item)
            else:
                self.report(
                    position,
                    f"{join(field, key)}[{index}]",
                    f"expected one of {choices}, got {describe(item)}",
                )
        return tuple(out)

    def raise_if_any(self) -> None:
        if self.problems:
            raise ProblemsError(sorted(self.problems, key=lambda p: (p.line, p.col)))


def join(field: str, key: object) -> str:
    """The dotted name of `key` under `field`; an unprintable or long key is shown quoted and cut."""
    name = shorten(key if key.isprintable() else repr(key)) if isinstance(key, str) else _shown(key, str)
    return f"{field}.{name}" if field else name


def describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, CommentedMap):
        return "a mapping"
    if isinstance(value, CommentedSeq):
        return "a list"
    if isinstance(value, str):
        return shorten(repr(str(value)))
    plain = next(t for t in (bool, int, float, datetime, date, object) if isinstance(value, t))
    shown = plain(value) if plain in (bool, int, float) else value
    return f"{plain.__name__} {_shown(shown, repr)}"


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters, so that a problem quoting a value stays readable."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(value: object, show: Callable[[object], str]) -> str:
    try:
        return shorten(show(value))
    except ValueError:  # an int of more digits than Python turns into text (sys.get_int_max_str_digits)
        return f"of more than {sys.get_int_max_str_digits():,} digits"


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(value)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(value)


def as_instant(value: Any) -> datetime:
    if isinstance(value, datetime | date):
        return as_utc(value)
    if isinstance(value, str):
        if value.strip().lower() == "now":
            raise ValueError("'now' is not a fixed instant: a stored document must read the same every time")
        try:
            return parse_instant(value)
        except TimeFormatError as exc:
            raise ValueError(str(exc)) from exc
    raise TypeError(value)
