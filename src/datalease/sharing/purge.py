"""Physical purge: files that no visible version needs and that left the table longer ago than the
agreement's retention window are deleted from disk.

delta-rs' `vacuum` would do the deleting but also commits to the table's log, which would make the
next release build believe a build died halfway; the Delta log already says which files are dead
and since when, so the purge reads it and unlinks them. Change-data files (`_change_data/`) carry
the full rows a commit deleted, so they go too once their commit is older than the window; the
change feed then starts after the last purged version (the server answers 400 before that).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

from datalease.releases import delta
from datalease.sharing.deltalog import LogError, read_commit


@dataclass(frozen=True)
class PurgeResult:
    table: str
    files: int
    bytes: int


def purge_table(path: Path, cache: Path, *, retention: timedelta, now: datetime) -> PurgeResult:
    latest = delta.table_version(path)
    if latest is None:
        return PurgeResult(path.name, 0, 0)
    cutoff_ms = int((now - retention).timestamp() * 1000)
    live: set[str] = set()
    dead: set[str] = set()
    referenced: set[str] = set()
    for version in range(latest + 1):
        try:
            commit = read_commit(path, version)
        except LogError:  # cleaned up below a checkpoint: what it removed was purged long ago
            continue
        for removed in commit.removes:
            live.discard(removed)
            if commit.timestamp < cutoff_ms:
                dead.add(removed)
        for added in commit.adds:
            referenced.add(added.path)
            live.add(added.path)
            dead.discard(added.path)
        if commit.timestamp < cutoff_ms:
            dead.update(c.path for c in commit.cdcs)
    doomed = [path / unquote(relative) for relative in sorted(dead - live)]
    doomed += _orphans(path, referenced, cutoff_ms)
    files = 0
    size = 0
    for target in doomed:
        if target.is_file():
            size += target.stat().st_size
            target.unlink()
            files += 1
    _drop_change_caches(cache)
    return PurgeResult(path.name, files, size)


def _orphans(path: Path, referenced: set[str], cutoff_ms: int) -> list[Path]:
    """Data files no commit ever referenced (a writer killed between writing and committing), and
    staging directories, once older than the window."""
    found: list[Path] = []
    known = {unquote(r) for r in referenced}
    for file in path.rglob("*.parquet"):
        relative = file.relative_to(path).as_posix()
        if relative.startswith(("_delta_log/", "_change_data/")) or relative in known:
            continue
        if file.stat().st_mtime * 1000 < cutoff_ms:
            found.append(file)
    return found


def _drop_change_caches(cache: Path) -> None:
    """Served change files and transitions are rebuilt on demand; dropping them keeps no copy of
    purged rows (a transition whose files are gone then answers 400)."""
    if cache.is_dir():
        for child in cache.iterdir():
            if child.is_dir() and (child.name.startswith("e") or child.name in ("transitions", "removed")):
                shutil.rmtree(child, ignore_errors=True)
