"""The `ledger_head` table of a share: one row per build, the consent chain's head it was built from.

Every partner so holds a witness of the ledger (issue 15): `datalease consent verify --anchor` checks a
partner's copy of this table against the stored chain, and deleting the last events together with the
chain head no longer goes unnoticed. The row is committed with the build's ledger row, in the same
database transaction, so its `release_id` is the id of the release that pins it; a build that dies
after the Delta commit leaves a row no release pins, and the next build (or revocation batch:
`revocation/withdraw.py` `undo_dead_builds`) restores the pinned version before anything is added.

Only builds add a row: they read the consent ledger. A revocation or optimize release carries its
build's consent watermark unchanged and pins the table as it stands. No personal data: a release id,
instants, the head (seq, hash), the policy version and the category tables' Delta versions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from datalease.releases.delta import TABLE_CONFIGURATION, table_version
from datalease.releases.model import Release, ReleaseTable
from datalease.releases.support_tables import LEDGER_HEAD, is_licensed_data

TABLE: Final = LEDGER_HEAD
TS: Final = pa.timestamp("us", tz="UTC")
SCHEMA: Final = pa.schema(
    [
        pa.field("release_id", pa.int64(), nullable=False),
        pa.field("kind", pa.string()),
        pa.field("as_of", TS),  # the instant the release's consent state and policy are taken at
        pa.field("committed_at", TS),  # when the release was built
        pa.field("consent_seq", pa.int64(), nullable=False),  # the last event the release reflects
        pa.field("consent_hash", pa.string(), nullable=False),  # the chain hash at consent_seq
        pa.field("policy_version", pa.string()),
        pa.field("table_versions", pa.string()),  # JSON {category: Delta version} the release pinned
    ]
)
WHOLE_NUMBER: Final = ("a whole number", pa.types.is_integer)
TEXT: Final = (
    "text (64 hex digits)",
    lambda kind: pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind),
)
# What a witness must have for `consent verify --anchor`: column → (what is expected, its Arrow types).
REQUIRED: Final[dict[str, tuple[str, Callable[[pa.DataType], bool]]]] = {
    "release_id": WHOLE_NUMBER,
    "consent_seq": WHOLE_NUMBER,
    "consent_hash": TEXT,
}
PARTNERKIT_FILE: Final = "ledger_head.parquet"  # what `partnerkit sync` keeps in its directory


class LedgerHeadError(ValueError):
    """A file or folder that is not a readable ledger_head table."""


def head_row(release: Release, release_id: int) -> pa.Table:
    versions = {t.category: t.table_version for t in release.tables if is_licensed_data(t.category)}
    return pa.table(
        {
            "release_id": [release_id],
            "kind": [release.kind],
            "as_of": [release.as_of],
            "committed_at": [release.built_at],
            "consent_seq": [release.consent_watermark],
            "consent_hash": [release.consent_head_hash],
            "policy_version": [release.policy_version],
            "table_versions": [json.dumps(versions, sort_keys=True, separators=(",", ":"))],
        },
        schema=SCHEMA,
    )


def append_head(
    path: Path, row: pa.Table, *, pinned: ReleaseTable | None, commit_info: Mapping[str, str]
) -> ReleaseTable:
    """Append the release's row, first undoing the commits of builds that died (`pinned`: the table as
    the agreement's last release pinned it); the table as it now stands. It runs inside the release
    row's transaction, so the log is opened as few times as it can be."""
    properties = CommitProperties(custom_metadata=dict(commit_info))
    if pinned is None:  # the first build with the table, or only dead builds wrote it (no release pins)
        path.parent.mkdir(parents=True, exist_ok=True)
        exists = DeltaTable.is_deltatable(str(path))
        write_deltalake(
            str(path),
            row,
            mode="overwrite" if exists else "error",
            configuration=None if exists else TABLE_CONFIGURATION,
            commit_properties=properties,
        )
        total = row.num_rows
    else:
        table = DeltaTable(str(path))
        if table.version() != pinned.table_version:
            table.restore(pinned.table_version)
        write_deltalake(table, row, mode="append", commit_properties=properties)
        total = pinned.rows_total + row.num_rows
    version = table_version(path)
    assert version is not None
    return ReleaseTable(TABLE, version, total, row.num_rows, 0, 1, 0)


def read_witness(path: Path) -> pa.Table:
    """A partner's copy: a ledger_head Delta table, a Parquet file, or a partnerkit directory (or a
    folder of Parquet files). LedgerHeadError names what is wrong."""
    target = path / PARTNERKIT_FILE if (path / PARTNERKIT_FILE).is_file() else path
    try:
        if target.is_dir() and (target / "_delta_log").is_dir():
            rows = DeltaTable(str(target)).to_pyarrow_table()
        elif target.is_file() or any(target.glob("*.parquet")):
            rows = pq.read_table(target)
        else:
            raise LedgerHeadError(
                f"{path}: not a ledger_head table: expected a Delta table (a _delta_log folder), a "
                f"Parquet file, or a partnerkit directory holding {PARTNERKIT_FILE}"
            )
    except (OSError, pa.ArrowException, DeltaError) as exc:
        raise LedgerHeadError(f"{path}: not a readable ledger_head table ({exc})") from exc
    for name, (expected, typed) in REQUIRED.items():
        if name not in rows.schema.names:
            raise LedgerHeadError(
                f"{path}: not a ledger_head table: column {name} is missing (expected {expected})"
            )
        kind = rows.schema.field(name).type
        if not typed(kind):
            raise LedgerHeadError(f"{path}: column {name} is {kind}, expected {expected}")
    if rows.num_rows == 0:
        raise LedgerHeadError(f"{path}: the ledger_head table has no rows (expected one per release)")
    return rows
