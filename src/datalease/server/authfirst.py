"""Routes that authenticate before FastAPI reads the request body.

FastAPI reads and parses a body before it solves any dependency, so a bearer-token dependency alone
lets an anonymous client make the server buffer and parse whatever it sends. A router built with
`route_class=authenticated_first(check)` runs `check(request)` (headers only; it raises to refuse)
first; the body is read only for callers it let through. A plain `check` runs in a worker thread, a
coroutine function on the event loop (it must not block).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

Check = Callable[[Request], None] | Callable[[Request], Awaitable[None]]
Quick = Callable[[Request], bool]
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def authenticated_first(check: Check, quick: Quick | None = None) -> type[APIRoute]:
    """`quick(request)`, when given, runs on the event loop first and must do no blocking I/O: True
    lets the caller through without `check` (it saves a hop to a worker thread per request), False
    leaves the decision to `check`; it may raise to refuse."""

    on_loop = inspect.iscoroutinefunction(check)

    async def checked(request: Request) -> None:
        if on_loop:
            await cast(Callable[[Request], Awaitable[None]], check)(request)
        else:
            await run_in_threadpool(check, request)  # may query the store

    class AuthenticatedFirstRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handle = super().get_route_handler()

            async def handler(request: Request) -> Response:
                if quick is None or not quick(request):
                    await checked(request)
                return await handle(request)

            return handler

    return AuthenticatedFirstRoute
