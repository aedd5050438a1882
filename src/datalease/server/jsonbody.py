"""`Content-Type` is optional on the JSON APIs' bodies (PROTOCOL.md's clients do not all send it): a
request to a JSON path without one is read as `application/json`. Pages (forms) are unaffected."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send


class DefaultJsonBodyMiddleware:
    def __init__(self, app: ASGIApp, *, is_json_path: Callable[[str], bool]) -> None:
        self.app = app
        self.is_json_path = is_json_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") in ("POST", "PUT", "PATCH")
            and self.is_json_path(scope.get("path", ""))
            and not any(name == b"content-type" for name, _ in scope.get("headers", ()))
        ):
            headers = [*scope.get("headers", ()), (b"content-type", b"application/json")]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
