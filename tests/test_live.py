"""The live SSE feed: one snapshot per tick fanned out to every subscriber, heartbeats, reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from contest.web.app import create_app
from contest.web.live import LIVE, LiveHub
from tests.fixtures.app import LaneTestServer, make_settings, seed_contest


class Event:
    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.data = b""
        self.comments: list[bytes] = []

    @property
    def json(self) -> Any:
        return orjson.loads(self.data)


async def next_event(resp: Any, wait_s: float = 5.0) -> Event:
    """Read one SSE block (up to its blank line): a snapshot, a retry hint or a comment."""
    event = Event()

    async def read() -> Event:
        while True:
            line = await resp.content.readline()
            if not line:
                raise EOFError("stream closed")
            line = line.rstrip(b"\r\n")
            if not line:
                return event
            if line.startswith(b":"):
                event.comments.append(line)
            elif line.startswith(b"id: "):
                event.id = line[4:].decode()
            elif line.startswith(b"event: "):
                event.name = line[7:].decode()
            elif line.startswith(b"data: "):
                event.data += line[6:]

    return await asyncio.wait_for(read(), wait_s)


async def next_snapshot(resp: Any, wait_s: float = 5.0) -> Event:
    while True:
        event = await next_event(resp, wait_s)
        if event.name == "snapshot":
            return event


async def _client(redis_url: str, data_dir: Path, tick_ms: int) -> AsyncIterator[TestClient]:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(redis_url)
    await r.flushall()
    await r.aclose()
    client = TestClient(LaneTestServer(create_app(make_settings(redis_url, data_dir, live_tick_ms=tick_ms))))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def fast(redis_url: str, data_dir: Path) -> AsyncIterator[TestClient]:
    """Ticks every 100 ms."""
    async for c in _client(redis_url, data_dir, 100):
        yield c


@pytest.fixture
async def slow(redis_url: str, data_dir: Path) -> AsyncIterator[TestClient]:
    """Ticks once a minute: any frame seen within seconds came from the connect path, not a tick."""
    async for c in _client(redis_url, data_dir, 60_000):
        yield c


async def _finish_one(client: TestClient, seeded: Any) -> str:
    user = await seeded.register()
    resp = await client.post(f"/api/v1/contests/{seeded.contest_id}/attempts", headers=user["headers"])
    attempt = await resp.json()
    q = attempt["questions"][0]
    resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/answers", headers=user["headers"],
                             json={"index": q["index"], "choice": q["options"][0]["key"]})
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"/api/v1/attempts/{attempt['attempt_id']}/finish", headers=user["headers"])
    assert resp.status == 200, await resp.text()
    return str(user["user_id"])


async def test_one_snapshot_per_tick_for_fifty_subscribers(fast: TestClient) -> None:
    seeded = await seed_contest(fast)
    user_id = await _finish_one(fast, seeded)
    hub: LiveHub = fast.server.app[LIVE]
    computes0, ticks0 = hub.computes, hub.ticks

    streams = await asyncio.gather(*[fast.get(f"/api/v1/contests/{seeded.contest_id}/live") for _ in range(50)])
    try:
        assert all(s.status == 200 and s.headers["Content-Type"].startswith("text/event-stream") for s in streams)
        # every subscriber sees 4 snapshots; frames with the same id are the same bytes
        seen: dict[str, bytes] = {}
        for resp in streams:
            ids = []
            for _ in range(4):
                event = await next_snapshot(resp)
                assert event.id is not None
                assert seen.setdefault(event.id, event.data) == event.data
                ids.append(int(event.id))
            assert ids == sorted(ids) and len(set(ids)) == 4, ids
        assert hub.subscriber_count() == 50
        computes, ticks = hub.computes - computes0, hub.ticks - ticks0
    finally:
        for resp in streams:
            resp.close()

    # One computation per tick (plus the one the first connections shared), not one per subscriber:
    # fifty subscribers over several ticks would be hundreds of computations otherwise.
    assert 4 <= computes <= ticks + 2, (computes, ticks)
    snapshot = orjson.loads(next(iter(seen.values())))
    assert snapshot["top"][0]["user_id"] == user_id
    assert set(snapshot["stats"]) >= {"participants", "attempts_finished", "answers", "answers_per_s"}
    assert snapshot["stats"]["participants"] == 1


async def test_burst_of_connections_shares_the_first_computation(slow: TestClient) -> None:
    seeded = await seed_contest(slow)
    hub: LiveHub = slow.server.app[LIVE]
    computes0 = hub.computes
    streams = await asyncio.gather(*[slow.get(f"/api/v1/contests/{seeded.contest_id}/live") for _ in range(30)])
    try:
        events = await asyncio.gather(*[next_snapshot(s) for s in streams])
        # all got a frame at once, long before the first tick, from very few computations
        assert len({e.id for e in events}) <= 3
        assert hub.computes - computes0 <= 3, hub.computes - computes0
    finally:
        for resp in streams:
            resp.close()


async def test_heartbeat_comments_keep_an_idle_stream_open(slow: TestClient) -> None:
    seeded = await seed_contest(slow)
    hub: LiveHub = slow.server.app[LIVE]
    hub.heartbeat_s = 0.1
    resp = await slow.get(f"/api/v1/contests/{seeded.contest_id}/live")
    try:
        first = await next_event(resp)
        assert first.data == b"" and not first.comments  # the retry hint
        await next_snapshot(resp)
        beats = [await next_event(resp, wait_s=2.0) for _ in range(3)]
        assert all(b.comments == [b": heartbeat"] and b.name is None and not b.data for b in beats)
    finally:
        resp.close()


async def test_reconnect_with_last_event_id_gets_the_latest_snapshot_at_once(slow: TestClient) -> None:
    seeded = await seed_contest(slow)
    path = f"/api/v1/contests/{seeded.contest_id}/live"
    slow.server.app[LIVE].heartbeat_s = 0.1  # a closed stream is noticed at the next write
    keeper = await slow.get(path)  # keeps the contest's latest frame cached in the hub
    try:
        latest = await next_snapshot(keeper)
        resp = await slow.get(path)
        first = await next_snapshot(resp)
        resp.close()
        assert first.id == latest.id

        # reconnecting (as EventSource does) gets that same latest frame immediately, not at a tick
        again = await slow.get(path, headers={"Last-Event-ID": first.id or ""})
        event = await next_snapshot(again, wait_s=3.0)
        again.close()
        assert event.id == latest.id and event.data == latest.data
    finally:
        keeper.close()

    # with nobody subscribed the cache is dropped: the next subscriber sees fresh state and a newer id
    for _ in range(100):
        if slow.server.app[LIVE].subscriber_count() == 0:
            break
        await asyncio.sleep(0.02)
    user_id = await _finish_one(slow, seeded)
    resp = await slow.get(path, headers={"Last-Event-ID": latest.id or ""})
    try:
        fresh = await next_snapshot(resp, wait_s=3.0)
    finally:
        resp.close()
    assert int(fresh.id or 0) > int(latest.id or 0)
    assert [e["user_id"] for e in fresh.json["top"]] == [user_id]


async def test_live_of_unknown_contest_is_404_json(fast: TestClient) -> None:
    resp = await fast.get("/api/v1/contests/nope/live")
    assert resp.status == 404
    body = await resp.json()
    assert body["error"]["code"] == "not_found"
