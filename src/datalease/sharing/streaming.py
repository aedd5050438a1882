"""`/query` with `startingVersion` [+ `endingVersion`]: what Spark Structured Streaming's (non-CDF)
Delta Sharing source asks after its first snapshot — per *released* version in the range, the files
removed and added since the released version before it, each with that `version` and its commit
`timestamp`.

Redaction is the change feed's (sharing/changes.py): nothing revoked since is handed out. A file added
in the range that the latest version no longer holds is withheld, and so is its later removal (the
client never received it); only files of the latest version are downloadable anyway. So a client that
replays from any version — even one below the history floor — ends exactly at the latest snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from datalease.sharing import errors
from datalease.sharing.deltalog import FileEntry, LogError
from datalease.sharing.tables import SharedTable


@dataclass(frozen=True)
class VersionFiles:
    version: int
    timestamp: int  # ms since the epoch, the version's commit
    removed: list[FileEntry]
    added: list[FileEntry]


def version_files(table: SharedTable, start: int, end: int) -> Iterator[VersionFiles]:
    """Removed and added files per released version in [start, end], redacted against the latest."""
    try:
        latest = {f.path for f in table.log.files(table.latest)}
        base = table.previous_released(start)
        previous = {f.path: f for f in table.log.files(base)} if base is not None else {}
        held = set(previous)  # what a client that read the snapshot before `start` holds
        for version in (v for v in table.released if start <= v <= end):
            current = {f.path: f for f in table.log.files(version)}
            removed = [previous[p] for p in sorted(previous) if p not in current and p in held]
            added = [current[p] for p in sorted(current) if p not in previous and p in latest]
            held.difference_update(f.path for f in removed)
            held.update(f.path for f in added)
            yield VersionFiles(version, table.log.timestamp(version), removed, added)
            previous = current
    except LogError as exc:
        raise errors.invalid(
            f"a version of table {table.name} in {start}..{end} is no longer in its log ({exc}); "
            "start from a later version"
        ) from exc
