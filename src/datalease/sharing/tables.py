"""What a partner may see: one share per active agreement with a release, schema `platform`, a
table per category of the latest release and the support tables (the forget list, the ledger head:
releases/support_tables.py) — and, per table, which versions are readable.

Versions: a table's Delta versions are visible only up to the one the latest release pinned (a
build that died after committing stays invisible). Time travel may reach versions pinned by a
release and at or above the table's history floor: the first released version after the most
recent commit that removed rows. Older versions still hold rows that were revoked since.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy.orm import Session

from datalease.releases.plan import IDENTITY
from datalease.releases.support_tables import FORGET, SUPPORT_IDENTITY
from datalease.sharing.deltalog import TableLog
from datalease.store.bulk import share_closings
from datalease.store.licensing import list_agreements
from datalease.store.releases import list_releases
from datalease.timeparse import utc_now

SCHEMA: Final = "platform"


@dataclass(frozen=True)
class SharedTable:
    share: str  # the agreement id
    name: str  # the category
    path: Path
    released: tuple[int, ...]  # Delta versions pinned by releases, ascending
    log: TableLog
    # Table properties served in the metadata answer's configuration (the rights, licensing/rights.py)
    properties: tuple[tuple[str, str], ...] = ()

    @property
    def latest(self) -> int:
        return self.released[-1]

    def previous_released(self, version: int) -> int | None:
        """The released version before `version` (None for the first)."""
        earlier = [v for v in self.released if v < version]
        return earlier[-1] if earlier else None

    def removes_rows(self, version: int) -> bool:
        """Whether released `version` may have removed rows since the previous released version (any
        commit in between that removed data, counting those of a build that died)."""
        before = self.previous_released(version)
        start = 0 if before is None else before + 1
        # A commit no longer in the log (cleaned up after a checkpoint) may have removed rows.
        return any(
            (facts := self.log.facts(v)) is None or facts.removes_rows for v in range(start, version + 1)
        )

    def changes_data(self, version: int) -> bool:
        """Whether rows may have entered or left between the previous released version and released
        `version` (False when every commit in between is a compaction)."""
        before = self.previous_released(version)
        start = 0 if before is None else before + 1
        return any(
            (facts := self.log.facts(v)) is None or facts.changes_data for v in range(start, version + 1)
        )

    def last_removal(self) -> int | None:
        """The latest released version that removed rows, if any."""
        return next((v for v in reversed(self.released) if self.removes_rows(v)), None)

    def floor(self) -> int:
        """The oldest version a snapshot may be read at: at or after the last removal, and still in
        the log."""
        removal = self.last_removal()
        floor = self.released[0] if removal is None else min(v for v in self.released if v >= removal)
        return next((v for v in self.released if v >= floor and self.log.available(v)), self.latest)

    def readable(self) -> tuple[int, ...]:
        floor = self.floor()
        return tuple(v for v in self.released if v >= floor)

    @property
    def identity(self) -> tuple[str, ...]:
        return SUPPORT_IDENTITY.get(self.name) or IDENTITY[self.name]

    def metadata(self, version: int) -> dict[str, Any]:
        return self.log.metadata(version)

    def partition_columns(self, version: int) -> list[str]:
        return list(self.metadata(version).get("partitionColumns", []))

    def fields(self, version: int) -> list[dict[str, Any]]:
        """The schema's fields as partners see them: partition columns (a storage detail) hidden."""
        metadata = self.metadata(version)
        hidden = set(metadata.get("partitionColumns", []))
        schema = json.loads(metadata["schemaString"])
        return [f for f in schema["fields"] if f["name"] not in hidden]

    def schema_string(self, version: int) -> str:
        return json.dumps({"type": "struct", "fields": self.fields(version)}, separators=(",", ":"))

    def key_columns(self, version: int) -> list[str]:
        return [f["name"] for f in self.fields(version) if f["name"].endswith("_key")]


def share_listing(session: Session, partner: str) -> list[tuple[str, datetime | None]]:
    """The partner's shares that have at least one release, with when each closes: active and
    suspended agreements (None: open), terminated ones and those past their term end until their
    deletion deadline (issue 14)."""
    closings = share_closings(session)
    out: list[tuple[str, datetime | None]] = []
    for record in list_agreements(session, partner=partner):
        closes = closings.get(record.agreement_id)  # terminated, or past its term end
        if record.status == "draft" or (record.status == "terminated" and closes is None):
            continue
        if list_releases(session, record.agreement_id):
            out.append((record.agreement_id, closes))
    return sorted(out)


def visible_shares(session: Session, partner: str, now: datetime | None = None) -> list[str]:
    """The partner's readable shares by id (see `share_listing`), as of `now`."""
    return open_now(share_listing(session, partner), now or utc_now())


def open_now(listing: list[tuple[str, datetime | None]], now: datetime) -> list[str]:
    return [share for share, closes in listing if closes is None or now < closes]


def shared_tables(session: Session, directory: Path, agreement_id: str, logs: Any) -> list[SharedTable]:
    """The tables of the agreement's latest release (and its forget list, once there is one; the
    ledger head from the first build that wrote it), each with the versions releases pinned."""
    releases = list_releases(session, agreement_id)
    if not releases:
        return []
    current = {t.category: t.table_version for t in releases[-1].tables}
    for release in releases:
        forget = release.table(FORGET)
        if forget is not None:
            current[FORGET] = max(current.get(FORGET, -1), forget.table_version)
    tables = []
    for category, latest in sorted(current.items()):
        pinned = sorted(
            {
                t.table_version
                for release in releases
                for t in release.tables
                if t.category == category and t.table_version <= latest
            }
        )
        path = directory / category
        tables.append(SharedTable(agreement_id, category, path, tuple(pinned), logs.get(path)))
    return tables
