"""`/api/v1/platform`: what the platform's own apps call — a person's settings (read, write many with
an Idempotency-Key), decisions (one or a batch), where a person's data went and the access export.

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
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from datalease.api.problems import PlatformError, documented
from datalease.errors import UserError
from datalease.platform.schemas import MAX_ID
from datalease.reporting.access_export import ExportRow, export_rows, plain
from datalease.reporting.user_report import user_report
from datalease.server.authfirst import authenticated_first
from datalease.server.modelbody import model_body, openapi_body
from datalease.services import scoped_tokens
from datalease.services.decision_context import context_of
from datalease.services.platform_decide import MAX_RECORDS, DecideRequest, decide_many
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
DECIDE_BATCH_PATH: Final = "/api/v1/platform/decide/batch"
UserId = Annotated[int, Field(ge=0, le=MAX_ID)]
Instant = Annotated[AwareDatetime, Field(description="ISO 8601 with a UTC offset")]


# In a JSON body only an ISO 8601 string is an instant (lax mode would also take numbers).
def _only_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time text such as 2026-05-01T09:30:00Z")
    return value


BodyInstant = Annotated[
    AwareDatetime, BeforeValidator(_only_text), Field(description="ISO 8601 with a UTC offset")
]


def _ws(request: Request) -> Workspace:
    found: Workspace = request.app.state.workspace
    return found


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header or not header.lower().startswith("bearer "):
        raise PlatformError(
            401, "unauthenticated", "Authorization", "send `Authorization: Bearer <API token>`"
        )
    return header[7:]


def _require(scope: str) -> Any:
    def platform_token(request: Request) -> bool:
        """The platform API token (every scope) is known without the store: no worker thread."""
        caller = scoped_tokens.platform_caller(_ws(request), _bearer(request))
        if caller is not None:
            request.state.caller = caller
        return caller is not None

    def check(request: Request) -> None:
        caller = scoped_tokens.caller_of(_ws(request), _bearer(request))
        if caller is None:
            raise PlatformError(401, "unauthenticated", "Authorization", "unknown or revoked API token")
        if not caller.has(scope):
            raise PlatformError(
                403, "missing_scope", "Authorization", f"this token lacks the scope {scope!r} ({caller.name})"
            )
        request.state.caller = caller

    return authenticated_first(check, quick=platform_token)


read = APIRouter(route_class=_require(scoped_tokens.READ), tags=["Platform API"])
write = APIRouter(route_class=_require(scoped_tokens.WRITE), tags=["Platform API"])


def _refused(exc: SettingsApiError) -> PlatformError:
    return PlatformError(exc.status, exc.error, exc.field, exc.message)


def _check_instant(value: datetime | None, field: str) -> None:
    if value is not None and not 1900 <= value.year <= 9000:
        raise PlatformError(400, "invalid", field, "expected an instant between the years 1900 and 9000")


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
    _check_instant(at, "at")
    ws = _ws(request)
    try:
        lines = effective_settings(ws, user_id, at)
    except SettingsApiError as exc:
        raise _refused(exc) from exc
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
        _check_instant(change.at, f"changes[{i}].at")
    ws = _ws(request)
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
        raise _refused(exc) from exc
    return JSONResponse(answer, status_code=status)


# --- decide --------------------------------------------------------------------------------------


class DecideIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"user_id": 1, "category": "posts", "purposes": ["train_ai_system.generative"]}]
        },
    )
    user_id: UserId
    category: str = Field(max_length=50)
    purposes: list[Annotated[str, Field(max_length=100)]] = Field(min_length=1, max_length=20)
    partner: str | None = Field(default=None, max_length=100)
    at: BodyInstant | None = None
    post_id: Annotated[int, Field(strict=True, ge=0, le=MAX_ID)] | None = Field(
        default=None, description="a post's own id (category posts): per-post choices apply"
    )


class DecisionOut(BaseModel):
    allowed: bool
    reasons: list[str]
    policy_version: str | None
    region: str


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[DecideIn] = Field(min_length=1, max_length=MAX_RECORDS)


class BatchOut(BaseModel):
    decisions: list[DecisionOut]


def _requests(items: list[DecideIn], batch: bool) -> list[DecideRequest]:
    for i, r in enumerate(items):
        _check_instant(r.at, f"records[{i}].at" if batch else "at")
    return [
        DecideRequest(r.user_id, r.category, tuple(r.purposes), r.partner, r.at, r.post_id) for r in items
    ]


def _decide(request: Request, items: list[DecideIn], batch: bool) -> list[bytes]:
    """Each decision's JSON (the bytes `JSONResponse` would send), encoded once per distinct answer."""
    try:
        found = decide_many(_ws(request), _requests(items, batch), batch=batch)
    except SettingsApiError as exc:
        raise _refused(exc) from exc
    encoded: dict[int, bytes] = {}
    out = []
    for d in found:
        text = encoded.get(id(d))
        if text is None:
            text = encoded[id(d)] = _json(
                {
                    "allowed": d.allowed,
                    "reasons": list(d.reasons),
                    "policy_version": d.version_id,
                    "region": d.region,
                }
            )
        out.append(text)
    return out


def _json(content: object) -> bytes:
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


@read.post("/decide", response_model=DecisionOut, responses=documented(400, 401, 403, 404, 413))
def post_decide(request: Request, body: DecideIn) -> Response:
    """May a live public record of `category` owned by `user_id` (a post may name its `post_id`) go to
    these purposes (and partner) at `at` (default now)? `allowed` and the reason codes, from the active
    policy."""
    return Response(_decide(request, [body], False)[0], media_type="application/json")


@read.post(
    "/decide/batch",
    response_model=BatchOut,
    responses=documented(400, 401, 403, 413),
    openapi_extra=openapi_body(BatchIn),
)
async def post_decide_batch(request: Request) -> Response:
    """Up to 10,000 decisions, answered in order (a large batch by the compiled plan, the same answers)."""
    body = await model_body(request, BatchIn)  # one pass of pydantic's parser (server/modelbody.py)
    answers = await run_in_threadpool(_decide, request, body.records, True)
    return Response(b'{"decisions":[' + b",".join(answers) + b"]}", media_type="application/json")


# --- where the data went, and the access export ----------------------------------------------------


def _known(request: Request, user_id: int) -> Workspace:
    ws = _ws(request)
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
router.include_router(read)
router.include_router(write)
