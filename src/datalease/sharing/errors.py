"""Errors in the protocol's shape: an HTTP status and a JSON body `{"errorCode", "message"}`."""

from __future__ import annotations

from typing import Final

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
