"""Errors in the protocol's shape: an HTTP status and a JSON body `{"errorCode", "message"}`."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

UNAUTHENTICATED: Final = "UNAUTHENTICATED"
PERMISSION_DENIED: Final = "PERMISSION_DENIED"
NOT_FOUND: Final = "RESOURCE_DOES_NOT_EXIST"
INVALID: Final = "INVALID_PARAMETER_VALUE"
INTERNAL: Final = "INTERNAL_ERROR"


class SharingError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"errorCode": self.code, "message": self.message}


def unauthenticated(message: str) -> SharingError:
    return SharingError(401, UNAUTHENTICATED, message)


def forbidden(message: str) -> SharingError:
    return SharingError(403, PERMISSION_DENIED, message)


def not_found(message: str) -> SharingError:
    return SharingError(404, NOT_FOUND, message)


def invalid(message: str) -> SharingError:
    return SharingError(400, INVALID, message)


class ErrorBody(BaseModel):
    """What every refusal of the protocol and the JSON API carries (for the OpenAPI document)."""

    model_config = ConfigDict(populate_by_name=True)

    error_code: str = Field(alias="errorCode", examples=[INVALID])
    message: str


_MEANING: Final = {
    400: "A parameter or the body is not what the endpoint expects (the message names it)",
    401: "Missing, unknown, expired or revoked bearer token",
    403: "Not allowed for this caller",
    404: "No such resource for this caller",
    413: "The request body is larger than this endpoint accepts",
}


ERROR_CONTENT: Final = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can refuse with these statuses (JSON error bodies, whatever
    the route's own media type; app.py adds the ErrorBody schema to the document)."""
    return {status: {"description": _MEANING[status], "content": ERROR_CONTENT} for status in statuses}
