"""The author's post list ("My posts") with a "for AI training" toggle per post (issue 18).

The toggle posts to `/users/<id>/posts/<post_id>/ai-training`, which records the per-post choice
through `services.post_choices` (author-only; a refusal is withdrawn from partners within seconds).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from datalease.errors import UserError
from datalease.services.post_choices import posts_of, set_post_choice
from datalease.web.routes import SESSION_COOKIE, PageError, WorkspaceDep, render, viewer
from datalease.web.sessions import Viewer, csrf_ok

router = APIRouter(tags=["Pages"])

_HTML = {"text/html": {"schema": {"type": "string"}}}
_MEANING = {
    303: "Redirect (the post list)",
    400: "The error page: a parameter is not what the page expects",
    401: "The error page: sign in first",
    403: "The error page: not yours, or the form's security token is missing or wrong",
    404: "The error page: no such post of yours",
    413: "The error page: the form is larger than the pages accept",
}


def _answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"description": _MEANING[s]} if s == 303 else {"description": _MEANING[s], "content": _HTML}
        for s in statuses
    }


def _require_owner(who: Viewer | None, user_id: int) -> None:
    if who is None:
        raise PageError(401, "Sign in", "Sign in to see your posts.")
    if who.user_id != user_id:
        raise PageError(403, "Not your page", "You can only see and choose for your own posts.")


@router.get("/users/{user_id}/posts", response_class=HTMLResponse, responses=_answers(400, 401, 403))
def posts_page(
    request: Request,
    ws: WorkspaceDep,
    user_id: int,
    who: Annotated[Viewer | None, Depends(viewer)],
    saved: int | None = None,
) -> Response:
    _require_owner(who, user_id)
    lines = posts_of(ws, user_id)
    return render(request, ws, "posts.html", user_id=user_id, posts=lines, saved=saved, tab="posts")


@router.post(
    "/users/{user_id}/posts/{post_id}/ai-training",
    response_class=HTMLResponse,
    responses=_answers(303, 400, 401, 403, 404, 413),
)
def choose_for_post(
    request: Request,
    ws: WorkspaceDep,
    user_id: int,
    post_id: int,
    who: Annotated[Viewer | None, Depends(viewer)],
    allowed: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    _require_owner(who, user_id)
    if not csrf_ok(ws.master_key, request.cookies.get(SESSION_COOKIE), csrf):
        raise PageError(
            403, "Form expired", "This form's security token is missing or wrong. Reload the page."
        )
    if allowed not in ("true", "false"):
        raise PageError(400, "Bad choice", f"allowed {allowed!r}: expected true or false")
    try:
        set_post_choice(ws, user_id, post_id, allowed == "true")
    except UserError as exc:
        raise PageError(404, "Not your post", str(exc)) from exc
    return RedirectResponse(f"/users/{user_id}/posts?saved={post_id}#post-{post_id}", status_code=303)
