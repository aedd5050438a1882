"""FastAPI dependencies of the sharing endpoints (and the partner API): the service, and the partner
behind the bearer token — checked once per request, before any body is read.

The dependencies are coroutines (FastAPI runs a plain `def` dependency in a worker thread: a thread
hop each); the token check's store read is shared by the requests in flight (server/coalesce.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from datalease.sharing.callers import Caller
from datalease.sharing.service import SharingService


def _service(request: Request) -> SharingService:
    found: SharingService = request.app.state.sharing
    return found


async def service(request: Request) -> SharingService:
    return _service(request)


Service = Annotated[SharingService, Depends(service)]


async def authenticate(request: Request) -> None:
    """Check the bearer token once per request (requests in flight share one store read)."""
    if getattr(request.state, "caller", None) is None:
        request.state.caller = await _service(request).callers.caller(request.headers.get("authorization"))


async def caller(request: Request) -> Caller:
    """The partner behind the bearer token (checked once per request, before any body is read)."""
    await authenticate(request)
    found: Caller = request.state.caller
    return found


Authorized = Annotated[Caller, Depends(caller)]
