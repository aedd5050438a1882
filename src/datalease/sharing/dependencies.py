"""FastAPI dependencies of the sharing endpoints (and the partner API): the service, and the partner
behind the bearer token — checked once per request, before any body is read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from datalease.sharing.service import Caller, SharingService


def service(request: Request) -> SharingService:
    found: SharingService = request.app.state.sharing
    return found


Service = Annotated[SharingService, Depends(service)]


def caller(request: Request, svc: Service) -> Caller:
    """The partner behind the bearer token (checked once per request, before any body is read)."""
    found: Caller | None = getattr(request.state, "caller", None)
    if found is None:
        found = svc.caller(request.headers.get("authorization"))
        request.state.caller = found
    return found


def authenticate(request: Request) -> None:
    caller(request, service(request))


Authorized = Annotated[Caller, Depends(caller)]
