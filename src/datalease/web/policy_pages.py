"""The operator's policy pages: paste a revision, see what changes and what it would withdraw from
released shares (the CLI's `policy apply --dry-run`), confirm to apply it with its bulk withdrawal
(docs/orders.md, "A narrower policy"). The revision list itself is `/operator/policy` (web/routes.py).
Every POST carries the CSRF token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from datalease.errors import UserError
from datalease.policy.problems import ProblemsError
from datalease.services.policy import apply_policy, propose_policy
from datalease.web import views
from datalease.web.order_pages import OperatorText, answers
from datalease.web.routes import PageError, WorkspaceDep, render

router = APIRouter(tags=["Pages"])
MAX_POLICY_CHARS: Final = 256 * 1024
SOURCE: Final = "the pasted policy"


def _text(text: str) -> str:
    if len(text) > MAX_POLICY_CHARS:
        raise PageError(
            400, "Policy too long", f"A policy pasted here is at most {MAX_POLICY_CHARS} characters."
        )
    return text


@contextmanager
def _refused_as_pages() -> Iterator[None]:
    """A policy that does not load, or that rewrites history, is a 400 error page saying why."""
    try:
        yield
    except ProblemsError as exc:
        raise PageError(400, "The policy is not valid", "; ".join(str(p) for p in exc.problems)) from exc
    except UserError as exc:
        raise PageError(400, "Cannot apply this policy", str(exc)) from exc


@router.post(
    "/operator/policy/preview",
    response_class=HTMLResponse,
    responses=answers(400, 401, 403, 413, subject="policy"),
)
def preview_policy(request: Request, ws: WorkspaceDep, text: OperatorText) -> Response:
    """The revision's changes from the active one and what it would withdraw; nothing recorded."""
    with _refused_as_pages():
        proposal = propose_policy(ws, _text(text), SOURCE)
    return render(
        request,
        ws,
        "operator_policy.html",
        revisions=views.policy_view(ws),
        preview=proposal,
        text=text,
        tab="policy",
    )


@router.post(
    "/operator/policy",
    response_class=HTMLResponse,
    responses=answers(303, 400, 401, 403, 413, subject="policy revision"),
)
def confirm_policy(request: Request, ws: WorkspaceDep, text: OperatorText) -> Response:
    """Apply the revision, with its bulk withdrawal when it allows less (the bulk worker delivers it)."""
    with _refused_as_pages():
        apply_policy(ws, _text(text), SOURCE, actor="operator console")
    return RedirectResponse("/operator/policy", status_code=303)
