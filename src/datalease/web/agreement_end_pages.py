"""The operator's pages to suspend or terminate an agreement: choose it and say why, see what would be
withdrawn (the CLI's `agreement suspend|terminate --dry-run`), then confirm (docs/agreements.md)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from datalease.errors import UserError
from datalease.services.licensing import agreements
from datalease.services.orders import Outcome, end_agreement
from datalease.web.order_pages import answers, require_csrf, require_operator
from datalease.web.routes import PageError, WorkspaceDep, render, viewer
from datalease.web.sessions import Viewer

router = APIRouter(tags=["Pages"])
ENDINGS: Final = {"suspend": "suspended", "terminate": "terminated"}
MAX_REASON_CHARS: Final = 2000


def _ended(ws: WorkspaceDep, agreement_id: str, action: str, reason: str, *, dry_run: bool) -> Outcome:
    status = ENDINGS.get(action)
    if status is None:
        raise PageError(400, "Unknown action", f"action {action[:40]!r}: expected suspend or terminate")
    if len(reason) > MAX_REASON_CHARS:
        raise PageError(400, "Reason too long", f"A reason is at most {MAX_REASON_CHARS} characters.")
    try:
        return end_agreement(ws, agreement_id, status, reason, dry_run=dry_run)
    except UserError as exc:
        raise PageError(400, f"Cannot {action} this agreement", str(exc)) from exc


def _page(
    request: Request,
    ws: WorkspaceDep,
    preview: Outcome | None = None,
    agreement_id: str = "",
    action: str = "",
    reason: str = "",
) -> Response:
    return render(
        request,
        ws,
        "operator_agreement_end.html",
        agreements=agreements(ws),
        tab="orders",
        preview=preview,
        agreement_id=agreement_id,
        action=action,
        reason=reason,
    )


@router.get("/operator/agreements/end", response_class=HTMLResponse, responses=answers(401))
def end_page(request: Request, ws: WorkspaceDep, who: Annotated[Viewer | None, Depends(viewer)]) -> Response:
    require_operator(who)
    return _page(request, ws)


@router.post(
    "/operator/agreements/end/preview", response_class=HTMLResponse, responses=answers(400, 401, 403, 413)
)
def preview_end(
    request: Request,
    ws: WorkspaceDep,
    who: Annotated[Viewer | None, Depends(viewer)],
    agreement_id: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """What suspending or terminating would withdraw, with a form to confirm; nothing recorded."""
    require_operator(who)
    require_csrf(request, ws, csrf)
    outcome = _ended(ws, agreement_id, action, reason, dry_run=True)
    return _page(request, ws, preview=outcome, agreement_id=agreement_id, action=action, reason=reason)


@router.post(
    "/operator/agreements/end", response_class=HTMLResponse, responses=answers(303, 400, 401, 403, 413)
)
def confirm_end(
    request: Request,
    ws: WorkspaceDep,
    who: Annotated[Viewer | None, Depends(viewer)],
    agreement_id: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Record the suspension or termination with its bulk withdrawal (the bulk worker delivers it)."""
    require_operator(who)
    require_csrf(request, ws, csrf)
    _ended(ws, agreement_id, action, reason, dry_run=False)
    return RedirectResponse("/operator/agreements/end", status_code=303)
