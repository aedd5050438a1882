"""File answers metered by what they actually sent.

A Range header says what a client asked for, not what it got: a multi-range request is answered
with several parts plus their multipart headers, an unsatisfiable or malformed range with a short
refusal, a range under a stale `If-Range` with the whole file, and HEAD with no body at all. So the
meter counts the `http.response.body` bytes the answer hands to the server, whatever it was.
"""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from typing import Any

import anyio
from fastapi.concurrency import run_in_threadpool
from starlette.responses import FileResponse
from starlette.types import Message, Receive, Scope, Send

PATHSEND = "http.response.pathsend"  # a server extension that would send the file unseen


class MeteredFileResponse(FileResponse):
    def __init__(self, path: str | PathLike[str], *, on_sent: Callable[[int], None], **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.on_sent = on_sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = 0

        async def counting(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != PATHSEND}
        try:
            await super().__call__({**scope, "extensions": extensions}, receive, counting)
        finally:
            with anyio.CancelScope(shield=True):  # a client that went away was still sent `sent` bytes
                await run_in_threadpool(self.on_sent, sent)
