"""HTTP at the socket: send a request head, then stream a body only as long as the server has not
answered, to see whether it answers before reading the body (and what its process holds meanwhile)."""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PIECE: Final = 1024 * 1024
STALL_SECONDS: Final = 20.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    body_sent: int  # bytes of the request body sent before the answer arrived


def rss_bytes(pid: int) -> int:
    """The resident set size of a process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def post_streaming(
    port: int,
    path: str,
    *,
    total: int,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
    content_type: str = "application/json",
) -> Answer:
    """POST `total` body bytes (declared in Content-Length, or chunked) one piece at a time, stopping
    as soon as the server answers. A server that neither reads nor answers fails the call."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Type: {content_type}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    piece = b"[" + b" " * (PIECE - 1)
    framed = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
    with socket.create_connection(("127.0.0.1", port), timeout=STALL_SECONDS) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sent = 0
        pending = b""
        while True:
            readable, writable, _ = select.select([sock], [sock] if sent < total else [], [], STALL_SECONDS)
            if readable:
                break
            if not writable:
                raise AssertionError(
                    f"{path}: no answer after {sent} body bytes (the server waits for the rest)"
                )
            if not pending:
                pending = framed
            try:
                done = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            pending = pending[done:]
            if not pending:
                sent += len(piece)
        status, answer_headers, body = _read_answer(sock)
    return Answer(status, answer_headers, body, sent)
