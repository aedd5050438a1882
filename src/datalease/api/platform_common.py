"""What every `/api/v1/platform` route shares: the workspace, the scoped-token check (run before the
body is read; services/scoped_tokens.py), refusals as `{error, field, message}` (api/problems.py) and
the ids and instants its bodies carry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Request
from pydantic import AwareDatetime, BeforeValidator, Field

from datalease.api.problems import PlatformError
from datalease.platform.schemas import MAX_ID
from datalease.server.authfirst import authenticated_first
from datalease.services import scoped_tokens
from datalease.services.settings_api import SettingsApiError
from datalease.workspace import Workspace

UserId = Annotated[int, Field(ge=0, le=MAX_ID)]
Instant = Annotated[AwareDatetime, Field(description="ISO 8601 with a UTC offset")]


# In a JSON body only an ISO 8601 string is an instant (lax mode would also take numbers).
def _only_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time text such as 2026-05-01T09:30:00Z")
    return value


BodyInstant = Annotated[
    AwareDatetime, BeforeValidator(_only_text), Field(description="ISO 8601 with a UTC offset")
]


def workspace_of(request: Request) -> Workspace:
    found: Workspace = request.app.state.workspace
    return found


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header or not header.lower().startswith("bearer "):
        raise PlatformError(
            401, "unauthenticated", "Authorization", "send `Authorization: Bearer <API token>`"
        )
    return header[7:]


def requires(scope: str) -> Any:
    """The route class of a router whose routes need `scope`: the platform API token passes without a
    worker thread, any other token is looked up in the store."""

    def platform_token(request: Request) -> bool:
        """The platform API token (every scope) is known without the store: no worker thread."""
        caller = scoped_tokens.platform_caller(workspace_of(request), _bearer(request))
        if caller is not None:
            request.state.caller = caller
        return caller is not None

    def check(request: Request) -> None:
        caller = scoped_tokens.caller_of(workspace_of(request), _bearer(request))
        if caller is None:
            raise PlatformError(401, "unauthenticated", "Authorization", "unknown or revoked API token")
        if not caller.has(scope):
            raise PlatformError(
                403, "missing_scope", "Authorization", f"this token lacks the scope {scope!r} ({caller.name})"
            )
        request.state.caller = caller

    return authenticated_first(check, quick=platform_token)


def refused(exc: SettingsApiError) -> PlatformError:
    return PlatformError(exc.status, exc.error, exc.field, exc.message)


def check_instant(value: datetime | None, field: str) -> None:
    if value is not None and not 1900 <= value.year <= 9000:
        raise PlatformError(400, "invalid", field, "expected an instant between the years 1900 and 9000")
