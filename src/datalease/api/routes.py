"""`/api/v1`: platform events in, and the partner's forget list and acknowledgements.

Errors have the sharing protocol's shape (`errorCode`, `message`). A partner authenticates with the
same bearer token as its Delta Sharing profile and only ever sees or acknowledges its own entries.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field

from datalease.api.auth import require_api_token
from datalease.errors import UserError
from datalease.revocation.intake import submit_events
from datalease.sharing import errors
from datalease.sharing.router import Authorized, Service
from datalease.store.revocation import AckError, ForgetEntry, acknowledge, forget_entries
from datalease.timeparse import utc_now
from datalease.workspace import Workspace

router = APIRouter(prefix="/api/v1")
MAX_ACK_IDS = 10_000
MAX_CERTIFICATE_CHARS = 100_000


def workspace(request: Request) -> Workspace:
    found: Workspace = request.app.state.workspace
    return found


WorkspaceDep = Annotated[Workspace, Depends(workspace)]


@router.post("/platform/events", status_code=202)
def post_events(request: Request, body: Annotated[Any, Body()], ws: WorkspaceDep) -> dict[str, Any]:
    """One event object, or `{"events": [...]}`; all are recorded or none. 202: queued for revocation."""
    require_api_token(ws, request.headers.get("authorization"))
    raw = body["events"] if isinstance(body, dict) and "events" in body else [body]
    if not isinstance(raw, list):
        raise errors.invalid("events: expected a list of event objects")
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


@router.get("/partner/forget")
def get_forget(who: Authorized, svc: Service, pending: bool = False) -> dict[str, Any]:
    """The partner's forget entries (all, or only unacknowledged with `?pending=true`)."""
    now = utc_now()
    with svc.ws.session() as session:
        entries = forget_entries(session, partner=who.partner, unacknowledged=pending)
    return {"items": [_entry(e, now) for e in entries]}


class AckBody(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=MAX_ACK_IDS)
    certificate: str | None = Field(default=None, max_length=MAX_CERTIFICATE_CHARS)


@router.post("/partner/forget/ack")
def post_ack(body: AckBody, who: Authorized, svc: Service) -> dict[str, Any]:
    """Acknowledge forget entries (with an optional certificate, e.g. from an unlearning run)."""
    try:
        with svc.ws.write_session() as session, session.begin():
            fresh, already = acknowledge(session, who.partner, body.ids, body.certificate, utc_now())
    except AckError as exc:
        raise errors.SharingError(403, errors.PERMISSION_DENIED, str(exc)) from exc
    return {"acknowledged": fresh, "already_acknowledged": already}
