"""The live feed: one snapshot per contest per tick per process, fanned out to every subscriber.

10,000 open dashboards cost one Redis read per tick per process, because the snapshot is computed
once and the same bytes are written to every subscriber's queue. A subscriber that arrives between
ticks gets the latest frame at once; when there is none yet (the first subscriber of a contest),
the computation it triggers is shared with everyone who arrives while it runs and with the ticker,
so a burst of connections still costs one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

__all__ = ["HEARTBEAT", "LIVE", "LiveHub"]

log = logging.getLogger(__name__)

Snapshot = Callable[[str], Awaitable[dict[str, Any]]]

# An SSE comment line: keeps proxies and load balancers from closing an idle stream.
HEARTBEAT = b": heartbeat\n\n"


class LiveHub:
    """Per-process fan-out of contest snapshots to SSE subscribers.

    ``computes`` counts calls of the snapshot function (one Redis round trip each), ``ticks``
    the ticker's rounds; tests and /metrics read them.
    """

    def __init__(self, compute: Snapshot, tick_s: float = 1.0, queue_size: int = 4,
                 heartbeat_s: float = 15.0) -> None:
        self.compute = compute
        self.tick_s = tick_s
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.subscribers: dict[str, set[asyncio.Queue[bytes]]] = {}
        self.latest: dict[str, bytes] = {}
        self.last_id = 0
        self.ticks = 0
        self.computes = 0
        self._inflight: dict[str, asyncio.Future[bytes | None]] = {}

    def subscribe(self, contest_id: str) -> asyncio.Queue[bytes]:
        """A new subscriber's queue, holding the latest frame when there is one."""
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

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self.subscribers.values())

    def _next_id(self) -> int:
        # Milliseconds, strictly increasing: ids stay ordered across restarts and across the
        # processes of one deployment, so a Last-Event-ID from any of them is meaningful.
        self.last_id = max(int(time.time() * 1000), self.last_id + 1)
        return self.last_id

    def _publish(self, contest_id: str, frame: bytes) -> None:
        self.latest[contest_id] = frame
        for queue in list(self.subscribers.get(contest_id, ())):
            if queue.full():  # a slow reader skips a frame rather than holding memory
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(frame)

    async def _refresh(self, contest_id: str) -> bytes | None:
        """Compute, frame and publish one snapshot; concurrent callers share one computation."""
        pending = self._inflight.get(contest_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._inflight[contest_id] = future
        frame: bytes | None = None
        try:
            self.computes += 1
            data = await self.compute(contest_id)
            frame = b"id: %d\nevent: snapshot\ndata: %s\n\n" % (self._next_id(), orjson.dumps(data))
            if contest_id in self.subscribers:
                self._publish(contest_id, frame)
        except Exception as exc:  # a failed read skips a tick; subscribers keep their stream
            log.debug("live snapshot of %s failed: %s", contest_id, exc)
        finally:
            self._inflight.pop(contest_id, None)
            future.set_result(frame)
        return frame

    async def ensure_latest(self, contest_id: str) -> None:
        """Make sure subscribers of a contest have a frame now, not only at the next tick."""
        if contest_id not in self.latest:
            await self._refresh(contest_id)

    async def tick(self) -> None:
        for contest_id in list(self.subscribers):
            await self._refresh(contest_id)
        self.ticks += 1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_s)


# The app slot holding this process's hub; defined here so the domain never imports the web layer.
LIVE: web.AppKey[LiveHub] = web.AppKey("live")
