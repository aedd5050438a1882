"""What `POST /query` answers, free of HTTP: the files of a snapshot (pruned by the predicate hints,
cut at `limitHint`), or the files removed and added per version from `startingVersion` (what Spark's
streaming source asks after its first snapshot), encoded once as the answer's lines (answers.py keeps
them for reuse)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from datalease.sharing import errors, protocol, pruning, streaming
from datalease.sharing.answers import Answer
from datalease.sharing.callers import Caller
from datalease.sharing.protocol import PREFIX
from datalease.sharing.service import SharingService, file_id
from datalease.sharing.tables import SharedTable


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    predicate_hints: list[str] | None = Field(default=None, alias="predicateHints")
    json_predicate_hints: str | None = Field(default=None, alias="jsonPredicateHints")
    limit_hint: int | None = Field(default=None, alias="limitHint", ge=0)
    version: int | None = Field(default=None, ge=0)
    timestamp: str | None = None
    # What Spark's streaming source asks after its first snapshot (sharing/streaming.py).
    starting_version: int | None = Field(default=None, alias="startingVersion", ge=0)
    ending_version: int | None = Field(default=None, alias="endingVersion", ge=0)


def answer_key(who: Caller, table: SharedTable, fmt: str, query: QueryBody) -> tuple[object, ...]:
    return (who.token_id, who.catalogue, table.share, table.name, fmt, query.model_dump_json())


def encoded(lines: Iterable[dict[str, Any]]) -> bytes:
    return "".join(protocol.line(item) for item in lines).encode()


def files_base(svc: SharingService) -> str:
    """File URLs point at the configured public endpoint, never at the request's Host header."""
    return svc.ws.settings.endpoint_base + f"{PREFIX}/files"


def snapshot_answer(
    who: Caller, svc: SharingService, table: SharedTable, query: QueryBody, fmt: str
) -> Answer:
    version = svc.snapshot_version(table, query.version, query.timestamp)
    travel = query.version is not None or query.timestamp is not None
    tree = pruning.predicate(query.json_predicate_hints, query.predicate_hints)
    files = svc.snapshot_files(table, version, query.limit_hint, lambda fs: pruning.prune(fs, tree))
    expires = svc.expiry()
    base = files_base(svc)
    stamp = table.log.timestamp(version) if travel else None
    lines = [
        protocol.protocol(fmt),
        protocol.metadata(table, version, fmt, description=description(table), with_version=travel),
        *(
            protocol.data_file(
                fmt,
                file_id=file_id(f"{table.share}/{table.name}/{f.path}"),
                url=svc.url(base, who, table, f.path, expires),
                size=f.size,
                stats=f.stats,
                expires_ms=expires * 1000,
                modification_time=f.modification_time,
                version=version if travel else None,
                timestamp=stamp,
            )
            for f in files
        ),
    ]
    rows = sum(f.num_records or 0 for f in files)
    return Answer(encoded(lines), version, len(files), rows, expires)


def versions_answer(
    who: Caller, svc: SharingService, table: SharedTable, query: QueryBody, fmt: str
) -> Answer:
    """`startingVersion` [+ `endingVersion`]: the files removed and added per released version."""
    if query.starting_version is None:
        raise errors.invalid("endingVersion needs startingVersion")
    if query.version is not None or query.timestamp is not None:
        raise errors.invalid("give either version/timestamp or startingVersion, not both")
    start, end = svc.change_range(table, query.starting_version, query.ending_version, None, None)
    expires = svc.expiry()
    base = files_base(svc)
    lines = [
        protocol.protocol(fmt),
        protocol.metadata(table, start, fmt, description=description(table), with_version=True),
    ]
    listed = rows = 0
    for step in streaming.version_files(table, start, end):
        for action, entries in (("remove", step.removed), ("add", step.added)):
            for f in entries:
                lines.append(
                    protocol.version_file(
                        fmt,
                        action,
                        file_id=file_id(f"{table.share}/{table.name}/{f.path}"),
                        url=svc.url(base, who, table, f.path, expires),
                        size=f.size,
                        stats=f.stats,
                        expires_ms=expires * 1000,
                        modification_time=f.modification_time,
                        version=step.version,
                        timestamp=step.timestamp,
                    )
                )
        listed += len(step.added)
        rows += sum(f.num_records or 0 for f in step.added)
    return Answer(encoded(lines), start, listed, rows, expires)


def description(table: SharedTable) -> str:
    return (
        f"{table.name} of agreement {table.share}: consent-filtered, pseudonymised (keys are per-agreement "
        "HMACs), PII-scrubbed. Deletes in the change feed carry keys only; apply them within the "
        "agreement's deletion SLA. Terms: GET /delta-sharing/shares/{share}/card."
    ).replace("{share}", table.share)
