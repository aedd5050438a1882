"""The Delta Sharing protocol over HTTP (FastAPI): lists, version, metadata, query, changes (the
signed file URLs the answers point at are in download.py). See docs/sharing.md and delta-io/delta-sharing's PROTOCOL.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse

from datalease.server.authfirst import authenticated_first
from datalease.sharing import download, errors, paging, protocol, queries
from datalease.sharing.answers import Answer
from datalease.sharing.callers import Caller
from datalease.sharing.dependencies import Authorized, Service, authenticate
from datalease.sharing.model import Usage
from datalease.sharing.queries import QueryBody
from datalease.sharing.service import CHANGES_DIR, SharingService, file_id, share_id
from datalease.sharing.tables import SCHEMA, SharedTable

PREFIX: Final = protocol.PREFIX
NDJSON_TYPE: Final = "application/x-ndjson"
NDJSON: Final = f"{NDJSON_TYPE}; charset=utf-8"
VERSION_HEADER: Final = "Delta-Table-Version"
CAPABILITIES: Final = "delta-sharing-capabilities"
MAX_PAGE: Final = paging.MAX_PAGE


# The protocol's endpoints want a partner's bearer token; file URLs carry their own signature.
protocol_router = APIRouter(route_class=authenticated_first(authenticate), tags=["Delta Sharing"])


class NDJSONResponse(Response):
    media_type = NDJSON_TYPE  # what the document names; answers say `NDJSON` (with the charset)


def _ndjson_answer(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"{what}: newline-delimited JSON, one protocol object per line",
            "content": {NDJSON_TYPE: {"schema": {"type": "string"}}},
            "headers": _VERSION_HEADER_DOC,
        }
    }


_VERSION_HEADER_DOC: Final = {
    VERSION_HEADER: {"description": "The table version the answer describes", "schema": {"type": "integer"}}
}
_LISTING: Final = errors.documented(400, 401)
_IN_SHARE: Final = errors.documented(400, 401, 404)
MaxResults = Annotated[int | None, Query(alias="maxResults", ge=0, le=MAX_PAGE)]
PageToken = Annotated[str | None, Query(alias="pageToken")]


def _table_item(table: SharedTable) -> dict[str, Any]:
    return {
        "name": table.name,
        "schema": SCHEMA,
        "share": table.share,
        "shareId": share_id(table.share),
        "id": table.metadata(table.latest).get("id"),
    }


def _format(header: str | None) -> str:
    """The response format: parquet when the client accepts it (it is), else delta."""
    if not header:
        return protocol.PARQUET
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "responseformat":
            offered = [v.strip().lower() for v in value.split(",")]
            if protocol.PARQUET in offered:
                return protocol.PARQUET
            if protocol.DELTA in offered:
                return protocol.DELTA
            raise errors.invalid(f"responseformat {value!r}: this server answers in parquet or delta")
    return protocol.PARQUET


def _ndjson(lines: Iterable[dict[str, Any]], version: int, fmt: str) -> Response:
    return _ndjson_body(queries.encoded(lines), version, fmt)


def _ndjson_body(body: bytes, version: int, fmt: str) -> Response:
    return NDJSONResponse(
        content=body,
        media_type=NDJSON,
        headers={VERSION_HEADER: str(version), CAPABILITIES: f"responseformat={fmt}"},
    )


# --- lists --------------------------------------------------------------------------------------


@protocol_router.get("/shares", responses=_LISTING)
def list_shares(
    who: Authorized, svc: Service, max_results: MaxResults = None, page_token: PageToken = None
) -> dict[str, Any]:
    items = [{"name": s, "id": share_id(s)} for s in svc.shares(who)]
    return paging.page(svc.key, f"shares:{who.partner}", items, max_results, page_token)


@protocol_router.get("/shares/{share}", responses=_IN_SHARE)
def get_share(share: str, who: Authorized, svc: Service) -> dict[str, Any]:
    share = svc.canonical_share(who, share)
    return {"share": {"name": share, "id": share_id(share)}}


@protocol_router.get("/shares/{share}/schemas", responses=_IN_SHARE)
def list_schemas(
    share: str, who: Authorized, svc: Service, max_results: MaxResults = None, page_token: PageToken = None
) -> dict[str, Any]:
    share = svc.canonical_share(who, share)
    items = [{"name": SCHEMA, "share": share}]
    return paging.page(svc.key, f"schemas:{who.partner}:{share}", items, max_results, page_token)


@protocol_router.get("/shares/{share}/schemas/{schema}/tables", responses=_IN_SHARE)
def list_tables(
    share: str,
    schema: str,
    who: Authorized,
    svc: Service,
    max_results: MaxResults = None,
    page_token: PageToken = None,
) -> dict[str, Any]:
    svc.require_schema(who, share, schema)
    share = svc.canonical_share(who, share)
    items = [_table_item(t) for t in svc.tables(who, share)]
    return paging.page(svc.key, f"tables:{who.partner}:{share}", items, max_results, page_token)


@protocol_router.get("/shares/{share}/all-tables", responses=_IN_SHARE)
def list_all_tables(
    share: str, who: Authorized, svc: Service, max_results: MaxResults = None, page_token: PageToken = None
) -> dict[str, Any]:
    share = svc.canonical_share(who, share)
    items = [_table_item(t) for t in svc.tables(who, share)]
    return paging.page(svc.key, f"all-tables:{who.partner}:{share}", items, max_results, page_token)


@protocol_router.get(
    "/shares/{share}/card",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}, **_IN_SHARE},
)
def dataset_card(share: str, who: Authorized, svc: Service) -> PlainTextResponse:
    """The share's dataset card (markdown): terms, permitted uses, counts, how revocations arrive."""
    return PlainTextResponse(svc.card(who, share), media_type="text/markdown; charset=utf-8")


# --- one table ----------------------------------------------------------------------------------

TablePath = "/shares/{share}/schemas/{schema}/tables/{name}"


@protocol_router.get(
    TablePath + "/version",
    response_class=Response,
    responses={
        200: {
            "description": "The version, in the Delta-Table-Version header; no body",
            "headers": _VERSION_HEADER_DOC,
        },
        **_IN_SHARE,
    },
)
def table_version(
    share: str,
    schema: str,
    name: str,
    who: Authorized,
    svc: Service,
    starting_timestamp: Annotated[str | None, Query(alias="startingTimestamp")] = None,
) -> Response:
    table = svc.table(who, share, schema, name)
    share, name = table.share, table.name  # names are case-insensitive; answers use the stored ones
    version = table.latest if starting_timestamp is None else svc.starting_version(table, starting_timestamp)
    svc.meter(Usage(who.partner, share, name, "version"))
    return Response(status_code=200, headers={VERSION_HEADER: str(version)})


@protocol_router.get(
    TablePath + "/metadata",
    response_class=NDJSONResponse,
    responses={**_ndjson_answer("The protocol and metadata lines"), **_IN_SHARE},
)
def table_metadata(
    share: str,
    schema: str,
    name: str,
    who: Authorized,
    svc: Service,
    capabilities: Annotated[str | None, Header(alias=CAPABILITIES)] = None,
    version: Annotated[int | None, Query(ge=0)] = None,
    timestamp: str | None = None,
) -> Response:
    """The table's protocol and metadata, at the latest version or at `version` / `timestamp`."""
    fmt = _format(capabilities)
    table = svc.table(who, share, schema, name)
    share, name = table.share, table.name  # names are case-insensitive; answers use the stored ones
    travel = version is not None or timestamp is not None
    version = svc.snapshot_version(table, version, timestamp)
    files = table.log.files(version)
    lines = [
        protocol.protocol(fmt),
        protocol.metadata(
            table,
            version,
            fmt,
            description=queries.description(table),
            size=sum(f.size for f in files),
            num_files=len(files),
            with_version=travel,
        ),
    ]
    svc.meter(Usage(who.partner, share, name, "metadata"))
    return _ndjson(lines, version, fmt)


@protocol_router.post(
    TablePath + "/query",
    response_class=NDJSONResponse,
    responses={
        **_ndjson_answer("The protocol, metadata and file lines"),
        **errors.documented(400, 401, 404, 413),
    },
)
async def query_table(
    share: str,
    schema: str,
    name: str,
    who: Authorized,
    svc: Service,
    body: QueryBody | None = None,
    capabilities: Annotated[str | None, Header(alias=CAPABILITIES)] = None,
) -> Response:
    fmt = _format(capabilities)
    query = body or QueryBody()
    # A snapshot answered before, for this token and catalogue version: no I/O but the usage line,
    # so it is served on the event loop; anything else is answered in a worker thread.
    known = svc.known_table(who, share, schema, name)
    if known is not None and query.starting_version is None and query.ending_version is None:
        key = queries.answer_key(who, known, fmt, query)
        answer = svc.answers.get(key, time.time())
        if answer is not None:
            return _answered(who, svc, known, answer, fmt)
    return await run_in_threadpool(_query, who, svc, share, schema, name, query, fmt)


def _query(
    who: Caller, svc: SharingService, share: str, schema: str, name: str, query: QueryBody, fmt: str
) -> Response:
    table = svc.table(who, share, schema, name)
    if query.starting_version is not None or query.ending_version is not None:
        return _answered(who, svc, table, queries.versions_answer(who, svc, table, query, fmt), fmt)
    answer = queries.snapshot_answer(who, svc, table, query, fmt)
    if who.catalogue is not None:
        svc.answers.put(queries.answer_key(who, table, fmt, query), answer)
    return _answered(who, svc, table, answer, fmt)


def _answered(who: Caller, svc: SharingService, table: SharedTable, answer: Answer, fmt: str) -> Response:
    svc.meter(Usage(who.partner, table.share, table.name, "query", files=answer.files, rows=answer.rows))
    return _ndjson_body(answer.body, answer.version, fmt)


@protocol_router.get(
    TablePath + "/changes",
    response_class=NDJSONResponse,
    responses={**_ndjson_answer("The protocol, metadata and change-file lines"), **_IN_SHARE},
)
def table_changes(
    share: str,
    schema: str,
    name: str,
    who: Authorized,
    svc: Service,
    starting_version: Annotated[int | None, Query(alias="startingVersion", ge=0)] = None,
    ending_version: Annotated[int | None, Query(alias="endingVersion", ge=0)] = None,
    starting_timestamp: Annotated[str | None, Query(alias="startingTimestamp")] = None,
    ending_timestamp: Annotated[str | None, Query(alias="endingTimestamp")] = None,
    capabilities: Annotated[str | None, Header(alias=CAPABILITIES)] = None,
) -> Response:
    fmt = _format(capabilities)
    table = svc.table(who, share, schema, name)
    share, name = table.share, table.name  # names are case-insensitive; answers use the stored ones
    start, end = svc.change_range(
        table, starting_version, ending_version, starting_timestamp, ending_timestamp
    )
    changes = list(svc.change_files(table, start, end))
    expires = svc.expiry()
    base = queries.files_base(svc)
    lines = [
        protocol.protocol(fmt),
        protocol.metadata(table, start, fmt, description=queries.description(table), with_version=True),
        *(
            protocol.change_file(
                fmt,
                file_id=file_id(f"{share}/{name}/{CHANGES_DIR}/{c.name}"),
                url=svc.url(base, who, table, f"{CHANGES_DIR}/{c.name}", expires),
                size=c.size,
                version=c.version,
                timestamp=c.timestamp,
                expires_ms=expires * 1000,
            )
            for c in changes
        ),
    ]
    svc.meter(
        Usage(who.partner, share, name, "changes", files=len(changes), rows=sum(c.rows for c in changes))
    )
    return _ndjson(lines, start, fmt)


router = APIRouter(prefix=PREFIX)
router.include_router(protocol_router)
router.include_router(download.router)
