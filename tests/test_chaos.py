"""Chaos with real servers: Redis stops mid-contest, PostgreSQL stops mid-contest.

(kill -9 and SIGTERM of the server under load belong to the durability tests.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import FLUSHER, STORAGE, SWEEPER
from contest.embedded_redis import EmbeddedValkey
from contest.redis_client import RedisConnectionError, connect_redis
from contest.storage.base import Storage
from contest.workers.flusher import Flusher
from leaderboard import keys
from tests.fixtures.app import admin_headers, seed_contest
from tests.fixtures.postgres import PgServer, create_database, start_postgres, stop_postgres
from tests.test_attempts import key_of
from tests.test_flusher import many_answers, produce
from tests.test_review import drain

ClientFactory = Callable[..., Any]


async def answer(client: TestClient, user: dict[str, Any], aid: str, index: int, choice: str) -> Any:
    return await client.post(f"/api/v1/attempts/{aid}/answers", json={"index": index, "choice": choice},
                             headers=user["headers"])


async def wait_for(predicate: Callable[[], Any], seconds: float = 15.0) -> None:
    """Poll outside state (a server coming back) until it holds."""
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_redis_outage_gives_503_changes_nothing_and_recovers_without_restart(
        app_factory: ClientFactory, tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", appendonly=True).start()
    try:
        async with app_factory(redis_url=valkey.url) as client:
            seeded = await seed_contest(client)
            cid = seeded.contest_id
            user = await seeded.register()
            attempt = await (await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"])).json()
            aid = attempt["attempt_id"]
            correct = await key_of(client, aid)
            first = await answer(client, user, aid, 0, correct[0][0])
            assert first.status == 200
            first_body = await first.json()

            valkey.stop()  # SIGTERM: Valkey writes its AOF and goes away mid-contest
            down = [
                await answer(client, user, aid, 1, correct[1][0]),
                await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"]),
                await client.post(f"/api/v1/attempts/{aid}/finish", headers=user["headers"]),
                await client.get(f"/api/v1/attempts/{aid}", headers=user["headers"]),
                await client.post("/api/v1/auth/register",
                                  json={"name": "李四", "phone": "13999999999", "org_id": "360302002001"}),
                await client.get(f"/api/v1/contests/{cid}/leaderboard"),
                await client.get(f"/api/v1/admin/contests/{cid}/stats", headers=admin_headers()),
            ]
            for resp in down:
                assert resp.status == 503, (resp.url, resp.status, await resp.text())
                assert (await resp.json())["error"]["code"] == "unavailable"
                assert resp.headers["Retry-After"]
            ready = await client.get("/readyz")
            assert ready.status == 503 and (await ready.json())["redis"] != "ok"
            assert (await client.get("/healthz")).status == 200  # the process itself is fine
            # the background workers hit the outage too (and must come back by themselves below)
            flusher, sweeper = client.server.app[FLUSHER], client.server.app[SWEEPER]
            deadline = time.monotonic() + 10
            while flusher.errors < 1 or sweeper.errors < 1:
                assert time.monotonic() < deadline, (flusher.errors, sweeper.errors)
                await asyncio.sleep(0.01)

            valkey.start()  # same port, same data directory: no app restart
            await wait_for(lambda: _ready(client))
            again = await answer(client, user, aid, 0, correct[0][0])
            assert again.status == 200 and await again.json() == first_body  # the state survived
            second = await answer(client, user, aid, 1, correct[1][0])
            assert second.status == 200
            finished = await (await client.post(f"/api/v1/attempts/{aid}/finish", headers=user["headers"])).json()
            assert finished["rank"] == 1
            state = await (await client.get(f"/api/v1/attempts/{aid}", headers=user["headers"])).json()
            assert [a["index"] for a in state["answered"]] == [0, 1]  # the refused answer was not half written
            redis = aioredis.Redis.from_url(valkey.url)
            try:
                stats = await redis.hgetall(keys.stats(cid))
            finally:
                await redis.aclose()
            assert int(stats[b"answers"]) == 2 and int(stats[b"attempts_started"]) == 1
            assert int(stats[b"attempts_finished"]) == 1
            # the background workers came back by themselves: the record catches up
            await wait_for(lambda: _backlog_is(client, 0))
            rows = await client.server.app[STORAGE].count_rows(cid)
            assert (rows["attempts"], rows["finished"], rows["answers"]) == (1, 1, 2)
    finally:
        valkey.stop()


async def _ready(client: TestClient) -> bool:
    return (await client.get("/readyz")).status == 200


async def _backlog_is(client: TestClient, n: int) -> bool:
    resp = await client.get("/readyz")
    return resp.status == 200 and (await resp.json())["backlog"] == n


@pytest.mark.postgres
async def test_postgres_outage_participants_keep_playing_backlog_drains(
        app_factory: ClientFactory, pg_server: PgServer) -> None:
    async with app_factory(database_url=await create_database(pg_server)) as client:
        seeded = await seed_contest(client)
        cid = seeded.contest_id
        await drain(client)
        stop_postgres(pg_server)
        try:
            played = []
            for _ in range(3):
                user = await seeded.register()  # registration needs only Redis
                attempt = await (await client.post(f"/api/v1/contests/{cid}/attempts",
                                                   headers=user["headers"])).json()
                aid = attempt["attempt_id"]
                correct = await key_of(client, aid)
                for q in attempt["questions"][:3]:
                    resp = await answer(client, user, aid, q["index"], correct[q["index"]][0])
                    assert resp.status == 200
                done = await client.post(f"/api/v1/attempts/{aid}/finish", headers=user["headers"])
                assert done.status == 200
                played.append((await done.json())["score"])
            board = await (await client.get(f"/api/v1/contests/{cid}/leaderboard")).json()
            assert board["total"] == 3
            ready = await client.get("/readyz")
            body = await ready.json()
            assert ready.status == 503 and body["database"] != "ok" and body["redis"] == "ok"
            assert body["backlog"] >= 3 * (1 + 3 + 1) + 3  # starts, answers, finishes, registrations
            export = await client.get(f"/api/v1/admin/contests/{cid}/export", headers=admin_headers())
            assert export.status == 503 and (await export.json())["error"]["code"] == "unavailable"
        finally:
            start_postgres(pg_server)
        await wait_for(lambda: _backlog_is(client, 0), seconds=30)
        rows = await client.server.app[STORAGE].count_rows(cid)
        assert (rows["attempts"], rows["finished"], rows["answers"], rows["users"]) == (3, 3, 9, 3)


async def test_redis_stopping_under_concurrent_answers_leaves_no_half_writes(
        app_factory: ClientFactory, tmp_path: Path) -> None:
    """Answers in flight when Redis goes away either happened whole or not at all; retried after
    the return, every counter, every attempt and the database agree."""
    valkey = EmbeddedValkey(tmp_path / "valkey", appendonly=True).start()
    try:
        async with app_factory(redis_url=valkey.url, rl_answer_user=(0, 0)) as client:
            seeded = await seed_contest(client)
            cid = seeded.contest_id
            players = []
            for _ in range(8):
                user = await seeded.register()
                attempt = await (await client.post(f"/api/v1/contests/{cid}/attempts",
                                                   headers=user["headers"])).json()
                players.append((user, attempt["attempt_id"], await key_of(client, attempt["attempt_id"])))
            jobs = [(user, aid, i, key[i][0]) for user, aid, key in players for i in range(len(key))]
            queue = list(jobs)
            statuses: list[int] = []

            async def sender() -> None:  # a stream of answers, 4 in flight at a time
                while queue:
                    statuses.append((await answer(client, *queue.pop(0))).status)

            senders = asyncio.gather(*(sender() for _ in range(4)))
            deadline = time.monotonic() + 15
            while statuses.count(200) < len(jobs) // 3:
                assert time.monotonic() < deadline, statuses
                await asyncio.sleep(0.001)
            # Redis goes away now, with answers in flight and two thirds still to come.  SIGKILL, not
            # SIGTERM: Valkey serves on for up to a cron tick after SIGTERM, so the moment of the
            # stop would not be the test's (the AOF keeps what it acknowledged: the process died,
            # not the host)
            assert valkey.process is not None
            valkey.process.kill()
            await senders
            await asyncio.to_thread(valkey.kill)  # reaped, its pipes closed
            # both outcomes happened, and nothing else: acknowledged before, refused after
            assert set(statuses) <= {200, 503}, statuses
            assert statuses.count(200) >= len(jobs) // 3 and statuses.count(503) > 0, statuses
            valkey.start()
            await wait_for(lambda: _ready(client))
            # the client retries whatever was not acknowledged; acknowledged ones replay identically
            for job in jobs:
                resp = await answer(client, *job)
                assert resp.status == 200, await resp.text()
            answered = 0
            for user, aid, key in players:
                resp = await client.get(f"/api/v1/attempts/{aid}", headers=user["headers"])
                state = await resp.json()
                assert resp.status == 200, state
                assert sorted(a["index"] for a in state["answered"]) == list(range(len(key)))
                assert state["score"] == sum(a["points_awarded"] for a in state["answered"])
                answered += len(state["answered"])
            redis = aioredis.Redis.from_url(valkey.url)
            try:
                stats = await redis.hgetall(keys.stats(cid))
            finally:
                await redis.aclose()
            assert int(stats[b"answers"]) == answered == len(jobs)
            await wait_for(lambda: _backlog_is(client, 0))
            assert (await client.server.app[STORAGE].count_rows(cid))["answers"] == answered
    finally:
        valkey.stop()


class _StopsRedisAfterCommit:
    """Real storage; the first batch it commits takes Redis down before the flusher can XACK it."""

    def __init__(self, storage: Storage, valkey: EmbeddedValkey) -> None:
        self.storage = storage
        self.valkey = valkey
        self.armed = True

    async def _then_stop(self, written: Any) -> None:
        await written
        if self.armed:
            self.armed = False
            await asyncio.to_thread(self.valkey.stop)

    async def write_events(self, events: list[Any]) -> None:
        await self._then_stop(self.storage.write_events(events))

    async def write_raw(self, events: list[Any]) -> None:  # the flusher's fast path, where it exists
        await self._then_stop(self.storage.write_raw(events))  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


async def test_an_ack_lost_to_a_redis_outage_is_redone_when_it_returns(sqlite_storage: Storage,
                                                                       tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", appendonly=True).start()
    redis = connect_redis(valkey.url)
    try:
        await produce(redis, many_answers(3, 9))
        # a long claim time: the consumer must find its own unacknowledged entries, not XAUTOCLAIM them
        flusher = Flusher(redis, _StopsRedisAfterCommit(sqlite_storage, valkey), consumer="f1", batch=100,
                          claim_idle_ms=600_000)
        with pytest.raises(RedisConnectionError):
            await flusher.flush_once()  # committed to the database, then the XACK found Redis gone
        assert (await sqlite_storage.count_rows("c1"))["answers"] == 27
        valkey.start()
        await flusher.flush_once()
        assert await flusher.backlog() == 0  # re-read as pending, stored once more (idempotent), acked
        assert (await sqlite_storage.count_rows("c1"))["answers"] == 27
    finally:
        await redis.aclose()
        valkey.stop()
