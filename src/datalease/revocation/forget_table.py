"""The `forget` table of a share: one row per subject the partner must forget (keys only).

Written with the batch that withdrew the rows; entries already in the table are skipped, so a retried
batch adds nothing twice. Appends only: the rows are written by Arrow with plain string types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, write_deltalake

from datalease.platform.lake import delta_dataset
from datalease.releases.delta import TABLE_CONFIGURATION, row_count
from datalease.releases.support_tables import FORGET, SUPPORT_IDENTITY
from datalease.revocation.model import ForgetEntry

TABLE: Final = FORGET
IDENTITY: Final = SUPPORT_IDENTITY[FORGET]
TS: Final = pa.timestamp("us", tz="UTC")
SCHEMA: Final = pa.schema(
    [
        pa.field("forget_id", pa.string()),
        pa.field("subject_key", pa.string()),
        pa.field("scope", pa.string()),
        pa.field("reason_code", pa.string()),
        pa.field("requested_at", TS),
        pa.field("deadline", TS),
    ]
)

__all__ = ["IDENTITY", "SCHEMA", "TABLE", "row_count", "write_forget"]


def _rows(entries: Sequence[ForgetEntry]) -> pa.Table:
    return pa.table(
        {
            "forget_id": [e.forget_id for e in entries],
            "subject_key": [e.subject_key for e in entries],
            "scope": [e.scope for e in entries],
            "reason_code": [e.reason_code for e in entries],
            "requested_at": [e.requested_at for e in entries],
            "deadline": [e.deadline for e in entries],
        },
        schema=SCHEMA,
    )


def write_forget(path: Path, entries: Sequence[ForgetEntry], commit_info: Mapping[str, str]) -> int:
    """Add the entries not in the table yet (one commit, none if all are there); the version after."""
    rows = _rows(entries)
    properties = CommitProperties(custom_metadata=dict(commit_info))
    if not DeltaTable.is_deltatable(str(path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(
            str(path), rows, mode="error", configuration=TABLE_CONFIGURATION, commit_properties=properties
        )
        return int(DeltaTable(str(path)).version())
    table = DeltaTable(str(path))
    present = delta_dataset(table, SCHEMA).to_table(columns=["forget_id"])["forget_id"]
    fresh = rows.filter(pc.invert(pc.is_in(rows["forget_id"], value_set=present)))
    if fresh.num_rows:
        write_deltalake(table, fresh, mode="append", commit_properties=properties)
    return int(DeltaTable(str(path)).version())
