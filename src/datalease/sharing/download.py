"""Signed file URLs, answered and metered by what they actually sent.

A Range header says what a client asked for, not what it got: a multi-range request is answered
with several parts plus their multipart headers, an unsatisfiable or malformed range with a short
refusal, a range under a stale `If-Range` with the whole file, and HEAD with no body at all. So the
meter counts the `http.response.body` bytes the answer hands to the server, whatever it was.
"""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from typing import Any, Final

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.responses import FileResponse
from starlette.types import Message, Receive, Scope, Send

from datalease.sharing import errors
from datalease.sharing.dependencies import Service

PATHSEND = "http.response.pathsend"  # a server extension that would send the file unseen


class MeteredFileResponse(FileResponse):
    def __init__(self, path: str | PathLike[str], *, on_sent: Callable[[int], None], **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.on_sent = on_sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = 0
        metered = False

        async def counting(message: Message) -> None:
            nonlocal sent, metered
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):  # logged before the last part leaves
                    metered = True
                    self.on_sent(sent)  # one append to the usage log: no database, no waiting
            await send(message)

        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != PATHSEND}
        try:
            await super().__call__({**scope, "extensions": extensions}, receive, counting)
        finally:
            if not metered:  # a client that went away was still sent `sent` bytes
                with anyio.CancelScope(shield=True):
                    await run_in_threadpool(self.on_sent, sent)


# Signed file URLs carry their own signature: no bearer token.
router = APIRouter(tags=["Delta Sharing"])

_OCTETS: Final = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_FILE_ANSWERS: Final = {
    200: {"description": "The file", "content": _OCTETS},
    206: {
        "description": "The requested range (multipart/byteranges for several)",
        "content": {**_OCTETS, "multipart/byteranges": {"schema": {"type": "string", "format": "binary"}}},
    },
    400: {
        "description": "A path that is not a file of a shared table, or a malformed Range header",
        "content": {
            **errors.ERROR_CONTENT,
            "text/plain": {"schema": {"type": "string"}},
        },
    },
    **errors.documented(403, 404),
    416: {
        "description": "The Range is outside the file",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
}


@router.head(
    "/files/{path:path}",
    status_code=200,
    response_class=MeteredFileResponse,
    responses=_FILE_ANSWERS,
    operation_id="head_file",
)
@router.get(
    "/files/{path:path}",
    status_code=200,
    response_class=MeteredFileResponse,
    responses=_FILE_ANSWERS,
    operation_id="download_file",
)
def download(path: str, request: Request, svc: Service) -> Response:
    """A signed file URL. Metered by the body bytes actually sent (HEAD and refused ranges send none)."""
    served = svc.open_file(path, dict(request.query_params))

    def sent(count: int) -> None:
        svc.meter_download(served.partner, served.share, served.table, count)

    return MeteredFileResponse(served.path, on_sent=sent, media_type="application/octet-stream")
