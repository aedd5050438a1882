"""Reading a YAML document (a policy file, an agreement file) into located values, within bounds.

The work is bounded before and while the text is parsed, so that hostile text is a located problem
and never a crash or an exhausted machine: at most MAX_DOCUMENT_BYTES of UTF-8, at most
MAX_NESTING_DEPTH levels of nested lists and mappings, and at most MAX_NODES values in all, counting
every repetition by an alias (a "billion laughs" document is a few lines long).
"""

from __future__ import annotations

import sys
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode
from ruamel.yaml.reader import ReaderError

from datalease.policy.problems import (
    MAX_DOCUMENT_BYTES,
    MAX_NESTING_DEPTH,
    MAX_NODES,
    MAX_SHOWN_CHARS,
    Problem,
    ProblemsError,
    Reader,
    shorten,
)


class _Constructor(RoundTripConstructor):
    """ruamel's round-trip constructor, with changes for people.

    Timestamps are read as text, so that an impossible date (2024-13-01) becomes a located problem
    reported by the field holding it instead of aborting the whole document. A value that cannot be
    what its tag says (`!!float abc`, an integer of more digits than Python converts) is a located
    problem instead of a crash.
    """

    def construct_yaml_int(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_int(node)
        except ValueError as exc:
            raise ConstructorError(
                None,
                None,
                f"expected a number of at most {sys.get_int_max_str_digits():,} digits",
                node.start_mark,
            ) from exc

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ConstructorError(
                None, None, f"expected a value its tag can hold ({shorten(str(exc))})", node.start_mark
            ) from exc


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str)
_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)


class _LimitExceededError(MarkedYAMLError):
    """A document that is valid YAML but exceeds a bound of this module; `problem` says which."""


class _BoundedComposer(Composer):
    """ruamel's Composer, refusing a document of more than MAX_NODES values, counting every value an
    alias repeats, and an alias inside the node its anchor names (which would repeat without end).

    The node graph shares an aliased node instead of copying it, but whoever walks the loaded data
    sees every repetition: a ten-line "billion laughs" document is 10**9 values to walk.
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._expanded: dict[int, int] = {}  # id(collection node) -> its values, aliases expanded
        self._values = 0

    def _size(self, node: Node) -> int:
        return self._expanded.get(id(node), 1)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)
            if isinstance(node, CollectionNode) and id(node) not in self._expanded:
                raise _LimitExceededError(
                    None,
                    None,
                    f"expected no alias inside the node its anchor &{event.anchor} names "
                    "(it would repeat without end)",
                    event.start_mark,
                )
            self._count(
                self._size(node), event.start_mark, f"; *{event.anchor} here repeats {self._size(node):,}"
            )
            return node
        self._count(1, event.start_mark, "")
        node = super().compose_node(parent, index)
        if isinstance(node, MappingNode):
            self._expanded[id(node)] = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
        elif isinstance(node, CollectionNode):
            self._expanded[id(node)] = 1 + sum(self._size(item) for item in node.value)
        return node

    def _count(self, values: int, mark: Any, detail: str) -> None:
        self._values += values
        if self._values > MAX_NODES:
            raise _LimitExceededError(
                None,
                None,
                f"expected at most {MAX_NODES:,} values in all (lists, mappings and scalars, counting "
                f"every repetition by an alias){detail}",
                mark,
            )


def document_too_large(source: str) -> Problem:
    """The problem of a document longer than MAX_DOCUMENT_BYTES."""
    return Problem(
        source,
        1,
        1,
        "(document)",
        f"expected at most {MAX_DOCUMENT_BYTES // 1024} KiB ({MAX_DOCUMENT_BYTES:,} bytes) of YAML; "
        "this document is longer",
    )


def decode_document(data: bytes, source: str) -> str:
    """UTF-8 bytes as text; a ProblemsError at the line and column of the first byte that is not UTF-8."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ProblemsError([document_too_large(source)])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        expected = f"expected UTF-8 text, found byte {data[exc.start]:#04x} (is this a binary file?)"
        raise ProblemsError([Problem(source, line, col, "(document)", expected)]) from None


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text within this module's bounds; syntax errors, duplicate keys, forbidden characters
    and exceeded bounds are a located ProblemsError."""
    if (
        len(text) > MAX_DOCUMENT_BYTES // 4
        and len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES
    ):
        raise ProblemsError([document_too_large(source)])
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    yaml.Composer = _BoundedComposer
    yaml.max_depth = MAX_NESTING_DEPTH
    try:
        return yaml.load(text)
    except ReaderError as exc:
        line, col = _line_col(text, exc.position)
        character = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        expected = (
            f"not valid YAML: character {character} is not allowed; expected printable text "
            "(no NUL or other control characters except tab and line breaks)"
        )
        raise ProblemsError([Problem(source, line, col, "(document)", expected)]) from exc
    except MaxDepthExceededError as exc:
        expected = f"expected at most {MAX_NESTING_DEPTH} levels of nested lists, mappings and values"
        raise _located(source, exc, expected) from exc
    except _LimitExceededError as exc:
        raise _located(source, exc, str(exc.problem)) from exc
    except MarkedYAMLError as exc:
        problem = shorten(str(exc.problem or "invalid YAML"), 4 * MAX_SHOWN_CHARS)  # may quote the text
        raise _located(source, exc, f"not valid YAML: {problem}") from exc
    except YAMLError as exc:
        message = shorten(" ".join(str(exc).split()), 4 * MAX_SHOWN_CHARS)
        raise ProblemsError([Problem(source, 1, 1, "(document)", f"not valid YAML: {message}")]) from exc


def _located(source: str, exc: MarkedYAMLError, expected: str) -> ProblemsError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line, mark.column) if mark is not None else (0, 0)
    return ProblemsError([Problem(source, line + 1, col + 1, "(document)", expected)])


def _line_col(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of character `position` of `text`."""
    line_start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, position) + 1, position - line_start + 1


def read_document(text: str, source: str, top_keys: tuple[str, ...]) -> tuple[Reader, CommentedMap]:
    """Parse a YAML document whose top level must be a mapping of `top_keys`; unknown keys are reported.

    Raises ProblemsError at once when the text is not YAML or its top level is not a mapping.
    """
    document = parse_yaml(text, source)
    reader = Reader(source)
    root = reader.mapping(document, "(document)", (0, 0))
    if root is None:
        reader.raise_if_any()
        raise AssertionError("unreachable: a non-mapping document is a reported problem")
    reader.known_keys(root, "", top_keys)
    return reader, root
