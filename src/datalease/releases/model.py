"""The release ledger's records as plain data: a release and the table versions it pins.

A release exists only once its ledger row is committed (see store/releases.py), and nothing is
served that has no row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

# What made a release (and its Delta commits): a build, or a revocation batch (deletes only).
KIND_BUILD: Final = "build"
KIND_REVOCATION: Final = "revocation"
# A compaction: the same rows in fewer files (dataChange false); partners' change feeds show nothing.
KIND_OPTIMIZE: Final = "optimize"


@dataclass(frozen=True)
class ReleaseTable:
    category: str
    table_version: int
    rows_total: int
    rows_added: int
    rows_removed: int
    files_added: int
    files_removed: int


@dataclass(frozen=True)
class Release:
    release_id: int
    agreement_id: str
    built_at: datetime
    as_of: datetime
    policy_revision_id: int
    policy_version: str | None
    agreement_sha256: str
    consent_watermark: int
    source_versions: dict[str, int | None]
    engine: str
    full_build: bool
    duration_ms: int
    excluded: dict[str, int]  # reason code -> rows withheld (estimated when excluded_sample_every > 1)
    excluded_sample_every: int
    tables: tuple[ReleaseTable, ...]
    kind: str = (
        "build"  # build; revocation (deletes only) or optimize (compaction): the diff base carried over
    )
    consent_head_hash: str = ""  # the chain hash at consent_watermark: the ledger's anchor (issue 15)

    def table(self, category: str) -> ReleaseTable | None:
        return next((t for t in self.tables if t.category == category), None)
