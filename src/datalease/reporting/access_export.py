"""An access export (GDPR Art. 15): the rows each partner actually received for one person, per
release, recomputed from the agreement's HMAC key and read at each release's table version — never a
second copy. Rows are produced lazily in batches of `BATCH` rows, so memory stays bounded whatever the
person's history. A release table that was purged from the share is listed as unavailable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import duckdb

from datalease.platform.lake import register_delta
from datalease.releases.keys import agreement_secret, user_key
from datalease.releases.support_tables import is_licensed_data
from datalease.store.licensing import list_agreements
from datalease.store.releases import list_releases
from datalease.workspace import Workspace

BATCH: Final = 1_024
HIDDEN: Final = ("bucket",)


@dataclass(frozen=True)
class ExportRow:
    agreement_id: str
    partner: str
    release_id: int
    released_at: dt.datetime
    table: str
    table_version: int
    row: dict[str, Any] | None  # None: the table version is no longer readable (purged)


def plain(value: Any) -> Any:
    """A JSON-ready value."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def export_rows(ws: Workspace, user_id: int) -> Iterator[ExportRow]:
    """Every row of `user_id` each partner received, release by release, table by table."""
    with ws.session() as session:
        records = list_agreements(session)
        history = {r.agreement_id: list_releases(session, r.agreement_id) for r in records}
    con = duckdb.connect()
    try:
        for record in records:
            key = user_key(agreement_secret(ws.master_key, record.agreement_id), user_id)
            for release in history[record.agreement_id]:
                for table in release.tables:
                    if not is_licensed_data(table.category):
                        continue
                    where = (record.agreement_id, record.partner, release.release_id, release.built_at)
                    path = ws.share_dir(record.agreement_id) / table.category
                    try:
                        register_delta(con, "shared", path, version=table.table_version, partitioned=True)
                        query = con.sql("SELECT * FROM shared WHERE user_key = ?", params=[key])
                        reader = query.to_arrow_reader(BATCH)
                        for batch in reader or ():
                            for row in batch.to_pylist():
                                for hidden in HIDDEN:
                                    row.pop(hidden, None)
                                yield ExportRow(*where, table.category, table.table_version, plain(row))
                    except Exception:  # the version was purged or its files vacuumed
                        yield ExportRow(*where, table.category, table.table_version, None)
    finally:
        con.close()
