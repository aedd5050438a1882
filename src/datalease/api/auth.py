"""Requests of the platform's own services and of operators carry the platform API token as a bearer
token (services/api_token.py keeps it)."""

from __future__ import annotations

from datalease.services.api_token import is_api_token
from datalease.sharing import errors
from datalease.workspace import Workspace


def require_api_token(ws: Workspace, authorization: str | None) -> None:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise errors.unauthenticated(
            "missing bearer token: send `Authorization: Bearer <platform API token>`"
        )
    if not is_api_token(ws, authorization[7:]):
        raise errors.unauthenticated("the bearer token is not the platform API token")
