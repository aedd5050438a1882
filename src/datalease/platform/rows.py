"""What the readers of ingest share: the batch of rows read (as text or typed columns, with their line
numbers) and the rows already refused while reading."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import pyarrow as pa

from datalease.platform.validate import ROW, Reject

PROGRESS_EVERY: Final = 50_000

Progress = Callable[[int], None]


@dataclass
class RawBatch:
    """The rows read from a file, as text or typed columns plus `_row`, and the rows already refused."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)


def raw_table(
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


def utf8_reason(exc: UnicodeDecodeError) -> str:
    return f"not valid UTF-8: byte {exc.object[exc.start]:#04x} at position {exc.start + 1} of the line"
