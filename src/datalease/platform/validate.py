"""Row-level checks of a batch bound for the source lake, vectorised in DuckDB.

The input is a *raw* Arrow table: a `_row` column (the row number people see in the rejects file)
plus the table's columns, each either as text (CSV, JSONL) or already typed (Parquet). `validate`
parses every column to its schema type, applies the domain rules, drops repeated primary keys and
rows pointing at users or posts the lake does not have, and returns the accepted rows in the
table's schema with one `Reject` per refused row (its first problem, in column order).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import duckdb
import pyarrow as pa
import pycountry

from datalease.platform.lake import Lake
from datalease.platform.schemas import (
    ACCOUNT_STATES,
    MAX_HANDLE_CHARS,
    MAX_TEXT_CHARS,
    PRIMARY_KEYS,
    SOURCE_SCHEMAS,
    TS,
    VISIBILITIES,
)

ROW: Final = "_row"
MAX_VALUE_CHARS: Final = 80
COUNTRY_CODES: Final = frozenset(country.alpha_2 for country in pycountry.countries)
# Codes people use that ISO-3166 does not: the hint names the right one.
COUNTRY_HINTS: Final = {"UK": "GB", "EL": "GR", "EU": "a member state's code"}
ENUMS: Final[dict[str, tuple[str, ...]]] = {"account_state": ACCOUNT_STATES, "visibility": VISIBILITIES}
MAX_CHARS: Final = {"text": MAX_TEXT_CHARS, "handle": MAX_HANDLE_CHARS}
# Columns that must name a row already in another lake table: column -> (table, its key).
REFERENCES: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "posts": {"author_id": ("users", "user_id")},
    "likes": {"user_id": ("users", "user_id"), "post_id": ("posts", "post_id")},
    "reposts": {"user_id": ("users", "user_id"), "post_id": ("posts", "post_id")},
    "bookmarks": {"user_id": ("users", "user_id"), "post_id": ("posts", "post_id")},
}

_INTEGER_RE: Final = r"[+-]?[0-9]+"
_DATE_RE: Final = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_ISO_RE: Final = _DATE_RE + r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
_EPOCH_RE: Final = r"[+-]?[0-9]+(\.[0-9]+)?"
# Larger epoch values are almost certainly milliseconds (1e11 seconds is the year 5138).
_MAX_EPOCH_SECONDS: Final = 100_000_000_000
_TIMESTAMP_EXPECTED: Final = (
    "expected an ISO-8601 date-time such as 2024-11-15T09:30:00Z (no zone means UTC) or Unix epoch seconds"
)


@dataclass(frozen=True)
class Reject:
    """One refused input row: where it is, which field, what was expected, and the value given."""

    row: int
    field: str | None
    reason: str
    value: str

    def as_json(self) -> dict[str, object]:
        """The object written to the rejects file."""
        return {"row": self.row, "field": self.field, "reason": self.reason, "value": self.value}


@dataclass(frozen=True)
class Validated:
    """The outcome of `validate`: accepted rows in the table's schema and the refused ones."""

    accepted: pa.Table
    rejects: list[Reject]


def describe_value(value: object) -> str:
    """`repr(value)`, cut to MAX_VALUE_CHARS characters so a rejects file stays readable."""
    try:
        text = repr(value)
    except RecursionError:  # a JSON value nested almost as deep as the decoder allows
        text = f"<a {type(value).__name__} nested too deeply to show>"
    except ValueError:  # an int of more digits than Python turns into text
        text = f"<a number of more than {sys.get_int_max_str_digits():,} digits>"
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def column_type_problem(field: pa.Field, given: pa.DataType) -> str | None:
    """Why a typed (Parquet) column cannot hold `field`'s values, or None if it can be converted."""
    if _is_text(given):
        return None
    target = field.type
    if pa.types.is_integer(target):
        fits = pa.types.is_integer(given)
    elif pa.types.is_timestamp(target):
        fits = pa.types.is_timestamp(given) or pa.types.is_date(given) or _is_number(given)
    elif pa.types.is_date(target):
        fits = pa.types.is_date(given) or pa.types.is_timestamp(given)
    else:
        fits = False
    if fits:
        return None
    return f"column {field.name!r} has type {given}, expected {target} (or text to be parsed)"


def validate(table: str, raw: pa.Table, lake: Lake) -> Validated:
    """Check every row of `raw` for lake table `table`; see the module docstring."""
    schema = SOURCE_SCHEMAS[table]
    positioned = raw.append_column("_pos", pa.array(range(raw.num_rows), pa.int64()))
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("raw", positioned)
        for name, (other, _key) in REFERENCES.get(table, {}).items():
            lake.register(con, other, alias=f"lake_{name}")
        con.execute(f"CREATE TEMP TABLE checked AS {_checked_sql(table, schema, raw.schema)}")
        accepted = con.sql(_accepted_sql(schema)).to_arrow_table()
        problems = con.sql(f"SELECT * FROM checked WHERE _reason IS NOT NULL ORDER BY {ROW}").to_arrow_table()
    finally:
        con.close()
    return Validated(accepted=accepted.cast(schema), rejects=_rejects(raw, problems))


def _checked_sql(table: str, schema: pa.Schema, given: pa.Schema) -> str:
    """Every raw row with its parsed columns and its first problem (`_field`, `_reason`), if any.

    Stages: parse each column; the first column-level problem in schema order; then repeated
    primary keys among the rows still valid (the first occurrence is kept); then references to
    users or posts missing from the lake.
    """
    names = [field.name for field in schema]
    parsed = ", ".join(
        f"{_parse(field, given.field(field.name).type)} AS {_q(field.name)}" for field in schema
    )
    raws = ", ".join(f"{_q(name)} AS {_q('raw_' + name)}" for name in names)
    errors = ", ".join(f"{_error(field)} AS {_q('err_' + field.name)}" for field in schema)
    error_columns = ", ".join(_q("err_" + name) for name in names)
    first_field = " ".join(f"WHEN {_q('err_' + name)} IS NOT NULL THEN '{name}'" for name in names)
    keys = PRIMARY_KEYS[table]
    key_list = ", ".join(_q(key) for key in keys)
    references = REFERENCES.get(table, {})
    dangling = "".join(
        f", {_dangling(name, key)} AS {_q('dangling_' + name)}" for name, (_t, key) in references.items()
    )
    return f"""
        WITH parsed AS (SELECT _pos, {ROW}, {raws}, {parsed} FROM raw),
        column_checked AS (
            SELECT * EXCLUDE ({error_columns}), CASE {first_field} END AS _field, coalesce({error_columns}) AS _reason
            FROM (SELECT *, {errors} FROM parsed)),
        keyed AS (
            SELECT *,
                   _reason IS NULL
                   AND row_number() OVER (PARTITION BY _reason IS NULL, {key_list} ORDER BY {ROW}) > 1 AS _repeated,
                   min({ROW}) OVER (PARTITION BY _reason IS NULL, {key_list}) AS _first_row
            FROM column_checked),
        referenced AS (SELECT *{dangling} FROM keyed)
        SELECT _pos, {ROW}, {", ".join(_q(name) for name in names)}, _reason IS NOT NULL AS _in_column,
               CASE WHEN _reason IS NOT NULL THEN _field
                    WHEN _repeated THEN '{", ".join(keys)}'
                    {_reference_branches(references, lambda name, _other, _key: f"'{name}'")} END AS _field,
               CASE WHEN _reason IS NOT NULL THEN _reason
                    WHEN _repeated THEN 'duplicate primary key ({", ".join(keys)}): row '
                                        || _first_row || ' has the same key and is kept'
                    {_reference_branches(references, _dangling_reason)} END AS _reason
        FROM referenced"""


def _dangling(name: str, key: str) -> str:
    """SQL: true when column `name` holds a value missing from the referenced lake table's `key`."""
    return (
        f"({_q(name)} IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM lake_{name} l WHERE l.{_q(key)} = keyed.{_q(name)}))"
    )


def _reference_branches(references: dict[str, tuple[str, str]], then: Callable[[str, str, str], str]) -> str:
    return " ".join(
        f"WHEN {_q('dangling_' + name)} THEN {then(name, other, key)}"
        for name, (other, key) in references.items()
    )


def _dangling_reason(name: str, other: str, key: str) -> str:
    return (
        f"'expected the {key} of a row in the lake''s {other} table; ' "
        f"|| {_q(name)} || ' is not there (ingest {other} first)'"
    )


def _accepted_sql(schema: pa.Schema) -> str:
    columns = ", ".join(_q(field.name) for field in schema)
    return f"SELECT {columns} FROM checked WHERE _reason IS NULL ORDER BY {ROW}"


def _parse(field: pa.Field, given: pa.DataType) -> str:
    """SQL turning raw column `field` (text, or typed as `given`) into its schema type; NULL where it cannot."""
    column, target = _q(field.name), field.type
    if not _is_text(given):
        return _convert_typed(column, target, given)
    text = f"trim({column})"
    if pa.types.is_integer(target):
        return f"TRY_CAST(CASE WHEN regexp_full_match({text}, '{_INTEGER_RE}') THEN {text} END AS BIGINT)"
    if target == TS:
        return (
            f"CASE WHEN regexp_full_match({text}, '{_ISO_RE}') THEN TRY_CAST({text} AS TIMESTAMPTZ) "
            f"WHEN regexp_full_match({text}, '{_EPOCH_RE}') THEN {_from_epoch(f'TRY_CAST({text} AS DOUBLE)')} END"
        )
    if pa.types.is_date(target):
        return f"CASE WHEN regexp_full_match({text}, '{_DATE_RE}') THEN TRY_CAST({text} AS DATE) END"
    if field.name == "country":
        return f"upper({text})"
    return f"CAST({column} AS VARCHAR)"


def _convert_typed(column: str, target: pa.DataType, given: pa.DataType) -> str:
    """SQL for a Parquet column already typed `given` (checked by `column_type_problem`)."""
    if pa.types.is_integer(target):
        return f"TRY_CAST({column} AS BIGINT)"
    if target == TS and _is_number(given):
        return _from_epoch(f"CAST({column} AS DOUBLE)")
    if target == TS:  # a naive timestamp is read as UTC: the session time zone
        return f"TRY_CAST({column} AS TIMESTAMPTZ)"
    return f"TRY_CAST({column} AS DATE)"


def _from_epoch(seconds: str) -> str:
    return f"CASE WHEN abs({seconds}) < {_MAX_EPOCH_SECONDS} THEN to_timestamp({seconds}) END"


def _error(field: pa.Field) -> str:
    """SQL giving the reason `field` of a parsed row is unacceptable, NULL if it is fine."""
    name = field.name
    value, raw = _q(name), _q("raw_" + name)
    missing = f"'a value is required: {name} cannot be empty or null'" if not field.nullable else "NULL"
    branches = [f"WHEN {raw} IS NULL THEN {missing}", *_unparsable(field)]
    if pa.types.is_string(field.type):
        branches += _text_rules(name, value)
    return f"CASE {' '.join(branches)} END"


def _unparsable(field: pa.Field) -> list[str]:
    """CASE branches explaining why a present raw value did not parse into `field`'s type."""
    value = _q(field.name)
    if pa.types.is_integer(field.type):
        expected = "expected a whole number between -9223372036854775808 and 9223372036854775807"
    elif field.type == TS:
        raw = f"trim(CAST({_q('raw_' + field.name)} AS VARCHAR))"
        too_large = (
            f"WHEN {value} IS NULL AND regexp_full_match({raw}, '{_EPOCH_RE}') "
            f"THEN 'expected Unix epoch seconds; ' || {raw} || ' is too large (milliseconds?)'"
        )
        return [too_large, f"WHEN {value} IS NULL THEN {_sql_str(_TIMESTAMP_EXPECTED)}"]
    elif pa.types.is_date(field.type):
        expected = "expected a date such as 2001-04-30 (YYYY-MM-DD)"
    else:
        return []
    return [f"WHEN {value} IS NULL THEN {_sql_str(expected)}"]


def _text_rules(name: str, value: str) -> list[str]:
    """CASE branches for the rules a text value of column `name` must follow."""
    rules = [f"WHEN contains({value}, chr(0)) THEN 'a NUL character (\\x00) is not allowed in {name}'"]
    if name in MAX_CHARS:
        limit = MAX_CHARS[name]
        rules.append(
            f"WHEN length({value}) > {limit} THEN 'expected at most {limit} characters, got ' || length({value})"
        )
    if name == "handle":
        rules.append(f"WHEN {value} = '' THEN 'expected a non-empty handle'")
    if name == "country":
        rules += _country_rules(value)
    if name in ENUMS:
        allowed = ", ".join(ENUMS[name])
        rules.append(f"WHEN {value} NOT IN ({_sql_list(ENUMS[name])}) THEN 'expected one of {allowed}'")
    return rules


def _country_rules(value: str) -> list[str]:
    expected = "expected an ISO-3166 alpha-2 country code such as US, DE or GB"
    hints = [
        f"WHEN {value} = '{wrong}' THEN {_sql_str(f'{expected} ({wrong} is not one: use {right})')}"
        for wrong, right in COUNTRY_HINTS.items()
    ]
    return [*hints, f"WHEN {value} NOT IN ({_sql_list(sorted(COUNTRY_CODES))}) THEN {_sql_str(expected)}"]


def _rejects(raw: pa.Table, problems: pa.Table) -> list[Reject]:
    """Reject records for the problem rows, quoting the offending value.

    A column problem quotes the value as given; a repeated key or a dangling reference quotes the
    parsed key (a JSON number stays a number).
    """
    rejects = []
    for problem in problems.to_pylist():
        source = problem if not problem["_in_column"] else None
        value = _value(raw, problem["_field"], problem["_pos"], source)
        rejects.append(Reject(problem[ROW], problem["_field"], problem["_reason"], describe_value(value)))
    return rejects


def _value(raw: pa.Table, field: str, position: int, parsed: dict[str, object] | None) -> object:
    """The value of `field` (several, comma-separated, give a tuple): parsed if given, else raw."""
    names = field.split(", ")
    if parsed is not None:
        values = tuple(parsed[name] for name in names)
    else:
        values = tuple(raw.column(name)[position].as_py() for name in names)
    return values[0] if len(values) == 1 else values


def _is_text(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(data_type) or pa.types.is_large_string(data_type) or pa.types.is_null(data_type)
    )


def _is_number(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_integer(data_type) or pa.types.is_floating(data_type))


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_list(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(_sql_str(value) for value in values)
