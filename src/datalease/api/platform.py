"""`/api/v1/platform`: what the platform's own apps call — a person's settings (read, write many with
an Idempotency-Key), decisions (one or a batch: api/platform_decide.py), where a person's data went
and the access export.

Each route needs a scope (`platform:read` or `platform:write`; services/scoped_tokens.py), checked
before the body is read; refusals are `{error, field, message}` (api/problems.py).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from datalease.api.platform_common import (
    BodyInstant,
    Instant,
    UserId,
    check_instant,
    refused,
    requires,
    workspace_of,
)
from datalease.api.platform_decide import read as decide_router
from datalease.api.problems import PlatformError, documented
from datalease.errors import UserError
from datalease.reporting.access_export import ExportRow, export_rows, plain
from datalease.reporting.user_report import user_report
from datalease.services import scoped_tokens
from datalease.services.decision_context import context_of
from datalease.services.settings_api import (
    MAX_CHANGES,
    SettingChange,
    SettingsApiError,
    effective_settings,
    parse_signals,
    request_digest,
    write_settings,
)
from datalease.workspace import Workspace

SETTINGS_PATH: Final = "/api/v1/platform/settings"
read = APIRouter(route_class=requires(scoped_tokens.READ), tags=["Platform API"])
write = APIRouter(route_class=requires(scoped_tokens.WRITE), tags=["Platform API"])


# --- settings ------------------------------------------------------------------------------------


class SettingOut(BaseModel):
    key: str
    value: bool | None
    explicit: bool
    source: str = Field(description="user, platform, import, signal, or policy_default")
    at: datetime | None
    policy_default: bool | None


class SettingsOut(BaseModel):
    user_id: int
    at: datetime
    settings: list[SettingOut]


@read.get("/users/{user_id}/settings", response_model=SettingsOut, responses=documented(400, 401, 403, 404))
def get_settings(request: Request, user_id: UserId, at: Instant | None = None) -> SettingsOut:
    """Every setting of the user in effect at `at` (default now): explicit ones with their source and
    instant, the others at the policy's default for the user's region."""
    check_instant(at, "at")
    ws = workspace_of(request)
    try:
        lines = effective_settings(ws, user_id, at)
    except SettingsApiError as exc:
        raise refused(exc) from exc
    when = at or datetime.now().astimezone()
    return SettingsOut(user_id=user_id, at=when, settings=[SettingOut(**asdict(line)) for line in lines])


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: UserId
    key: str = Field(min_length=1, max_length=200, examples=["share_with_partners"])
    value: bool
    at: BodyInstant | None = None
    source: Literal["user", "platform", "import"] = "user"
    notice_sha256: str | None = Field(
        None, max_length=64, description="the sha256 of the notice the person was shown (issue 15)"
    )
    locale: str | None = Field(None, max_length=16, description="the locale of the notice text shown")


class SettingsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"changes": [{"user_id": 1, "key": "share_with_partners", "value": False}]}]
        },
    )
    changes: list[ChangeIn] = Field(min_length=1, max_length=MAX_CHANGES)


class SettingsWritten(BaseModel):
    recorded: int
    already_recorded: int
    first_seq: int | None
    last_seq: int | None
    chain_head: dict[str, Any]
    replayed: bool = False


@write.post("/settings", response_model=SettingsWritten, responses=documented(400, 401, 403, 409, 413))
def post_settings(
    request: Request,
    body: SettingsIn,
    idempotency_key: Annotated[str | None, Header(max_length=200, pattern=r"^[\x21-\x7e]{1,200}$")] = None,
    sec_gpc: Annotated[str | None, Header(alias="Sec-GPC")] = None,
) -> JSONResponse:
    """Record up to 10,000 changes, all or none, in one ledger transaction (revocation intents of
    withdrawing changes are queued in it). With `Idempotency-Key`, a retry returns the first answer and
    records nothing twice; the same key with other content is a 409."""
    for i, change in enumerate(body.changes):
        check_instant(change.at, f"changes[{i}].at")
    ws = workspace_of(request)
    caller: scoped_tokens.Caller = request.state.caller
    changes = [
        SettingChange(c.user_id, c.key, c.value, c.at, c.source, c.notice_sha256, c.locale)
        for c in body.changes
    ]
    try:
        status, answer = write_settings(
            ws,
            changes,
            actor=f"platform-api:{caller.name}"[:200],
            signals=parse_signals(sec_gpc),  # Sec-GPC → RequestSignals (issue 15 records it)
            idempotency_key=idempotency_key,
            request_sha256=request_digest(body.model_dump(mode="json")),
        )
    except SettingsApiError as exc:
        raise refused(exc) from exc
    return JSONResponse(answer, status_code=status)


# --- where the data went, and the access export ----------------------------------------------------


def _known(request: Request, user_id: int) -> Workspace:
    ws = workspace_of(request)
    try:
        users = context_of(ws).snapshot().users
    except UserError as exc:  # no policy yet
        raise PlatformError(404, "not_found", "user_id", f"user {user_id}: no such user ({exc})") from exc
    if user_id not in users:
        raise PlatformError(404, "not_found", "user_id", f"user {user_id}: no such user on this platform")
    return ws


@read.get("/users/{user_id}/report", responses=documented(400, 401, 403, 404))
def get_report(request: Request, user_id: UserId) -> JSONResponse:
    """Per agreement: what of the user is shared now, since when, what was withdrawn, and whether the
    partner confirmed forgetting it."""
    ws = _known(request, user_id)
    body = {"user_id": user_id, "agreements": [plain(asdict(r)) for r in user_report(ws, user_id)]}
    return JSONResponse(body)


_CSV_COLUMNS: Final = (
    "agreement_id",
    "partner",
    "release_id",
    "released_at",
    "table",
    "table_version",
    "row",
)


def _json_lines(rows: Iterator[ExportRow], user_id: int) -> Iterator[bytes]:
    yield f'{{"user_id": {user_id}, "rows": ['.encode()
    unavailable: list[dict[str, Any]] = []
    first = True
    for r in rows:
        line = plain(asdict(r))
        if r.row is None:
            unavailable.append({k: v for k, v in line.items() if k != "row"})
            continue
        yield (b"" if first else b",\n") + json.dumps(line).encode()
        first = False
    yield b'], "unavailable": ' + json.dumps(unavailable).encode() + b"}\n"


def _csv_lines(rows: Iterator[ExportRow]) -> Iterator[bytes]:
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(_CSV_COLUMNS)
    for r in rows:
        line = plain(asdict(r))
        line["row"] = "unavailable (purged)" if r.row is None else json.dumps(line["row"], sort_keys=True)
        out.writerow([line[c] for c in _CSV_COLUMNS])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


@read.get(
    "/users/{user_id}/export",
    response_class=Response,
    responses={
        200: {
            "description": "The rows each partner received, per release",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        },
        **documented(400, 401, 403, 404),
    },
)
def get_export(
    request: Request, user_id: UserId, format: Annotated[Literal["json", "csv"], Query()] = "json"
) -> StreamingResponse:
    """The access export (GDPR Art. 15): every row of the user each partner received, per release,
    recomputed from the agreement's keys and streamed."""
    ws = _known(request, user_id)
    rows = export_rows(ws, user_id)
    name = f"datalease-export-{user_id}.{format}"
    headers = {"Content-Disposition": f"attachment; filename={name}"}
    if format == "csv":
        return StreamingResponse(_csv_lines(rows), media_type="text/csv", headers=headers)
    return StreamingResponse(_json_lines(rows, user_id), media_type="application/json", headers=headers)


router = APIRouter(prefix="/api/v1/platform")
router.include_router(decide_router)
router.include_router(read)
router.include_router(write)
