"""The lines of Delta Sharing responses (newline-delimited JSON), in both response formats.

`parquet` is the protocol's own format (`protocol` / `metaData` / `file` objects); `delta` wraps the
Delta log actions the client's Delta kernel replays (`deltaProtocol`, `deltaMetadata`,
`deltaSingleAction`). Partition columns are hidden, so every file has empty partition values.
"""

from __future__ import annotations

import json
from typing import Any, Final

from datalease.sharing.tables import SharedTable

PREFIX: Final = "/delta-sharing"  # where the protocol's endpoints are served
PARQUET: Final = "parquet"
DELTA: Final = "delta"
CDF_CONFIGURATION: Final = {"delta.enableChangeDataFeed": "true"}


def line(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":")) + "\n"


def protocol(fmt: str) -> dict[str, Any]:
    if fmt == DELTA:
        # Writer version 4 is the one that knows the Change Data Feed; the kernel checks it.
        return {"protocol": {"deltaProtocol": {"minReaderVersion": 1, "minWriterVersion": 4}}}
    return {"protocol": {"minReaderVersion": 1}}


def metadata(
    table: SharedTable,
    version: int,
    fmt: str,
    *,
    description: str | None,
    size: int | None = None,
    num_files: int | None = None,
    with_version: bool = False,
) -> dict[str, Any]:
    source = table.metadata(version)
    common: dict[str, Any] = {
        "id": source.get("id"),
        "name": table.name,
        "description": description,
        "schemaString": table.schema_string(version),
        "partitionColumns": [],
        "configuration": {**CDF_CONFIGURATION, **dict(table.properties)},
    }
    stats: dict[str, Any] = {}
    if size is not None:
        stats["size"] = size
    if num_files is not None:
        stats["numFiles"] = num_files
    if fmt == DELTA:
        delta = {
            **common,
            "format": {"provider": "parquet", "options": {}},
            "createdTime": source.get("createdTime"),
        }
        body: dict[str, Any] = {"deltaMetadata": delta, **stats}
    else:
        body = {**common, "format": {"provider": "parquet"}, **stats}
    if with_version:
        body["version"] = version
    return {"metaData": body}


def data_file(
    fmt: str,
    *,
    file_id: str,
    url: str,
    size: int,
    stats: str | None,
    expires_ms: int,
    modification_time: int,
    version: int | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A file of a snapshot (`add`)."""
    if fmt == DELTA:
        add: dict[str, Any] = {
            "path": url,
            "partitionValues": {},
            "size": size,
            "modificationTime": modification_time,
            "dataChange": True,
        }
        if stats:
            add["stats"] = stats
        return {"file": {"id": file_id, "deltaSingleAction": {"add": add}, "expirationTimestamp": expires_ms}}
    file: dict[str, Any] = {
        "url": url,
        "id": file_id,
        "partitionValues": {},
        "size": size,
        "expirationTimestamp": expires_ms,
    }
    if stats:
        file["stats"] = stats
    if version is not None:
        file["version"] = version
    if timestamp is not None:
        file["timestamp"] = timestamp
    return {"file": file}


def change_file(
    fmt: str, *, file_id: str, url: str, size: int, version: int, timestamp: int, expires_ms: int
) -> dict[str, Any]:
    """A change-data file carrying `_change_type` (`cdf` in parquet format, `cdc` in delta)."""
    if fmt == DELTA:
        cdc = {"path": url, "partitionValues": {}, "size": size, "dataChange": False}
        return {
            "file": {
                "id": file_id,
                "deltaSingleAction": {"cdc": cdc},
                "version": version,
                "timestamp": timestamp,
                "expirationTimestamp": expires_ms,
            }
        }
    return {
        "cdf": {
            "url": url,
            "id": file_id,
            "partitionValues": {},
            "size": size,
            "version": version,
            "timestamp": timestamp,
            "expirationTimestamp": expires_ms,
        }
    }


def version_file(
    fmt: str,
    action: str,
    *,
    file_id: str,
    url: str,
    size: int,
    stats: str | None,
    expires_ms: int,
    modification_time: int,
    version: int,
    timestamp: int,
) -> dict[str, Any]:
    """A file added (`add`) or removed (`remove`) by `version`, in a `startingVersion` query's answer."""
    if fmt == DELTA:
        body: dict[str, Any] = {"path": url, "partitionValues": {}, "size": size, "dataChange": True}
        if action == "add":
            body["modificationTime"] = modification_time
            if stats:
                body["stats"] = stats
        else:
            body["deletionTimestamp"] = timestamp
        return {
            "file": {
                "id": file_id,
                "deltaSingleAction": {action: body},
                "version": version,
                "timestamp": timestamp,
                "expirationTimestamp": expires_ms,
            }
        }
    item: dict[str, Any] = {"url": url, "id": file_id, "partitionValues": {}, "size": size}
    if action == "add" and stats:
        item["stats"] = stats
    item.update(version=version, timestamp=timestamp, expirationTimestamp=expires_ms)
    return {action: item}
