"""Request bodies capped per endpoint, counted as they stream in: nothing beyond the cap is ever
buffered, whether the size was declared (Content-Length) or only shows while a chunked body arrives.

The cap is enforced inside `receive`, so a route that refuses a caller before reading (see
authfirst.py) never pays for the body, and a route that reads gets `BodyTooLargeError` instead of
the bytes beyond the cap; app.py answers it with 413 and the usual error body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Bodies of these methods are never read by a route (only drained), so they need no cap.
_UNREAD_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class BodyCap:
    limit: int  # bytes
    setting: str  # the environment variable that sets it, for the error message


CapFor = Callable[[str], BodyCap]  # request path → its cap


class BodyTooLargeError(HTTPException):
    """An HTTPException so that FastAPI, which turns other errors met while reading a body into a
    400, lets it through to the app's handler."""

    def __init__(self, cap: BodyCap) -> None:
        super().__init__(
            413,
            f"request body: at most {cap.limit:,} bytes are accepted here ({cap.setting}); this one is larger",
        )
        self.cap = cap


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, cap_for: CapFor) -> None:
        self.app = app
        self.cap_for = cap_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _UNREAD_METHODS:
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope["path"])
        declared = _content_length(scope)
        received = 0

        async def limited() -> Message:
            nonlocal received
            if declared is not None and declared > cap.limit:
                raise BodyTooLargeError(cap)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap.limit:
                    raise BodyTooLargeError(cap)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    return int(value) if value is not None and value.isascii() and value.isdigit() else None
