"""The sharing server's logic, free of HTTP: who is calling, what they may see, which files answer.

The router (router.py) turns requests into calls here and results into protocol lines.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import unquote

from datalease.licensing.registry import get_agreement
from datalease.licensing.rights import table_properties
from datalease.sharing import errors
from datalease.sharing.answers import AnswerCache
from datalease.sharing.callers import Caller, Callers
from datalease.sharing.catalogue import CatalogueCache, Version
from datalease.sharing.changes import ChangeFile, PurgedVersionError, change_file, drop_stale_epochs
from datalease.sharing.deltalog import FileEntry, LogCache
from datalease.sharing.model import Usage
from datalease.sharing.signing import BadSignatureError, SignedRequest, signed_url, signing_key, verify
from datalease.sharing.tables import (
    SCHEMA,
    SharedTable,
    open_now,
    share_listing,
    shared_tables,
)
from datalease.sharing.usagelog import UsageLog
from datalease.store.releases import catalogue_version
from datalease.timeparse import TimeFormatError, parse_instant, utc_now
from datalease.workspace import Workspace

CHANGES_DIR: Final = "_changes"
DEFAULT_URL_LIFETIME_S: Final = 3600
_T = TypeVar("_T")


@dataclass(frozen=True)
class ServedFile:
    path: Path
    share: str
    table: str
    partner: str


def share_id(share: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"datalease:share:{share}"))


def file_id(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()[:32]


class SharingService:
    def __init__(self, ws: Workspace, *, url_lifetime_s: int = DEFAULT_URL_LIFETIME_S) -> None:
        self.ws = ws
        self.logs = LogCache()
        self.key = signing_key(ws.master_key)
        self.url_lifetime_s = url_lifetime_s
        self._catalogue = CatalogueCache()
        self.usage = UsageLog(ws)
        self.answers = AnswerCache(url_lifetime_s)
        self.callers = Callers(ws)

    # --- catalogue --------------------------------------------------------------------------

    def catalogue_now(self) -> Version:
        with self.ws.session() as session:
            return catalogue_version(session)

    def _cached(self, name: str, compute: Callable[[], _T], version: Version | None) -> _T:
        """`compute()` cached while the catalogue is unchanged (at the version the request read with its
        token, else one cheap query)."""
        return self._catalogue.get(name, compute, self.catalogue_now() if version is None else version)

    def known_table(self, caller: Caller, share: str, schema: str, name: str) -> SharedTable | None:
        """`table(...)` when this process already holds the answer for the caller's catalogue version,
        without any I/O (an event loop may call it); None when `table` must be asked."""
        if caller.catalogue is None or schema.lower() != SCHEMA.lower():
            return None
        listing = self._catalogue.peek(f"shares:{caller.partner}", caller.catalogue)
        if not isinstance(listing, list):
            return None
        found = next((s for s in open_now(listing, utc_now()) if s.lower() == share.lower()), None)
        tables = None if found is None else self._catalogue.peek(f"tables:{found}", caller.catalogue)
        if not isinstance(tables, list):
            return None
        return next((t for t in tables if t.name.lower() == name.lower()), None)

    def shares(self, caller: Caller) -> list[str]:
        def compute() -> list[tuple[str, datetime | None]]:
            with self.ws.session() as session:
                return share_listing(session, caller.partner)

        # Cached with when each closes: a terminated share closes at its deadline, cache or not.
        listing = self._cached(f"shares:{caller.partner}", compute, caller.catalogue)
        return open_now(listing, utc_now())

    def canonical_share(self, caller: Caller, share: str) -> str:
        """The share's name as stored; names are case-insensitive (PROTOCOL.md)."""
        wanted = share.lower()
        found = next((s for s in self.shares(caller) if s.lower() == wanted), None)
        if found is None:
            raise errors.not_found(f"share {share!r} does not exist")
        return found

    def require_share(self, caller: Caller, share: str) -> None:
        self.canonical_share(caller, share)

    def require_schema(self, caller: Caller, share: str, schema: str) -> None:
        self.require_share(caller, share)
        if schema.lower() != SCHEMA.lower():
            raise errors.not_found(f"schema {schema!r} does not exist in share {share!r}")

    def tables(self, caller: Caller, share: str) -> list[SharedTable]:
        return self._tables(self.canonical_share(caller, share), caller.catalogue)

    def _tables(self, share: str, catalogue: Version | None) -> list[SharedTable]:
        """The share's tables; the caller has checked that it may see the share."""

        def compute() -> list[SharedTable]:
            with self.ws.session() as session:
                found = shared_tables(session, self.ws.share_dir(share), share, self.logs)
                agreement = get_agreement(session, share, self.ws.require_policy()) if found else None
            if agreement is not None:  # the rights as the agreement says them now
                found = [
                    replace(t, properties=tuple(sorted(table_properties(agreement, t.name).items())))
                    for t in found
                ]
            return sorted(found, key=lambda t: t.name)

        return self._cached(f"tables:{share}", compute, catalogue)

    def table(self, caller: Caller, share: str, schema: str, name: str) -> SharedTable:
        self.require_schema(caller, share, schema)
        for table in self._tables(self.canonical_share(caller, share), caller.catalogue):
            if table.name.lower() == name.lower():
                return table
        raise errors.not_found(f"table {share}.{schema}.{name} does not exist")

    def card(self, caller: Caller, share: str) -> str:
        path = self.ws.share_dir(self.canonical_share(caller, share)) / "README.md"
        if not path.exists():
            raise errors.not_found(f"share {share!r} has no dataset card yet")
        return path.read_text(encoding="utf-8")

    # --- versions ---------------------------------------------------------------------------

    def snapshot_version(self, table: SharedTable, version: int | None, timestamp: str | None) -> int:
        if version is not None and timestamp is not None:
            raise errors.invalid("give either version or timestamp, not both")
        if version is None and timestamp is None:
            return table.latest
        floor = table.floor()
        if version is not None:
            if version < 0 or version > table.latest:
                raise errors.invalid(
                    f"version {version} of table {table.name} does not exist; the latest is {table.latest}"
                )
            if version not in table.released:
                raise errors.invalid(
                    f"version {version} of table {table.name} was not published by a release; "
                    f"readable versions: {_listing(table.readable())}"
                )
            chosen = version
        else:
            at_ms = _millis(timestamp or "", "timestamp")
            # Every released version still in the log: a timestamp below the floor is named as such.
            released = [v for v in table.released if table.log.available(v)]
            candidates = [v for v in released if table.log.timestamp(v) <= at_ms]
            if not candidates:
                first = _iso(table.log.timestamp(released[0] if released else table.latest))
                raise errors.invalid(
                    f"timestamp {timestamp} is before the first release of {table.name} ({first})"
                )
            chosen = candidates[-1]
        if chosen < floor:
            raise errors.invalid(
                f"version {chosen} of table {table.name} is below its history floor: rows it held have been "
                f"revoked since; the oldest readable version is {floor}"
            )
        return chosen

    def starting_version(self, table: SharedTable, timestamp: str) -> int:
        """The first version committed at or after `timestamp` (for `/version?startingTimestamp`)."""
        at_ms = _millis(timestamp, "startingTimestamp")
        for version in (v for v in table.released if table.log.available(v)):
            if table.log.timestamp(version) >= at_ms:
                return version
        raise errors.invalid(
            f"startingTimestamp {timestamp} is after the latest version {table.latest} of {table.name} "
            f"({_iso(table.log.timestamp(table.latest))})"
        )

    def change_range(
        self,
        table: SharedTable,
        starting_version: int | None,
        ending_version: int | None,
        starting_timestamp: str | None,
        ending_timestamp: str | None,
    ) -> tuple[int, int]:
        if (starting_version is None) == (starting_timestamp is None):
            raise errors.invalid("give exactly one of startingVersion or startingTimestamp")
        if ending_version is not None and ending_timestamp is not None:
            raise errors.invalid("give at most one of endingVersion or endingTimestamp")
        start = (
            starting_version
            if starting_version is not None
            else self.starting_version(table, starting_timestamp or "")
        )
        if start < 0 or start > table.latest:
            raise errors.invalid(
                f"startingVersion {start} is outside table {table.name}'s versions 0..{table.latest}"
            )
        end = table.latest
        if ending_version is not None:
            if ending_version > table.latest:
                raise errors.invalid(
                    f"endingVersion {ending_version} is after the latest version {table.latest} of {table.name}"
                )
            end = ending_version
        elif ending_timestamp is not None:
            at_ms = _millis(ending_timestamp, "endingTimestamp")
            before = [v for v in table.released if table.log.available(v) and table.log.timestamp(v) <= at_ms]
            if not before:
                raise errors.invalid(
                    f"endingTimestamp {ending_timestamp} is before the first version of {table.name}"
                )
            end = before[-1]
        if end < start:
            raise errors.invalid(f"the ending version {end} is before the starting version {start}")
        return start, end

    # --- files ------------------------------------------------------------------------------

    def snapshot_files(
        self,
        table: SharedTable,
        version: int,
        limit: int | None,
        prune: Callable[[list[FileEntry]], list[FileEntry]] | None = None,
    ) -> list[FileEntry]:
        """The version's files, pruned by the predicate hints first, then cut at `limitHint` rows."""
        files = table.log.files(version)
        if prune is not None:
            files = prune(files)
        if limit is None:
            return files
        chosen: list[FileEntry] = []
        rows = 0
        for entry in files:
            if rows >= limit:
                break
            chosen.append(entry)
            if entry.num_records is None:  # without stats we cannot stop early
                return files
            rows += entry.num_records
        return chosen

    def change_files(self, table: SharedTable, start: int, end: int) -> Iterator[ChangeFile]:
        epoch = table.last_removal() or 0
        cache = self.cache_dir(table)
        drop_stale_epochs(cache, epoch)
        for version in (v for v in table.released if start <= v <= end):  # released transitions only
            try:
                found = change_file(table, version, epoch, cache)
            except PurgedVersionError as exc:
                raise errors.invalid(
                    f"the changes of version {exc.version} of table {table.name} were purged after the "
                    f"agreement's retention window; start from a later version"
                ) from exc
            if found is not None:
                yield found

    def cache_dir(self, table: SharedTable) -> Path:
        return self.ws.sharing_cache_dir(table.share, table.name)

    def expiry(self) -> int:
        return int(time.time()) + self.url_lifetime_s

    def url(self, base: str, caller: Caller, table: SharedTable, relative: str, expires: int) -> str:
        return signed_url(base, self.key, f"{table.share}/{table.name}/{relative}", caller.token_id, expires)

    def open_file(self, path: str, params: dict[str, str]) -> ServedFile:
        """Check a signed file URL and find the file, refusing anything revoked since it was signed."""
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts) or "\\" in path or len(parts) < 3:
            raise errors.invalid(f"file path {path!r} is not a file of a shared table")
        try:
            signed: SignedRequest = verify(self.key, path, params, time.time())
        except BadSignatureError as exc:
            raise errors.forbidden(str(exc)) from exc
        partner = self.callers.file_token_partner(signed.token_id)
        share, name, relative = parts[0], parts[1], "/".join(parts[2:])
        caller = Caller(partner, signed.token_id, self.catalogue_now())
        table = self.table(caller, share, SCHEMA, name)
        gone = errors.not_found(f"file {relative} of table {name} is no longer served: query the table again")
        if relative.startswith(CHANGES_DIR + "/"):
            change = relative.removeprefix(CHANGES_DIR + "/")
            epoch = table.last_removal() or 0
            if not change.startswith(f"e{epoch}/"):
                raise gone
            local = self.cache_dir(table) / change
        else:
            if not table.log.has_file(table.latest, relative):
                raise gone
            local = table.path / unquote(relative)
        if not local.is_file():
            raise gone
        return ServedFile(local, share, name, partner)

    # --- metering ---------------------------------------------------------------------------

    def meter(self, usage: Usage) -> None:
        """Record a protocol request before its answer leaves: one line in this process's usage log,
        folded into the store once a second (sharing/usagelog.py; a kill -9 loses nothing answered)."""
        self.usage.append(usage)

    def meter_download(self, partner: str, share: str, table: str, sent: int) -> None:
        """A file download (or one range of it), logged before its last part is sent."""
        self.usage.append(Usage(partner, share, table, "file", files=1, bytes=sent))

    def flush_downloads(self, *, force: bool) -> None:
        """Fold this process's usage log now (`force`: at shutdown, whatever is pending)."""
        if force:
            self.usage.fold_now()


def _listing(versions: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in versions) or "none"


def _millis(text: str, parameter: str) -> int:
    try:
        return int(parse_instant(text).timestamp() * 1000)
    except TimeFormatError as exc:
        raise errors.invalid(f"{parameter}: {exc}") from exc


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat()
