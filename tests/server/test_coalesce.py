"""server/coalesce.py: concurrent requests share one store read, and none is answered from a read that
began before it arrived."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from datalease.server.coalesce import Coalesced


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def fetch(self, keys: Sequence[int]) -> list[int]:
        self.batches.append(list(keys))
        self.started.set()
        assert self.release.wait(5)
        return [k * 10 for k in keys]


def test_requests_in_flight_share_one_read_and_each_gets_its_own_answer() -> None:
    recorder = Recorder()
    shared = Coalesced(recorder.fetch)

    async def main() -> list[int]:
        return await asyncio.gather(*(shared.get(k) for k in range(20)))

    assert asyncio.run(main()) == [k * 10 for k in range(20)]
    assert len(recorder.batches) == 1 and sorted(recorder.batches[0]) == list(range(20))


def test_a_request_arriving_during_a_read_waits_for_the_next_one() -> None:
    recorder = Recorder()
    recorder.release.clear()
    shared = Coalesced(recorder.fetch)

    async def main() -> tuple[int, int]:
        first = asyncio.ensure_future(shared.get(1))
        await asyncio.to_thread(recorder.started.wait, 5)  # the first read is running
        second = asyncio.ensure_future(shared.get(2))
        await asyncio.sleep(0.05)
        recorder.release.set()
        return await first, await second

    assert asyncio.run(main()) == (10, 20)
    assert recorder.batches == [[1], [2]]  # 2 was not answered by the read that began before it


def test_a_failed_read_fails_its_batch_only() -> None:
    calls: list[list[int]] = []

    def fetch(keys: Sequence[int]) -> list[int]:
        calls.append(list(keys))
        if len(calls) == 1:
            raise ConnectionError("the store went away")
        return list(keys)

    shared = Coalesced(fetch)

    async def main() -> int:
        with pytest.raises(ConnectionError, match="went away"):
            await asyncio.gather(shared.get(1), shared.get(2))
        return await shared.get(3)

    assert asyncio.run(main()) == 3


def test_each_event_loop_has_its_own_queue() -> None:
    shared: Coalesced[int, int] = Coalesced(lambda keys: list(keys))
    assert asyncio.run(shared.get(1)) == 1
    assert asyncio.run(shared.get(2)) == 2  # a new loop (a restarted test client) is not stuck
