"""The `forget` table of a share: one row per subject the partner must forget (keys only).

Written with the batch that withdrew the rows, merged on `forget_id` so a retried batch adds nothing
twice; Change Data Feed on like every release table, so partners can follow it as a feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake

from datalease.releases.delta import TABLE_CONFIGURATION
from datalease.sharing.tables import FORGET_TABLE
from datalease.store.revocation import ForgetEntry

TABLE: Final = FORGET_TABLE
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


def write_forget(path: Path, entries: Sequence[ForgetEntry], commit_info: dict[str, str]) -> int:
    """Add the entries not in the table yet (one commit); the table's version after."""
    rows = _rows(entries)
    properties = CommitProperties(custom_metadata=commit_info)
    if not DeltaTable.is_deltatable(str(path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_deltalake(
            str(path), rows, mode="error", configuration=TABLE_CONFIGURATION, commit_properties=properties
        )
    else:
        (
            DeltaTable(str(path))
            .merge(
                source=rows,
                predicate="t.forget_id = s.forget_id",
                source_alias="s",
                target_alias="t",
                commit_properties=properties,
            )
            .when_not_matched_insert_all()
            .execute()
        )
    return int(DeltaTable(str(path)).version())


def row_count(path: Path) -> int:
    actions = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True))
    return int(pa.compute.sum(actions.column("num_records")).as_py() or 0) if actions.num_rows else 0
