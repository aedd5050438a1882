"""A release table's Delta log as the sharing protocol needs it.

Snapshots (a version's files, metadata and protocol) come from deltalake (`DeltaTable(path,
version=v)`), which reads checkpoints: a table whose older JSON commits were cleaned up after its log
retention period still answers. What deltalake does not expose — one commit's own actions (what it
added and removed, its commit info and timestamp) — is read here from `_delta_log/<version>.json`;
a version whose JSON is gone is no longer available (time travel and the change feed stop there).
Commits never change once written, so parsed commits and loaded snapshots are cached for the life of
the process.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
from deltalake import DeltaTable

from datalease.releases.delta import stat_value

SNAPSHOTS_KEPT: Final = 8
COMMITS_KEPT: Final = 256


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
    data_adds: bool = False  # an add action with dataChange

    @property
    def changes_data(self) -> bool:
        """Rows entered or left the table (a compaction, all dataChange false, changes none)."""
        return self.data_adds or self.data_removes

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
    data_adds = False
    for line in lines:
        if not line.strip():
            continue
        action = json.loads(line)
        if "commitInfo" in action:
            info = action["commitInfo"]
            timestamp = info.get("timestamp")
        elif "add" in action:
            adds.append(_entry(action["add"]))
            data_adds = data_adds or bool(action["add"].get("dataChange", True))
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
        data_adds,
    )


@dataclass(frozen=True)
class Snapshot:
    version: int
    files: dict[str, FileEntry]
    metadata: dict[str, Any]  # as the log's metaData action spells it
    protocol: dict[str, Any]


def load_snapshot(path: Path, version: int) -> Snapshot:
    """The table at `version`, through deltalake (checkpoints included)."""
    table = DeltaTable(str(path), version=version)
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    files = {a["path"]: _file_entry(a) for a in actions}
    meta = table.metadata()
    protocol = table.protocol()
    metadata = {
        "id": meta.id,
        "name": meta.name,
        "description": meta.description,
        "format": {"provider": "parquet", "options": {}},
        "schemaString": table.schema().to_json(),
        "partitionColumns": list(meta.partition_columns),
        "configuration": dict(meta.configuration),
        "createdTime": meta.created_time,
    }
    return Snapshot(
        version,
        files,
        metadata,
        {"minReaderVersion": protocol.min_reader_version, "minWriterVersion": protocol.min_writer_version},
    )


def _file_entry(action: dict[str, Any]) -> FileEntry:
    """A file of a snapshot, its Delta `stats` rebuilt from deltalake's flattened columns."""
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    for name, value in action.items():
        kind, _, column = name.partition(".")
        if value is None or not column:
            continue
        if kind in ("min", "max"):
            text = stat_value(value, floor=kind == "min")
            if text is not None:
                (minimum if kind == "min" else maximum)[column] = text
        elif kind == "null_count":
            nulls[column] = int(value)
    records = action.get("num_records")
    stats = None
    if records is not None:
        stats = json.dumps(
            {"numRecords": int(records), "minValues": minimum, "maxValues": maximum, "nullCount": nulls},
            separators=(",", ":"),
        )
    return FileEntry(
        path=action["path"],
        size=int(action["size_bytes"]),
        modification_time=int(action["modification_time"]),
        num_records=None if records is None else int(records),
        stats=stats,
    )


@dataclass(frozen=True)
class CommitFacts:
    """What requests ask of every version (a few bytes each, kept for all versions)."""

    timestamp: int
    removes_rows: bool
    changes_data: bool


@dataclass
class TableLog:
    """Parsed commits and loaded snapshots of one table (thread-safe). Whole commits and snapshots are
    kept for the most recent few only, so memory does not grow with the table's history; the facts
    each request scans over all versions (timestamp, whether data changed) are kept for every version."""

    path: Path
    _commits: OrderedDict[int, Commit] = field(default_factory=OrderedDict)
    _facts: dict[int, CommitFacts | None] = field(default_factory=dict)
    _snapshots: dict[int, Snapshot] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def commit(self, version: int) -> Commit:
        with self._lock:
            cached = self._commits.get(version)
            if cached is not None:
                self._commits.move_to_end(version)
                return cached
        commit = read_commit(self.path, version)
        with self._lock:
            self._commits[version] = commit
            self._facts[version] = CommitFacts(commit.timestamp, commit.removes_rows, commit.changes_data)
            while len(self._commits) > COMMITS_KEPT:
                self._commits.popitem(last=False)
        return commit

    def facts(self, version: int) -> CommitFacts | None:
        """The version's facts (None: its commit was cleaned up from the log)."""
        with self._lock:
            if version in self._facts:
                return self._facts[version]
        try:
            commit = self.commit(version)
        except LogError:
            with self._lock:
                self._facts[version] = None
            return None
        return CommitFacts(commit.timestamp, commit.removes_rows, commit.changes_data)

    def timestamp(self, version: int) -> int:
        found = self.facts(version)
        if found is None:
            raise LogError(f"{self.path.name}: commit {version} is missing from the Delta log")
        return found.timestamp

    def available(self, version: int) -> bool:
        """Whether the version's own commit is still in the log (else it was cleaned up)."""
        return self.facts(version) is not None

    def _snapshot(self, version: int) -> Snapshot:
        with self._lock:
            cached = self._snapshots.get(version)
        if cached is not None:
            return cached
        try:
            snapshot = load_snapshot(self.path, version)
        except Exception as exc:  # deltalake raises its own errors for a version it cannot load
            raise LogError(f"{self.path.name}: version {version} cannot be loaded: {exc}") from exc
        with self._lock:
            self._snapshots[version] = snapshot
            while len(self._snapshots) > SNAPSHOTS_KEPT:
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
