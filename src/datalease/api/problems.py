"""Refusals of the platform API (`/api/v1/platform/…` except the events endpoint, which keeps the
protocol's `{errorCode, message}`): `{error, field, message}` — a code, the input at fault (a JSON path
such as `changes[3].key`, a header, a parameter, or null) and what was expected."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, Field

PREFIX: Final = "/api/v1/platform/"
EVENTS: Final = "/api/v1/platform/events"


class PlatformError(Exception):
    def __init__(self, status: int, error: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.field, self.message = status, error, field, message

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "field": self.field, "message": self.message}


class Problem(BaseModel):
    """What every refusal of the platform API carries."""

    error: str = Field(examples=["invalid"])
    field: str | None = Field(examples=["changes[0].key"])
    message: str = Field(examples=["'share.tweets': expected share.<category> with category one of posts, …"])


_CODES: Final = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict"}


def code_for(status: int) -> str:
    return _CODES.get(status, "too_large" if status == 413 else "not_allowed" if status == 405 else "error")


def uses_problems(path: str) -> bool:
    return path.startswith(PREFIX) and path != EVENTS


_MEANING: Final = {
    400: "The body or a parameter is not what the endpoint expects (`field` names it)",
    401: "Missing, unknown or revoked bearer token",
    403: "The token lacks the scope this endpoint needs (the message names it)",
    404: "No such user",
    409: "The Idempotency-Key was used with other content",
    413: "Too many items, or the body is too large",
}
CONTENT: Final = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"description": _MEANING[s], "content": CONTENT} for s in statuses}
