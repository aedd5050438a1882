"""`/api/v1`: platform events in, and the partner's forget list and acknowledgements.

Errors have the sharing protocol's shape (`errorCode`, `message`). A partner authenticates with the
same bearer token as its Delta Sharing profile and only ever sees or acknowledges its own entries.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field

from datalease.api.auth import require_api_token
from datalease.errors import UserError
from datalease.platform.events import EVENT_TYPES
from datalease.platform.schemas import MAX_ID
from datalease.revocation.model import ForgetEntry
from datalease.server.authfirst import authenticated_first
from datalease.services import revocation, scoped_tokens
from datalease.services.events import submit_events
from datalease.sharing import errors
from datalease.sharing.dependencies import Authorized, Service
from datalease.sharing.dependencies import authenticate as authenticate_partner
from datalease.store.forget import AckError
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

MAX_ACK_IDS = 10_000
MAX_CERTIFICATE_CHARS = 100_000
EVENTS_PATH = "/api/v1/platform/events"


def workspace(request: Request) -> Workspace:
    found: Workspace = request.app.state.workspace
    return found


WorkspaceDep = Annotated[Workspace, Depends(workspace)]


def authenticate_platform(request: Request) -> None:
    """The platform API token, or a scoped token with `platform:write`."""
    header = request.headers.get("authorization")
    if header and header.lower().startswith("bearer dla_"):
        caller = scoped_tokens.caller_of(workspace(request), header[7:])
        if caller is None:
            raise errors.unauthenticated("unknown or revoked API token")
        if not caller.has(scoped_tokens.WRITE):
            raise errors.forbidden(f"this token lacks the scope {scoped_tokens.WRITE!r} ({caller.name})")
        return
    require_api_token(workspace(request), header)


# Both check the bearer token before the body is read (see server/authfirst.py).
platform_router = APIRouter(route_class=authenticated_first(authenticate_platform), tags=["Platform API"])
partner_router = APIRouter(route_class=authenticated_first(authenticate_partner), tags=["Partner API"])

_ID: Final = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
_EVENT_SCHEMA: Final = {
    "type": "object",
    "required": ["type", "user_id"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
        "type": {"type": "string", "enum": list(EVENT_TYPES)},
        "user_id": _ID,
        "post_id": _ID,
        "country": {"type": "string", "description": "ISO 3166-1 alpha-2 (user_country_change only)"},
        "at": {"type": "string", "format": "date-time"},
    },
}


def _events_body(limit: int) -> dict[str, Any]:
    batch = {
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {"events": {"type": "array", "items": _EVENT_SCHEMA, "minItems": 1, "maxItems": limit}},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [_EVENT_SCHEMA, batch]}}},
        }
    }


_EVENTS_ANSWER: Final = {
    202: {"description": "Recorded (or a retry of an event already recorded); queued for revocation"},
    **errors.documented(400, 401, 413),
}


@platform_router.post(
    EVENTS_PATH.removeprefix("/api/v1"),
    status_code=202,
    responses=_EVENTS_ANSWER,
    openapi_extra=_events_body(10_000),
)
def post_events(body: Annotated[Any, Body()], ws: WorkspaceDep) -> dict[str, Any]:
    """One event object, or `{"events": [...]}` (at most DATALEASE_MAX_EVENTS_PER_CALL, 10,000 by
    default); all are recorded or none. 202: queued for revocation."""
    raw = body["events"] if isinstance(body, dict) and "events" in body else [body]
    if not isinstance(raw, list):
        raise errors.invalid("events: expected a list of event objects")
    limit = ws.settings.max_events_per_call
    if len(raw) > limit:
        raise errors.invalid(
            f"events: at most {limit:,} events per call (DATALEASE_MAX_EVENTS_PER_CALL), got {len(raw):,}; "
            "send them in several calls"
        )
    try:
        recorded = submit_events(ws, raw)
    except UserError as exc:
        raise errors.invalid(str(exc)) from exc
    return {
        "events": [
            {
                "id": r.event_id,
                "type": r.event.type,
                "status": "recorded" if r.created else "duplicate",
                "occurred_at": r.occurred_at.isoformat(),
            }
            for r in recorded
        ]
    }


def _entry(entry: ForgetEntry, now: Any) -> dict[str, Any]:
    return {
        "id": entry.forget_id,
        "share": entry.agreement_id,
        "scope": entry.scope,
        "subject_key": entry.subject_key,
        "reason_code": entry.reason_code,
        "requested_at": entry.requested_at.isoformat(),
        "delivered_at": entry.delivered_at.isoformat(),
        "deadline": entry.deadline.isoformat(),
        "state": entry.state(now),
        "acknowledged_at": entry.acked_at.isoformat() if entry.acked_at else None,
    }


@partner_router.get("/partner/forget", responses=errors.documented(400, 401))
def get_forget(who: Authorized, svc: Service, pending: bool = False) -> dict[str, Any]:
    """The partner's forget entries (all, or only unacknowledged with `?pending=true`)."""
    now = utc_now()
    entries = revocation.forget_list(svc.ws, who.partner, pending=pending)
    return {"items": [_entry(e, now) for e in entries]}


class AckBody(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=MAX_ACK_IDS)
    certificate: str | None = Field(default=None, max_length=MAX_CERTIFICATE_CHARS)


@partner_router.post("/partner/forget/ack", responses=errors.documented(400, 401, 403, 413))
def post_ack(body: AckBody, who: Authorized, svc: Service) -> dict[str, Any]:
    """Acknowledge forget entries (with an optional certificate, e.g. from an unlearning run)."""
    try:
        fresh, already = revocation.acknowledge_forgotten(svc.ws, who.partner, body.ids, body.certificate)
    except AckError as exc:
        raise errors.SharingError(403, errors.PERMISSION_DENIED, str(exc)) from exc
    return {"acknowledged": fresh, "already_acknowledged": already}


router = APIRouter(prefix="/api/v1")
router.include_router(platform_router)
router.include_router(partner_router)
