"""The operator's regulator-order pages: paste an order, see its impact (the CLI's `--dry-run`),
confirm to record it with its bulk withdrawal (docs/orders.md). Every POST carries the CSRF token."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from datalease.errors import UserError
from datalease.policy.problems import ProblemsError
from datalease.services.orders import apply_order, orders
from datalease.web.routes import SESSION_COOKIE, PageError, WorkspaceDep, render, viewer
from datalease.web.sessions import Viewer, csrf_ok

router = APIRouter(tags=["Pages"])
MAX_ORDER_CHARS: Final = 32 * 1024
_HTML: Final = {"text/html": {"schema": {"type": "string"}}}
_MEANING: Final = {
    303: "Redirect (the {subject} list)",
    400: "The error page: the {subject} is not valid (every problem listed)",
    401: "The error page: sign in first",
    403: "The error page: the form's security token is missing or wrong",
    413: "The error page: the form is larger than the pages accept",
}


def answers(*statuses: int, subject: str = "order") -> dict[int | str, dict[str, Any]]:
    """The documented answers of an operator form's route (`subject`: what the form records)."""
    meaning = {s: _MEANING[s].format(subject=subject) for s in statuses}
    return {
        s: {"description": meaning[s]} if s == 303 else {"description": meaning[s], "content": _HTML}
        for s in statuses
    }


def require_operator(who: Viewer | None) -> None:
    if who is None or not who.operator:
        raise PageError(401, "Operators only", "Sign in with the operator token to see the console.")


def require_csrf(request: Request, ws: WorkspaceDep, token: str) -> None:
    if not csrf_ok(ws.master_key, request.cookies.get(SESSION_COOKIE), token):
        raise PageError(
            403, "Form expired", "This form's security token is missing or wrong. Reload the page."
        )


def operator_text(
    request: Request,
    ws: WorkspaceDep,
    who: Annotated[Viewer | None, Depends(viewer)],
    text: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> str:
    """The text an operator's form posted (an order, a policy), once the session and the form's CSRF
    token are checked."""
    require_operator(who)
    require_csrf(request, ws, csrf)
    return text


OperatorText = Annotated[str, Depends(operator_text)]


def _checked(request: Request, ws: WorkspaceDep, text: str, *, dry_run: bool) -> Any:
    if len(text) > MAX_ORDER_CHARS:
        raise PageError(400, "Order too long", f"An order is at most {MAX_ORDER_CHARS} characters.")
    try:
        return apply_order(ws, text, "order", dry_run=dry_run)
    except ProblemsError as exc:
        raise PageError(400, "The order is not valid", "; ".join(str(p) for p in exc.problems)) from exc
    except UserError as exc:
        raise PageError(400, "Cannot record this order", str(exc)) from exc


@router.get("/operator/orders", response_class=HTMLResponse, responses=answers(401))
def orders_page(
    request: Request, ws: WorkspaceDep, who: Annotated[Viewer | None, Depends(viewer)]
) -> Response:
    require_operator(who)
    return render(request, ws, "operator_orders.html", orders=orders(ws), preview=None, text="", tab="orders")


@router.post("/operator/orders/preview", response_class=HTMLResponse, responses=answers(400, 401, 403, 413))
def preview_order(request: Request, ws: WorkspaceDep, text: OperatorText) -> Response:
    """What the order would withdraw, with a form to confirm it; nothing recorded."""
    outcome = _checked(request, ws, text, dry_run=True)
    return render(
        request, ws, "operator_orders.html", orders=orders(ws), preview=outcome, text=text, tab="orders"
    )


@router.post("/operator/orders", response_class=HTMLResponse, responses=answers(303, 400, 401, 403, 413))
def confirm_order(request: Request, ws: WorkspaceDep, text: OperatorText) -> Response:
    """Record the order with its bulk withdrawal (the bulk worker delivers it)."""
    _checked(request, ws, text, dry_run=False)
    return RedirectResponse("/operator/orders", status_code=303)
