"""The live feed: one snapshot per contest per tick per process, fanned out to every subscriber.

10,000 open dashboards cost one Redis read per tick per process, because the snapshot is computed
once and the same bytes are written to every subscriber's queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

__all__ = ["LiveHub"]

log = logging.getLogger(__name__)

Snapshot = Callable[[str], Awaitable[dict[str, Any]]]


class LiveHub:
    def __init__(self, compute: Snapshot, tick_s: float = 1.0, queue_size: int = 4) -> None:
        self.compute = compute
        self.tick_s = tick_s
        self.queue_size = queue_size
        self.subscribers: dict[str, set[asyncio.Queue[bytes]]] = {}
        self.latest: dict[str, bytes] = {}
        self.seq = 0
        self.ticks = 0

    def subscribe(self, contest_id: str) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(self.queue_size)
        self.subscribers.setdefault(contest_id, set()).add(queue)
        if contest_id in self.latest:
            queue.put_nowait(self.latest[contest_id])
        return queue

    def unsubscribe(self, contest_id: str, queue: asyncio.Queue[bytes]) -> None:
        subs = self.subscribers.get(contest_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                self.subscribers.pop(contest_id, None)
                self.latest.pop(contest_id, None)

    async def frame_now(self, contest_id: str) -> bytes:
        data = await self.compute(contest_id)
        self.seq += 1
        return b"id: %d\nevent: snapshot\ndata: %s\n\n" % (self.seq, orjson.dumps(data))

    async def tick(self) -> None:
        for contest_id in list(self.subscribers):
            try:
                data = await self.compute(contest_id)
            except Exception as exc:
                log.debug("live snapshot of %s failed: %s", contest_id, exc)
                continue
            self.seq += 1
            frame = b"id: %d\nevent: snapshot\ndata: %s\n\n" % (self.seq, orjson.dumps(data))
            self.latest[contest_id] = frame
            for queue in list(self.subscribers.get(contest_id, ())):
                if queue.full():  # a slow reader skips a frame rather than holding memory
                    with contextlib.suppress(asyncio.QueueEmpty):
                        queue.get_nowait()
                queue.put_nowait(frame)
        self.ticks += 1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_s)
