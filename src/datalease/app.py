"""Builds the web app from settings: the one place where the server's adapters are wired.

`datalease serve` runs it under uvicorn; tests run the same app on a loopback port.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from datalease.api.health import router as health_router
from datalease.api.routes import router as api_router
from datalease.config import Settings
from datalease.revocation.worker import RevocationLoop
from datalease.sharing import errors
from datalease.sharing.router import router as sharing_router
from datalease.sharing.service import SharingService
from datalease.web import routes as web_routes
from datalease.web.routes import PageError
from datalease.web.routes import router as web_router
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
    app.include_router(sharing_router)
    app.include_router(api_router)
    app.include_router(health_router)
    app.include_router(web_router)
    app.mount(
        "/static", StaticFiles(directory=str(Path(web_routes.__file__).parent / "static")), name="static"
    )
    _install_error_handlers(app)
    return app


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
    try:
        yield
    finally:
        if loop is not None:
            loop.stop()
        sharing: SharingService = app.state.sharing
        sharing.flush_downloads(force=True)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.SharingError)
    async def sharing_error(_: Request, exc: errors.SharingError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> HTMLResponse:
        ws: Workspace = request.app.state.workspace
        return web_routes.render(
            request, ws, "error.html", status=exc.status, title=exc.title, message=exc.message
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('query', 'body'))}: {e.get('msg')}"
            for e in exc.errors()
        )
        return JSONResponse(errors.invalid(problems or "invalid request").body(), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = errors.NOT_FOUND if exc.status_code == 404 else errors.INVALID
        return JSONResponse({"errorCode": code, "message": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse({"errorCode": errors.INTERNAL, "message": "internal error"}, status_code=500)
