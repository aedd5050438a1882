"""`/api/v1/platform/decide` (one record) and `/decide/batch` (up to 10,000): allowed and the reason
codes, from the active policy (services/platform_decide.py). Single decisions in flight at once are
decided together (server/coalesce.py): under load one process answers several per worker-thread hop
and consent read instead of one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Final, NotRequired, cast

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import TypedDict

from datalease.api.platform_common import BodyInstant, UserId, check_instant, refused, requires, workspace_of
from datalease.api.problems import documented
from datalease.platform.schemas import MAX_ID
from datalease.policy.model import Decision
from datalease.server.coalesce import Coalesced
from datalease.server.modelbody import openapi_body, typed_body
from datalease.services import scoped_tokens
from datalease.services.platform_decide import MAX_RECORDS, DecideRequest, decide_each, decide_many
from datalease.services.settings_api import SettingsApiError

DECIDE_BATCH_PATH: Final = "/api/v1/platform/decide/batch"
read = APIRouter(route_class=requires(scoped_tokens.READ), tags=["Platform API"])


# --- decide --------------------------------------------------------------------------------------


Category = Annotated[str, Field(max_length=50)]
Purposes = Annotated[list[Annotated[str, Field(max_length=100)]], Field(min_length=1, max_length=20)]
Partner = Annotated[str, Field(max_length=100)]
PostId = Annotated[int, Field(strict=True, ge=0, le=MAX_ID)]


class DecideIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"user_id": 1, "category": "posts", "purposes": ["train_ai_system.generative"]}]
        },
    )
    user_id: UserId
    category: Category
    purposes: Purposes
    partner: Partner | None = None
    at: BodyInstant | None = None
    post_id: PostId | None = Field(
        default=None, description="a post's own id (category posts): per-post choices apply"
    )


@with_config(ConfigDict(extra="forbid"))
class DecideRecord(TypedDict):
    """DecideIn as a TypedDict (the same fields and constraints): a batch's 10,000 records are read
    as these (server/modelbody.py `typed_body`) — parsed and turned into requests in ~15 ms, against
    ~80 ms as models (in-process, benchmarks/README.md "Decide, stop 26")."""

    user_id: UserId
    category: Category
    purposes: Purposes
    partner: NotRequired[Partner | None]
    at: NotRequired[BodyInstant | None]
    post_id: NotRequired[PostId | None]


class DecisionOut(BaseModel):
    allowed: bool
    reasons: list[str]
    policy_version: str | None
    region: str


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[DecideIn] = Field(min_length=1, max_length=MAX_RECORDS)


@with_config(ConfigDict(extra="forbid"))
class BatchRecords(TypedDict):
    records: Annotated[list[DecideRecord], Field(min_length=1, max_length=MAX_RECORDS)]


BATCH_RECORDS: Final = TypeAdapter(BatchRecords)


class BatchOut(BaseModel):
    decisions: list[DecisionOut]


def _requests(items: Sequence[DecideRecord], batch: bool) -> list[DecideRequest]:
    asked = [
        DecideRequest(
            r["user_id"], r["category"], tuple(r["purposes"]), r.get("partner"), r.get("at"), r.get("post_id")
        )
        for r in items
    ]
    for i, a in enumerate(asked):
        check_instant(a.at, f"records[{i}].at" if batch else "at")
    return asked


def _decide(request: Request, items: Sequence[DecideRecord], batch: bool) -> list[bytes]:
    """Each decision's JSON (the bytes `JSONResponse` would send), encoded once per distinct answer."""
    try:
        found = decide_many(workspace_of(request), _requests(items, batch), batch=batch)
    except SettingsApiError as exc:
        raise refused(exc) from exc
    encoded: dict[int, bytes] = {}
    out = []
    for d in found:
        text = encoded.get(id(d))
        if text is None:
            text = encoded[id(d)] = _encoded(d)
        out.append(text)
    return out


def _encoded(d: Decision) -> bytes:
    return _json(
        {"allowed": d.allowed, "reasons": list(d.reasons), "policy_version": d.version_id, "region": d.region}
    )


def _json(content: object) -> bytes:
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


@read.post("/decide", response_model=DecisionOut, responses=documented(400, 401, 403, 404, 413))
async def post_decide(request: Request, body: DecideIn) -> Response:
    """May a live public record of `category` owned by `user_id` (a post may name its `post_id`) go to
    these purposes (and partner) at `at` (default now)? `allowed` and the reason codes, from the active
    policy."""
    (asked,) = _requests([cast(DecideRecord, body.model_dump())], False)
    found = await _in_flight(request).get(asked)
    if isinstance(found, SettingsApiError):
        raise refused(found)
    return Response(_encoded(found), media_type="application/json")


def _in_flight(request: Request) -> Coalesced[DecideRequest, Decision | SettingsApiError]:
    """The app's single decisions in flight, decided together: one worker-thread hop and one consent
    read for those that arrive while the previous ones are decided."""
    state = request.app.state
    coalesced: Coalesced[DecideRequest, Decision | SettingsApiError] | None = getattr(
        state, "decisions", None
    )
    if coalesced is None:
        ws = workspace_of(request)
        coalesced = state.decisions = Coalesced(lambda asked: decide_each(ws, asked))
    return coalesced


@read.post(
    "/decide/batch",
    response_model=BatchOut,
    responses=documented(400, 401, 403, 413),
    openapi_extra=openapi_body(BatchIn),
)
async def post_decide_batch(request: Request) -> Response:
    """Up to 10,000 decisions, answered in order (a large batch by the compiled plan, the same answers)."""
    body = await typed_body(request, BATCH_RECORDS, BatchIn)  # one pass of pydantic's parser
    answers = await run_in_threadpool(_decide, request, body["records"], True)
    return Response(b'{"decisions":[' + b",".join(answers) + b"]}", media_type="application/json")
