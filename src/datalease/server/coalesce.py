"""Store reads shared by the requests in flight at once: one worker-thread hop and one statement for a
batch of them instead of one each.

Under load a hop per request is the dearest part of a small answer: 16 concurrent `/query` clients
cost ~1.9 ms of server CPU per request with a hop per token check, ~1.0 ms without
(benchmarks/sharing.py), the difference being threads handing the GIL back and forth. A request
joins the batch waiting to be read, never one already being read: whatever it gets was read after
it arrived, as fresh as its own read would have been.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class _Queue(Generic[K, V]):
    waiting: list[tuple[K, asyncio.Future[V]]] = field(default_factory=list)
    draining: bool = False
    task: asyncio.Task[None] | None = None  # referenced: the loop keeps only a weak one


class Coalesced(Generic[K, V]):
    def __init__(self, fetch: Callable[[Sequence[K]], Sequence[V]]) -> None:
        """`fetch(keys)` (blocking; run in a worker thread) answers every key, in order."""
        self._fetch = fetch
        # Per event loop: an app may be served by several loops over its life (tests do).
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue[K, V]] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        answer: asyncio.Future[V] = loop.create_future()
        queue.waiting.append((key, answer))
        if not queue.draining:
            queue.draining = True
            queue.task = loop.create_task(self._drain(queue))
        return await answer

    async def _drain(self, queue: _Queue[K, V]) -> None:
        try:
            while queue.waiting:
                batch, queue.waiting = queue.waiting, []
                try:
                    found = await run_in_threadpool(self._fetch, [key for key, _ in batch])
                except Exception as exc:  # every waiter of this batch gets the failure
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                for (_, answer), value in zip(batch, found, strict=True):
                    if not answer.done():  # its request may have been cancelled meanwhile
                        answer.set_result(value)
        finally:
            queue.draining = False
