"""Load a Parquet, CSV or JSONL file into the source lake: good rows in one commit, bad rows reported.

Row numbers in the rejects file (`row`) are what a person finds with an editor:

* CSV and JSONL: the 1-based physical line number in the file. The CSV header is line 1, so the
  first data row is line 2; a CSV record spanning several lines (a quoted newline) is numbered by
  its first line. Blank lines count but are skipped.
* Parquet: the 1-based data row number (the first row is 1).

CSV and JSONL are decoded line by line, so a line that is not valid UTF-8 is one rejected row and
the rest of the file still loads. In CSV an empty field means null.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from datalease.errors import UserError
from datalease.platform.lake import Lake
from datalease.platform.schemas import FORBIDDEN_TABLES, SOURCE_SCHEMAS, TS
from datalease.platform.validate import ROW, Reject, column_type_problem, describe_value, validate

FORMATS: Final = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
PROGRESS_EVERY: Final = 50_000
NESTED_TOO_DEEPLY: Final = (
    "nested too deeply: expected one JSON object of plain values (text, numbers, true/false, null)"
)

Progress = Callable[[int], None]


class IngestError(UserError):
    """A file or table that cannot be ingested at all; nothing was written to the lake."""


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did: rows accepted into `table`, rows rejected and where they are listed."""

    table: str
    accepted: int
    rejected: int
    rejects_path: Path | None
    lake_version: int | None


@dataclass
class RawBatch:
    """The rows read from a file, as text or typed columns plus `_row`, and the rows already refused."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)


def ingest_file(
    lake: Lake,
    table: str,
    path: Path,
    *,
    rejects_path: Path | None = None,
    strict: bool = False,
    on_progress: Progress | None = None,
) -> IngestResult:
    """Validate `path` and upsert its good rows into lake table `table` in one Delta commit.

    Bad rows go to a JSONL rejects file (`rejects_path`, by default `<lake root>/rejects/<table>-<UTC
    time>.jsonl`), one object per row: `row` (see the module docstring), `field`, `reason`, `value`.
    With `strict=True` any bad row means nothing is written to the lake, and a file without good rows
    writes nothing either. File-level problems (an unknown table, an unreadable file, an empty CSV
    file without even a header, a missing column) raise IngestError and write nothing.
    `on_progress` receives the number of rows read since its previous call.
    """
    schema = source_schema(table)
    path = Path(path)
    batch = read_batch(path, schema, on_progress or _ignore)
    validated = validate(table, batch.table, lake)
    rejects = sorted([*batch.rejects, *validated.rejects], key=lambda reject: reject.row)
    written = _write_rejects_if_needed(rejects, rejects_path, lake, table)
    if strict and rejects:
        total = len(rejects) + validated.accepted.num_rows
        raise IngestError(
            f"{path}: {len(rejects)} of {total} rows are invalid, so nothing was written (strict mode); "
            f"the rows and their problems are listed in {written}"
        )
    if validated.accepted.num_rows == 0:  # no commit (and no new table) for nothing
        return IngestResult(table, 0, len(rejects), written, lake.version(table))
    version = lake.upsert(table, validated.accepted)
    return IngestResult(table, validated.accepted.num_rows, len(rejects), written, version)


def source_schema(table: str) -> pa.Schema:
    """The schema of source table `table`; IngestError for direct messages and unknown names."""
    if table.lower() in FORBIDDEN_TABLES:
        raise IngestError(
            f"table {table!r}: direct messages are private conversations; they are never a category "
            f"and can never be ingested"
        )
    if table not in SOURCE_SCHEMAS:
        raise IngestError(f"unknown table {table!r}: expected one of {', '.join(SOURCE_SCHEMAS)}")
    return SOURCE_SCHEMAS[table]


def read_batch(path: Path, schema: pa.Schema, on_progress: Progress) -> RawBatch:
    """Read `path` (format by extension) into a RawBatch; IngestError for file-level problems."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise IngestError(f"{path}: unknown file type {path.suffix!r}: expected {', '.join(FORMATS)}")
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if kind == "parquet":
        return _read_parquet(path, schema, on_progress)
    data = _read_bytes(path)
    if kind == "csv":
        return _read_csv(path, data, schema, on_progress)
    return _read_jsonl(data, schema, on_progress)


# --- Parquet -------------------------------------------------------------------------------------


def _read_parquet(path: Path, schema: pa.Schema, on_progress: Progress) -> RawBatch:
    if path.stat().st_size == 0:
        return RawBatch(_raw_table(schema, {}, []))
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{path}: not a readable Parquet file ({exc})") from exc
    table = _plain_types(table)
    _check_columns(path, table.column_names, schema)
    for column in table.schema:
        problem = column_type_problem(schema.field(column.name), column.type)
        if problem:
            raise IngestError(f"{path}: {problem}")
    on_progress(table.num_rows)
    present = {name: table.column(name) for name in table.column_names}
    return RawBatch(_raw_table(schema, present, range(1, table.num_rows + 1)))


def _plain_types(table: pa.Table) -> pa.Table:
    """Dictionary-encoded and view columns as their plain value types."""
    for index, column in enumerate(table.schema):
        if pa.types.is_dictionary(column.type):
            table = table.set_column(index, column.name, table.column(index).cast(column.type.value_type))
        elif pa.types.is_string_view(column.type):
            table = table.set_column(index, column.name, table.column(index).cast(pa.string()))
    return table


# --- CSV -----------------------------------------------------------------------------------------


def _read_csv(path: Path, data: bytes, schema: pa.Schema, on_progress: Progress) -> RawBatch:
    lines = data.removeprefix(b"\xef\xbb\xbf").splitlines(keepends=True)
    if not any(line.strip() for line in lines):
        raise IngestError(
            f"{path}: the file is empty ({len(data)} bytes); expected a header line naming the columns "
            f"({', '.join(schema.names)}) and then one line per row"
        )
    header = _csv_header(path, lines[0])
    _check_columns(path, header, schema)
    columns: dict[str, list[str | None]] = {name: [] for name in header}
    numbers: list[int] = []
    rejects: list[Reject] = []
    for row, record in _csv_records(lines, rejects, on_progress):
        if len(record) != len(header):
            reason = f"expected {len(header)} fields as in the header, found {len(record)}"
            rejects.append(Reject(row, None, reason, describe_value(",".join(record))))
            continue
        numbers.append(row)
        for name, value in zip(header, record, strict=True):
            columns[name].append(value or None)
    return RawBatch(_raw_table(schema, columns, numbers), rejects)


def _csv_header(path: Path, line: bytes) -> list[str]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: the header line is not valid UTF-8 ({exc.reason})") from exc
    header = [name.strip() for name in next(csv.reader([text]), [])]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise IngestError(f"{path}: the header repeats column(s) {', '.join(repeated)}")
    return header


def _csv_records(
    lines: list[bytes], rejects: list[Reject], on_progress: Progress
) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank CSV record after the header.

    Lines that are not valid UTF-8 become rejects and are left out of the records.
    """
    numbers: list[int] = []  # physical line number of each decoded line handed to the csv reader
    reader = csv.reader(_decoded(lines, numbers, rejects, on_progress))
    consumed = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            rejects.append(Reject(numbers[consumed], None, f"unreadable CSV record: {exc}", ""))
            consumed = reader.line_num
            continue
        first, consumed = numbers[consumed], reader.line_num
        if record:
            yield first, record


def _decoded(
    lines: list[bytes], numbers: list[int], rejects: list[Reject], on_progress: Progress
) -> Iterator[str]:
    """The data lines (after the header) decoded as UTF-8, recording each one's line number."""
    for number, line in enumerate(lines[1:], start=2):
        if number % PROGRESS_EVERY == 0:
            on_progress(PROGRESS_EVERY)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            rejects.append(Reject(number, None, _utf8_reason(exc), describe_value(line)))
            continue
        numbers.append(number)
        yield text
    on_progress(len(lines) % PROGRESS_EVERY)


# --- JSONL ---------------------------------------------------------------------------------------


class _JsonValueError(ValueError):
    """A JSON value of the wrong kind for its column."""


def _read_jsonl(data: bytes, schema: pa.Schema, on_progress: Progress) -> RawBatch:
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
    return RawBatch(_raw_table(schema, columns, numbers), rejects)


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
        raise _RowError(None, _utf8_reason(exc), describe_value(line)) from exc
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


# --- shared --------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read the file ({exc.strerror})") from exc


def _check_columns(path: Path, present: list[str], schema: pa.Schema) -> None:
    """IngestError naming required columns absent from the file, or columns the table does not have."""
    missing = [f.name for f in schema if not f.nullable and f.name not in present]
    if missing:
        raise IngestError(
            f"{path}: required column(s) {', '.join(missing)} missing; expected columns {', '.join(schema.names)}"
        )
    unexpected = [name for name in present if name not in schema.names]
    if unexpected:
        raise IngestError(
            f"{path}: unexpected column(s) {', '.join(unexpected)}; expected only {', '.join(schema.names)}"
        )


def _raw_table(
    schema: pa.Schema, columns: dict[str, list[str | None]] | dict[str, pa.ChunkedArray], rows: Iterable[int]
) -> pa.Table:
    """`_row` plus every schema column: given ones as they are, absent (nullable) ones as nulls."""
    numbers = pa.array(rows, pa.int64())
    arrays: list[pa.Array | pa.ChunkedArray] = [numbers]
    for name in schema.names:
        given = columns.get(name)
        if given is None:
            arrays.append(pa.nulls(len(numbers), pa.string()))
        elif isinstance(given, list):
            arrays.append(pa.array(given, pa.string()))
        else:
            arrays.append(given)
    return pa.Table.from_arrays(arrays, names=[ROW, *schema.names])


def _utf8_reason(exc: UnicodeDecodeError) -> str:
    return f"not valid UTF-8: byte {exc.object[exc.start]:#04x} at position {exc.start + 1} of the line"


def _write_rejects_if_needed(
    rejects: list[Reject], requested: Path | None, lake: Lake, table: str
) -> Path | None:
    """Write the rejects file (temp file + rename) if there are rejects or a path was asked for."""
    if not rejects and requested is None:
        return None
    target = requested or _default_rejects_path(lake, table)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as out:
        for reject in rejects:
            out.write(json.dumps(reject.as_json(), ensure_ascii=False) + "\n")
    temporary.replace(target)
    return target


def _default_rejects_path(lake: Lake, table: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return lake.root / "rejects" / f"{table}-{stamp}.jsonl"


def _ignore(_rows: int) -> None:
    """The default progress callback."""
