"""Builds the web app from settings: the one place where the server's adapters are wired.

`datalease serve` runs it under uvicorn; tests run the same app on a loopback port.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from datalease.api import problems
from datalease.api.health import router as health_router
from datalease.api.lineage import router as lineage_router
from datalease.api.platform import SETTINGS_PATH
from datalease.api.platform import router as platform_api_router
from datalease.api.platform_decide import DECIDE_BATCH_PATH
from datalease.api.routes import EVENTS_PATH
from datalease.api.routes import router as api_router
from datalease.config import Settings
from datalease.errors import UserError
from datalease.revocation.bulk import BulkLoop
from datalease.revocation.worker import RevocationLoop
from datalease.server.bodylimit import BodyCap, BodyLimitMiddleware, BodyTooLargeError, CapFor
from datalease.server.headers import SecurityHeadersMiddleware
from datalease.server.jsonbody import DefaultJsonBodyMiddleware
from datalease.server.timing import ServerTimingMiddleware
from datalease.sharing import errors
from datalease.sharing.router import PREFIX as SHARING_PREFIX
from datalease.sharing.router import router as sharing_router
from datalease.sharing.service import SharingService
from datalease.web import routes as web_routes
from datalease.web.agreement_end_pages import router as agreement_end_router
from datalease.web.billing_pages import router as billing_pages_router
from datalease.web.order_pages import router as order_pages_router
from datalease.web.policy_pages import router as policy_pages_router
from datalease.web.post_pages import router as post_pages_router
from datalease.web.routes import PageError
from datalease.web.routes import router as web_router
from datalease.web.transparency_pages import router as transparency_router
from datalease.workspace import Workspace

log = logging.getLogger("datalease.app")


def create_app(settings: Settings | None = None) -> FastAPI:
    ws = Workspace(settings)
    ws.init()
    app = FastAPI(
        title="datalease",
        summary="Consent-aware licensing of platform data to AI partners",
        lifespan=_lifespan,
    )
    app.state.workspace = ws
    app.state.sharing = SharingService(ws, url_lifetime_s=ws.settings.file_url_lifetime_s)
    # The platform's apps call decide and settings hundreds of times a second: their routes are
    # matched first (a request tries each router's routes in order).
    app.include_router(platform_api_router)
    app.include_router(sharing_router)
    app.include_router(api_router)
    app.include_router(health_router)
    app.include_router(web_router)
    app.include_router(billing_pages_router)
    app.include_router(post_pages_router)
    app.include_router(lineage_router)
    app.include_router(transparency_router)
    app.include_router(order_pages_router)  # issue 14: regulator orders with their impact
    app.include_router(agreement_end_router)  # issue 14: suspend/terminate with their impact
    app.include_router(policy_pages_router)  # issue 14: a revision's changes and impact, then apply
    app.mount(
        "/static", StaticFiles(directory=str(Path(web_routes.__file__).parent / "static")), name="static"
    )
    _install_error_handlers(app)
    # Added last = outermost: the body cap wraps everything, the headers every answer.
    app.add_middleware(DefaultJsonBodyMiddleware, is_json_path=_is_api)  # Content-Type optional
    app.add_middleware(BodyLimitMiddleware, cap_for=_body_caps(ws.settings))
    app.add_middleware(SecurityHeadersMiddleware, exempt=frozenset({"/docs", "/redoc"}))
    app.add_middleware(ServerTimingMiddleware)  # Server-Timing: app;dur=… on every answer
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _body_caps(settings: Settings) -> CapFor:
    """The cap per endpoint (docs/sharing.md, docs/revocation.md, docs/pages.md list them)."""
    events = BodyCap(settings.max_events_body_bytes, "DATALEASE_MAX_EVENTS_BODY_BYTES")
    api = BodyCap(settings.max_body_bytes, "DATALEASE_MAX_BODY_BYTES")
    form = BodyCap(settings.max_form_body_bytes, "DATALEASE_MAX_FORM_BODY_BYTES")

    def cap_for(path: str) -> BodyCap:
        if path in (EVENTS_PATH, SETTINGS_PATH, DECIDE_BATCH_PATH):
            return events
        return api if _is_api(path) else form

    return cap_for


def _is_api(path: str) -> bool:
    """JSON endpoints (errors as `{errorCode, message}`); everything else is a page."""
    return path.startswith((SHARING_PREFIX + "/", "/api/")) or path in (
        SHARING_PREFIX,
        "/openapi.json",
        "/health",
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path."""
    path = request.url.path
    return sorted(
        {
            m
            for r in request.app.routes
            if isinstance(r, APIRoute) and r.path_regex.match(path)
            for m in r.methods or ()
        }
    )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, less what this server never answers (422: validation errors are 400 here),
    plus the error body every refusal carries."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        components["ErrorBody"] = errors.ErrorBody.model_json_schema(by_alias=True)
        components["Problem"] = problems.Problem.model_json_schema()
        app.openapi_schema = schema
    return app.openapi_schema


YOUNG_OBJECTS: Final = 10_000


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The revocation worker runs beside the server, batching pending intents every window."""
    ws: Workspace = app.state.workspace
    loop: RevocationLoop | None = None
    if ws.settings.revocation_worker:
        loop = RevocationLoop(
            ws,
            window_s=ws.settings.revocation_window_s,
            on_error=lambda exc: log.error("revocation batch failed (will retry): %s", exc, exc_info=exc),
        )
        loop.start()
    # Bulk withdrawals on a thread of their own: single opt-outs never queue behind them (issue 14).
    bulk = BulkLoop(ws, window_s=ws.settings.revocation_window_s) if ws.settings.revocation_worker else None
    if bulk is not None:
        bulk.start()
    # What start-up made lives as long as the server: keep it out of every garbage collection (a full
    # one over it cost a 10,000-record decide/batch ~80 ms; docs/api.md, "What a call costs").
    gc.freeze()
    # What is loaded later (the people behind decisions, caches) is not frozen: collect the young
    # generation every YOUNG_OBJECTS allocations instead of every 700, or a 10,000-record batch, whose
    # records all survive until its answer, sets off collections over all of it (200 → 108 ms).
    gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
    try:
        yield
    finally:
        if bulk is not None:
            bulk.stop()
        if loop is not None:
            loop.stop()
        sharing: SharingService = app.state.sharing
        sharing.flush_downloads(force=True)


def _install_error_handlers(app: FastAPI) -> None:
    """Every refusal in the usual shape: `{errorCode, message}` for the APIs, the error page for pages."""

    def refuse(
        request: Request, status: int, code: str, title: str, message: str, field: str | None = None
    ) -> Response:
        if problems.uses_problems(request.url.path):  # the platform API: {error, field, message}
            body = problems.PlatformError(status, problems.code_for(status), field, message).body()
            return JSONResponse(body, status_code=status)
        if _is_api(request.url.path):
            return JSONResponse({"errorCode": code, "message": message}, status_code=status)
        ws: Workspace = request.app.state.workspace
        return web_routes.render(request, ws, "error.html", status=status, title=title, message=message)

    @app.exception_handler(errors.SharingError)
    async def sharing_error(_: Request, exc: errors.SharingError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(problems.PlatformError)
    async def platform_error(_: Request, exc: problems.PlatformError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> HTMLResponse:
        ws: Workspace = request.app.state.workspace
        return web_routes.render(
            request, ws, "error.html", status=exc.status, title=exc.title, message=exc.message
        )

    @app.exception_handler(BodyTooLargeError)
    async def too_large(request: Request, exc: BodyTooLargeError) -> Response:
        return refuse(request, 413, errors.INVALID, "Too large", str(exc.detail))

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError) -> Response:
        return refuse(request, 400, errors.INVALID, "Cannot do that", str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        listed = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('query', 'body'))}: {e.get('msg')}"
            for e in exc.errors()
        )
        first = exc.errors()[0] if exc.errors() else {}
        field = _json_path(first.get("loc", ())) or None
        return refuse(request, 400, errors.INVALID, "Not understood", listed or "invalid request", field)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = errors.NOT_FOUND if exc.status_code == 404 else errors.INVALID
        title = "Not found" if exc.status_code == 404 else "Not understood"
        answer = refuse(request, exc.status_code, code, title, str(exc.detail))
        answer.headers.update(exc.headers or {})
        if exc.status_code == 405:  # Starlette names only the first route of the path
            answer.headers["Allow"] = ", ".join(_allowed_methods(request))
        return answer

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse({"errorCode": errors.INTERNAL, "message": "internal error"}, status_code=500)


def _json_path(loc: Any) -> str:
    """`("body", "changes", 3, "key")` → `changes[3].key`; a header or parameter by its name."""
    path = ""
    for part in loc:
        if part in ("body", "query", "path", "header"):
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path
