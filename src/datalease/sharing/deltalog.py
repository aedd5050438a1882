"""The Delta log of a release table, read commit by commit.

The sharing protocol speaks in log actions (which files a version adds, removes, or carries as change
data), so the server reads `_delta_log/NNN.json` itself. Commits are immutable once written, which
makes every parsed commit and every replayed snapshot cacheable for the life of the process.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the table directory, unquoted
    size: int
    modification_time: int
    num_records: int | None
    stats: str | None


@dataclass(frozen=True)
class Commit:
    version: int
    timestamp: int  # milliseconds since the epoch
    adds: tuple[FileEntry, ...]
    removes: tuple[str, ...]
    cdcs: tuple[FileEntry, ...]
    metadata: dict[str, Any] | None
    protocol: dict[str, Any] | None
    info: dict[str, Any]  # the commitInfo action (operation, custom metadata such as datalease.kind)

    data_removes: bool = False  # a remove action with dataChange (not a compaction's)

    @property
    def removes_rows(self) -> bool:
        """Rows may have left the table in this commit (a delete, an update, a rewrite); a compaction
        (dataChange false) moves rows without removing any."""
        return self.data_removes


class LogError(RuntimeError):
    """A release table's log is missing a commit or is unreadable."""


def commit_path(table: Path, version: int) -> Path:
    return table / "_delta_log" / f"{version:020d}.json"


def _entry(action: dict[str, Any]) -> FileEntry:
    stats = action.get("stats")
    records: int | None = None
    if stats:
        records = json.loads(stats).get("numRecords")
    return FileEntry(
        path=action["path"],
        size=int(action.get("size", 0)),
        modification_time=int(action.get("modificationTime", 0)),
        num_records=records,
        stats=stats,
    )


def read_commit(table: Path, version: int) -> Commit:
    path = commit_path(table, version)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise LogError(f"{table.name}: commit {version} is missing from the Delta log") from exc
    timestamp: int | None = None
    info: dict[str, Any] = {}
    adds: list[FileEntry] = []
    removes: list[str] = []
    cdcs: list[FileEntry] = []
    metadata: dict[str, Any] | None = None
    protocol: dict[str, Any] | None = None
    data_removes = False
    for line in lines:
        if not line.strip():
            continue
        action = json.loads(line)
        if "commitInfo" in action:
            info = action["commitInfo"]
            timestamp = info.get("timestamp")
        elif "add" in action:
            adds.append(_entry(action["add"]))
        elif "remove" in action:
            removes.append(action["remove"]["path"])
            data_removes = data_removes or bool(action["remove"].get("dataChange", True))
        elif "cdc" in action:
            cdcs.append(_entry(action["cdc"]))
        elif "metaData" in action:
            metadata = action["metaData"]
        elif "protocol" in action:
            protocol = action["protocol"]
    if timestamp is None:
        timestamp = int(path.stat().st_mtime * 1000)
    return Commit(
        version,
        int(timestamp),
        tuple(adds),
        tuple(removes),
        tuple(cdcs),
        metadata,
        protocol,
        info,
        data_removes,
    )


@dataclass
class _Snapshot:
    version: int
    files: dict[str, FileEntry]
    metadata: dict[str, Any]
    protocol: dict[str, Any]


@dataclass
class TableLog:
    """Parsed commits and replayed snapshots of one table (thread-safe)."""

    path: Path
    _commits: dict[int, Commit] = field(default_factory=dict)
    _snapshots: dict[int, _Snapshot] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def commit(self, version: int) -> Commit:
        with self._lock:
            cached = self._commits.get(version)
        if cached is not None:
            return cached
        commit = read_commit(self.path, version)
        with self._lock:
            self._commits[version] = commit
        return commit

    def _snapshot(self, version: int) -> _Snapshot:
        with self._lock:
            if version in self._snapshots:
                return self._snapshots[version]
            below = [v for v in self._snapshots if v < version]
            start = self._snapshots[max(below)] if below else None
        if start is None:
            files: dict[str, FileEntry] = {}
            metadata: dict[str, Any] = {}
            protocol: dict[str, Any] = {}
            first = 0
        else:
            files, metadata, protocol = dict(start.files), start.metadata, start.protocol
            first = start.version + 1
        for v in range(first, version + 1):
            commit = self.commit(v)
            for removed in commit.removes:
                files.pop(removed, None)
            for added in commit.adds:
                files[added.path] = added
            metadata = commit.metadata or metadata
            protocol = commit.protocol or protocol
        snapshot = _Snapshot(version, files, metadata, protocol)
        with self._lock:
            self._snapshots[version] = snapshot
            while len(self._snapshots) > 8:
                del self._snapshots[min(self._snapshots)]
        return snapshot

    def files(self, version: int) -> list[FileEntry]:
        """The data files of `version`, in path order."""
        snapshot = self._snapshot(version)
        return [snapshot.files[p] for p in sorted(snapshot.files)]

    def has_file(self, version: int, path: str) -> bool:
        return path in self._snapshot(version).files

    def metadata(self, version: int) -> dict[str, Any]:
        return self._snapshot(version).metadata


class LogCache:
    """One TableLog per table path for the whole process."""

    def __init__(self) -> None:
        self._logs: dict[Path, TableLog] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> TableLog:
        with self._lock:
            log = self._logs.get(path)
            if log is None:
                log = self._logs[path] = TableLog(path)
            return log
