"""The pages (Jinja, server-rendered; every form works without JavaScript) and their forms.

Users reach only their own pages (`/users/<id>/…` answers 403 to anyone else's session); operators
sign in with the platform API token. Sessions live in the store (signing out ends one at once). Every
POST carries a CSRF token bound to the session.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from datalease.errors import UserError
from datalease.reporting.earnings import earnings_json, user_earnings
from datalease.reporting.user_report import ForgetLine, user_report
from datalease.services import consent, provenance, receipts
from datalease.services.api_token import is_api_token
from datalease.timeparse import utc_now
from datalease.web import consent_view, views
from datalease.web.sessions import (
    SESSION_SECONDS,
    Viewer,
    close_session,
    csrf_ok,
    csrf_token,
    open_session,
    read_token,
    session_viewer,
)
from datalease.workspace import Workspace

SESSION_COOKIE: Final = "dl_session"
PRE_COOKIE: Final = "dl_pre"  # the anonymous session a login form's CSRF token is bound to
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

router = APIRouter(tags=["Pages"])

_HTML: Final = {"text/html": {"schema": {"type": "string"}}}


def _answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a page: the error page for each refusal, and redirects."""
    meaning = {
        303: "Redirect (the next page)",
        400: "The error page: a parameter is not what the page expects",
        401: "The error page: sign in first",
        403: "The error page: not yours, or the form's security token is missing or wrong",
        404: "The error page: no such user or page",
        413: "The error page: the form is larger than the pages accept",
    }
    return {
        s: {"description": meaning[s]} if s == 303 else {"description": meaning[s], "content": _HTML}
        for s in statuses
    }


class PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def workspace(request: Request) -> Workspace:
    found: Workspace = request.app.state.workspace
    return found


WorkspaceDep = Annotated[Workspace, Depends(workspace)]


def current_viewer(request: Request, ws: Workspace) -> Viewer | None:
    """Who the session cookie belongs to (looked up once per request)."""
    if not hasattr(request.state, "viewer"):
        request.state.viewer = session_viewer(ws, request.cookies.get(SESSION_COOKIE), utc_now())
    found: Viewer | None = request.state.viewer
    return found


def viewer(request: Request, ws: WorkspaceDep) -> Viewer | None:
    return current_viewer(request, ws)


def render(request: Request, ws: Workspace, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    session = request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRE_COOKIE) or ""
    context.setdefault("viewer", current_viewer(request, ws))
    context["csrf"] = csrf_token(ws.master_key, session) if session else ""
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status)


def _check_csrf(request: Request, ws: Workspace, token: str, cookie: str = SESSION_COOKIE) -> None:
    if not csrf_ok(ws.master_key, request.cookies.get(cookie), token):
        raise PageError(
            403,
            "Form expired",
            "This form's security token is missing or wrong. Reload the page and try again.",
        )


def _own(who: Viewer | None, user_id: int) -> None:
    if who is None:
        raise PageError(401, "Sign in", "Sign in to see your settings.")
    if who.user_id != user_id:
        raise PageError(403, "Not your page", "You can only see your own settings and report.")


def _operator(who: Viewer | None) -> None:
    if who is None or not who.operator:
        raise PageError(401, "Operators only", "Sign in with the operator token to see the console.")


def _signed_in(response: Response, request: Request, ws: Workspace, who: Viewer) -> Response:
    session_id = open_session(ws, who, utc_now())
    secure = request.url.scheme == "https"
    response.set_cookie(
        SESSION_COOKIE, session_id, httponly=True, samesite="lax", secure=secure, max_age=SESSION_SECONDS
    )
    return response


# --- sign in ----------------------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
def home(who: Annotated[Viewer | None, Depends(viewer)]) -> RedirectResponse:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(
        "/operator" if who.operator else f"/users/{who.user_id}/settings", status_code=303
    )


@router.get("/login", response_class=HTMLResponse, responses=_answers(303, 400, 401))
def login_page(request: Request, ws: WorkspaceDep, token: str | None = None) -> Response:
    if token is not None:  # the platform hands its signed-in user over with a signed token
        who = read_token(ws.master_key, token)
        if who is None:
            raise PageError(401, "Sign-in link expired", "This sign-in link is invalid or has expired.")
        return _signed_in(
            RedirectResponse(f"/users/{who.user_id}/settings", status_code=303), request, ws, who
        )
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    users = []
    if ws.settings.demo_login:
        table = ws.lake.read("users").slice(0, 12).to_pylist()
        policy = ws.active_policy()
        users = [{**u, "region": policy.region_of(u["country"]) if policy else u["country"]} for u in table]
    request.cookies[PRE_COOKIE] = pre
    response = render(request, ws, "login.html", users=users, demo=ws.settings.demo_login)
    response.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="lax", max_age=3600)
    return response


@router.post("/login/demo", response_class=HTMLResponse, responses=_answers(303, 400, 403, 404, 413))
def login_demo(
    request: Request, ws: WorkspaceDep, user_id: Annotated[int, Form()], csrf: Annotated[str, Form()] = ""
) -> Response:
    if not ws.settings.demo_login:
        raise PageError(404, "Not found", "Demo sign-in is switched off on this server.")
    _check_csrf(request, ws, csrf, PRE_COOKIE)
    try:
        ws.user_facts(str(user_id))
    except UserError as exc:
        raise PageError(404, "No such user", str(exc)) from exc
    who = Viewer(user_id, False)
    return _signed_in(RedirectResponse(f"/users/{user_id}/settings", status_code=303), request, ws, who)


@router.post("/login/operator", response_class=HTMLResponse, responses=_answers(303, 400, 401, 403, 413))
def login_operator(
    request: Request,
    ws: WorkspaceDep,
    token: Annotated[str, Form(min_length=1)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    _check_csrf(request, ws, csrf, PRE_COOKIE)
    if not is_api_token(ws, token):
        raise PageError(401, "Wrong operator token", "That is not this platform's operator token.")
    return _signed_in(RedirectResponse("/operator", status_code=303), request, ws, Viewer(None, True))


@router.post("/logout", response_class=HTMLResponse, responses=_answers(303, 400, 403, 413))
def logout(request: Request, ws: WorkspaceDep, csrf: Annotated[str, Form()] = "") -> Response:
    """End the session at once (on every server: sessions live in the store)."""
    _check_csrf(request, ws, csrf)
    close_session(ws, request.cookies.get(SESSION_COOKIE) or "", utc_now())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- a user's pages -----------------------------------------------------------------------------------


def _settings(ws: Workspace, user_id: int) -> views.SettingsView:
    try:
        facts = ws.user_facts(str(user_id))
    except UserError as exc:  # signed by the platform, but not (or no longer) in its lake
        raise PageError(404, "No such user", f"User {user_id} is not on this platform.") from exc
    users = ws.lake.read("users")
    handle = next(r["handle"] for r in users.to_pylist() if r["user_id"] == user_id)
    return views.settings_view(ws, ws.require_policy(), user_id, handle, facts.country, utc_now())


@router.get("/users/{user_id}/settings", response_class=HTMLResponse, responses=_answers(400, 401, 403, 404))
def settings_page(
    request: Request,
    ws: WorkspaceDep,
    user_id: int,
    who: Annotated[Viewer | None, Depends(viewer)],
    saved: int = 0,
) -> Response:
    _own(who, user_id)
    page = _consent_page(request, ws, user_id)
    return render(request, ws, "settings.html", view=page.view, saved=saved, consent=page)


def _consent_page(request: Request, ws: Workspace, user_id: int) -> consent_view.ConsentPage:
    """Issue 15: record a `Sec-GPC: 1` signal first, then the page with notes, receipts and overrides."""
    try:
        consent.record_signal(ws, user_id, request.headers.get(consent.GPC_HEADER))
    except UserError as exc:
        raise PageError(400, "Bad Sec-GPC header", str(exc)) from exc
    view = _settings(ws, user_id)
    country = ws.user_facts(str(user_id)).country
    return consent_view.consent_page(ws, ws.require_policy(), view, country, utc_now())


@router.get("/users/{user_id}/receipts/{seq}.json", responses=_answers(400, 401, 403, 404))
def receipt_download(
    ws: WorkspaceDep, user_id: int, seq: int, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    """The signed consent receipt (ISO/IEC TS 27560 fields, Ed25519) of one of the user's changes."""
    _own(who, user_id)
    try:
        data = receipts.receipt(ws, user_id, seq)
    except UserError as exc:
        raise PageError(404, "No such receipt", str(exc)) from exc
    disposition = f'attachment; filename="consent-receipt-{user_id}-{seq}.json"'
    return Response(data, media_type="application/json", headers={"Content-Disposition": disposition})


@router.get(
    "/consent/receipt-key.pem",
    responses={200: {"content": {"application/x-pem-file": {"schema": {"type": "string"}}}}},
)
def receipt_key(ws: WorkspaceDep) -> Response:
    """The public key (PEM) that verifies the platform's consent receipts."""
    return Response(receipts.public_key(ws), media_type="application/x-pem-file")


@router.post(
    "/users/{user_id}/settings", response_class=HTMLResponse, responses=_answers(303, 400, 401, 403, 404, 413)
)
async def save_settings(
    request: Request, ws: WorkspaceDep, user_id: int, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    _own(who, user_id)
    form = await request.form()
    _check_csrf(request, ws, str(form.get("csrf", "")))
    submitted = {str(k) for k in form if k != "csrf"}
    page = _consent_page(request, ws, user_id)
    changes = views.changed_settings(page.view, submitted) | consent_view.override_changes(page, submitted)
    if changes:
        consent.save_settings(ws, user_id, changes, accept_language=request.headers.get("Accept-Language"))
    return RedirectResponse(f"/users/{user_id}/settings?saved={len(changes)}", status_code=303)


@router.get("/users/{user_id}/data", response_class=HTMLResponse, responses=_answers(400, 401, 403))
def data_page(
    request: Request, ws: WorkspaceDep, user_id: int, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    _own(who, user_id)
    reports, earned = user_report(ws, user_id), user_earnings(ws, user_id)
    models = {line.agreement_id: line for line in provenance.models_lines(ws, user_id, reports)}
    return render(request, ws, "data.html", reports=reports, earnings=earned, user_id=user_id, models=models)


@router.get("/users/{user_id}/data.json", responses=_answers(400, 401, 403))
def data_json(ws: WorkspaceDep, user_id: int, who: Annotated[Viewer | None, Depends(viewer)]) -> JSONResponse:
    _own(who, user_id)
    body = {
        "user_id": user_id,
        "agreements": [asdict(r) for r in user_report(ws, user_id)],
        "earnings": earnings_json(user_earnings(ws, user_id)),
    }
    return JSONResponse(
        _jsonable(body), headers={"Content-Disposition": "attachment; filename=where-my-data-went.json"}
    )


@router.get(
    "/users/{user_id}/data.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **_answers(400, 401, 403)},
)
def data_csv(ws: WorkspaceDep, user_id: int, who: Annotated[Viewer | None, Depends(viewer)]) -> Response:
    _own(who, user_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "agreement",
            "partner",
            "category",
            "rows_shared",
            "first_release",
            "last_release",
            "rows_revoked",
            "forget_id",
            "forget_state",
            "acknowledged_at",
        ]
    )
    for r in user_report(ws, user_id):
        forget: list[ForgetLine | None] = list(r.forget) or [None]
        for category, rows in (r.rows_shared or {"": 0}).items():
            for line in forget:
                writer.writerow(
                    [
                        r.agreement_id,
                        r.partner,
                        category,
                        rows,
                        r.first_release or "",
                        r.last_release or "",
                        r.rows_revoked,
                        line.id if line else "",
                        line.state if line else "",
                        line.acknowledged_at.isoformat() if line and line.acknowledged_at else "",
                    ]
                )
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": "attachment; filename=where-my-data-went.csv"},
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


# --- operator console ----------------------------------------------------------------------------------


@router.get("/operator", response_class=HTMLResponse, responses=_answers(401))
def operator_agreements(
    request: Request, ws: WorkspaceDep, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    _operator(who)
    return render(
        request,
        ws,
        "operator_agreements.html",
        lines=views.agreements_view(ws, ws.require_policy()),
        tab="agreements",
    )


@router.get("/operator/releases", response_class=HTMLResponse, responses=_answers(401))
def operator_releases(
    request: Request, ws: WorkspaceDep, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    _operator(who)
    return render(request, ws, "operator_releases.html", releases=views.releases_view(ws), tab="releases")


@router.get("/operator/revenue", response_class=HTMLResponse, responses=_answers(401))
def operator_revenue(
    request: Request, ws: WorkspaceDep, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    _operator(who)
    return render(
        request, ws, "operator_revenue.html", view=views.revenue_view(ws, ws.require_policy()), tab="revenue"
    )


@router.get("/operator/compliance", response_class=HTMLResponse, responses=_answers(401))
def operator_compliance(
    request: Request, ws: WorkspaceDep, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    _operator(who)
    overdue = provenance.partners_by_overdue(ws)
    return render(
        request,
        ws,
        "operator_compliance.html",
        report=views.compliance_view(ws),
        tab="compliance",
        overdue=overdue,
    )


@router.get("/operator/policy", response_class=HTMLResponse, responses=_answers(401))
def operator_policy(
    request: Request, ws: WorkspaceDep, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    _operator(who)
    return render(request, ws, "operator_policy.html", revisions=views.policy_view(ws), tab="policy")
