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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from datalease.errors import UserError
from datalease.platform.jsonl import read_jsonl
from datalease.platform.lake import Lake
from datalease.platform.rows import PROGRESS_EVERY, Progress, RawBatch, raw_table, utf8_reason
from datalease.platform.schemas import FORBIDDEN_TABLES, SOURCE_SCHEMAS
from datalease.platform.validate import Reject, column_type_problem, describe_value, validate

FORMATS: Final = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


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
    return read_jsonl(data, schema, on_progress)


# --- Parquet -------------------------------------------------------------------------------------


def _read_parquet(path: Path, schema: pa.Schema, on_progress: Progress) -> RawBatch:
    if path.stat().st_size == 0:
        return RawBatch(raw_table(schema, {}, []))
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
    return RawBatch(raw_table(schema, present, range(1, table.num_rows + 1)))


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
    return RawBatch(raw_table(schema, columns, numbers), rejects)


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
            rejects.append(Reject(number, None, utf8_reason(exc), describe_value(line)))
            continue
        numbers.append(number)
        yield text
    on_progress(len(lines) % PROGRESS_EVERY)


# --- JSONL ---------------------------------------------------------------------------------------


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
