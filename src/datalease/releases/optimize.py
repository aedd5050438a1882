"""Compaction of a share's tables: the same rows in fewer files, pinned by an `optimize` release.

Revocation batches rewrite a bucket's file every time they delete from it, and the forget list gains
a file per batch, so a share under steady opt-outs collects thousands of small files. `optimize`
merges each bucket's small files with deltalake's compaction (`DeltaTable.optimize.compact`), whose
commit marks every action `dataChange: false`: no row enters or leaves. The release that pins the new
versions carries the previous release's diff base over (watermark, sources, policy, instant), so the
next build diffs against the same rows; the sharing server shows no change for it and the history
floor, which moves only on commits that remove data, stays where it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from deltalake import CommitProperties, DeltaTable, WriterProperties

from datalease.errors import UserError
from datalease.releases import delta
from datalease.releases.model import KIND_OPTIMIZE, Release, ReleaseTable
from datalease.store.releases import latest_release, record_release
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

# The writer's own file size (delta.TARGET_FILE_SIZE): compaction aims at what a build writes.
TARGET_BYTES: Final = 16 * 1024 * 1024


@dataclass(frozen=True)
class Compaction:
    category: str
    files_before: int
    files_removed: int
    files_added: int
    bytes_rewritten: int

    @property
    def files_after(self) -> int:
        return self.files_before - self.files_removed + self.files_added


@dataclass(frozen=True)
class OptimizeResult:
    release: Release | None  # None: nothing to compact, no release recorded
    compactions: tuple[Compaction, ...]


def compact_table(path: Path, agreement_id: str) -> Compaction | None:
    """Merge the table's small files per bucket in one dataChange=false commit (None: nothing to do)."""
    before = delta.table_files(path)
    small = [f for f in before if f.size < TARGET_BYTES]
    buckets = [f.bucket for f in small]
    if all(buckets.count(b) < 2 for b in buckets):
        return None
    metrics = DeltaTable(str(path)).optimize.compact(
        target_size=TARGET_BYTES,
        writer_properties=WriterProperties(compression="ZSTD"),
        commit_properties=CommitProperties(custom_metadata=delta.commit_info(agreement_id, KIND_OPTIMIZE)),
    )
    removed = {f.path for f in before} - {f.path for f in delta.table_files(path)}
    return Compaction(
        path.name,
        len(before),
        int(metrics["numFilesRemoved"]),
        int(metrics["numFilesAdded"]),
        sum(f.size for f in before if f.path in removed),
    )


def optimize(ws: Workspace, agreement_id: str) -> OptimizeResult:
    """Compact every table of the agreement's latest release and pin the result (under the share lock,
    so no build or revocation batch writes meanwhile)."""
    started = time.perf_counter()
    directory = ws.share_dir(agreement_id)
    with ws.share_lock(agreement_id):
        with ws.session() as session:
            previous = latest_release(session, agreement_id)
        if previous is None:
            raise UserError(f"agreement {agreement_id!r} has no release to optimize")
        for pinned in previous.tables:
            current = delta.table_version(directory / pinned.category)
            if current != pinned.table_version:
                raise UserError(
                    f"{agreement_id}.{pinned.category} is at version {current}, release "
                    f"{previous.release_id} pinned {pinned.table_version}: a build or revocation batch "
                    "did not finish; run `datalease revoke process` or the next build first"
                )
        compactions: list[Compaction] = []
        tables: list[ReleaseTable] = []
        for pinned in previous.tables:
            path = directory / pinned.category
            done = compact_table(path, agreement_id)
            if done is None:
                tables.append(replace(pinned, rows_added=0, rows_removed=0, files_added=0, files_removed=0))
                continue
            compactions.append(done)
            version = delta.table_version(path)
            assert version is not None
            tables.append(
                ReleaseTable(
                    pinned.category, version, pinned.rows_total, 0, 0, done.files_added, done.files_removed
                )
            )
        if not compactions:
            return OptimizeResult(None, ())
        with ws.write_session() as session, session.begin():
            release = replace(
                previous,
                release_id=0,
                built_at=utc_now(),
                kind=KIND_OPTIMIZE,
                full_build=False,
                duration_ms=int((time.perf_counter() - started) * 1000),
                excluded={},
                tables=tuple(tables),
            )
            release_id = record_release(session, release)
    return OptimizeResult(replace(release, release_id=release_id), tuple(compactions))
