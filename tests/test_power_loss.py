"""A power loss of the Valkey host, with real processes: QUIZ_ACK_DURABILITY=fsync loses nothing
acknowledged, memory loses what the AOF had not fsynced (and the test sees it).

Valkey's ``--dir`` is on tests/fixtures/lazyfs.py, a FUSE filesystem that keeps written-but-unsynced
data in memory and forgets it on command, as a host's page cache does when the power goes.  Players
start, answer and finish through the app; then Valkey is frozen (SIGSTOP: no reply leaves it any
more, so the client's acknowledgements are final), killed, the unsynced data dropped, and a new
Valkey starts from what reached the "disk".  Every acknowledged start, answer and finish is looked
up there.  (A kill of the Valkey *process* alone loses nothing in any mode: the kernel keeps its
writes; tests/test_durability.py covers that.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import STORAGE
from contest.embedded_redis import EmbeddedValkey
from contest.play import parse_attempt_id
from contest.web.app import create_app
from leaderboard import keys
from tests.fixtures.app import LaneTestServer, make_settings
from tests.fixtures.lazyfs import LazyFS
from tests.fixtures.play import Player, choice_for, register, seed_custom

PLAYERS = 12


class Acks:
    """What the clients were told succeeded."""

    def __init__(self) -> None:
        self.starts: set[str] = set()
        self.answers: dict[tuple[str, int], Any] = {}
        self.finishes: set[str] = set()

    def __len__(self) -> int:
        return len(self.starts) + len(self.answers) + len(self.finishes)


async def _play(client: TestClient, player: Player, cid: str, acks: Acks) -> None:
    while True:
        resp = await client.post(f"/api/v1/contests/{cid}/attempts", headers=player.headers)
        body = await resp.json()
        if resp.status not in (200, 201):
            continue
        aid = body["attempt_id"]
        acks.starts.add(aid)
        for q in body["questions"]:
            resp = await client.post(f"/api/v1/attempts/{aid}/answers", headers=player.headers,
                                     json={"index": q["index"], "choice": choice_for(q)})
            await resp.read()
            if resp.status == 200:
                acks.answers[(aid, q["index"])] = q["index"]
        resp = await client.post(f"/api/v1/attempts/{aid}/finish", headers=player.headers)
        await resp.read()
        if resp.status == 200:
            acks.finishes.add(aid)


async def _missing(url: str, cid: str, acks: Acks) -> dict[str, int]:
    redis = aioredis.Redis.from_url(url)
    try:
        lost = {"starts": 0, "answers": 0, "finishes": 0}
        for aid in acks.starts:
            if not await redis.exists(keys.attempt(cid, aid, parse_attempt_id(aid)[1])):
                lost["starts"] += 1
        for aid, index in acks.answers:
            if await redis.hget(keys.attempt(cid, aid, parse_attempt_id(aid)[1]), f"a{index}") is None:
                lost["answers"] += 1
        for aid in acks.finishes:
            if await redis.hget(keys.attempt(cid, aid, parse_attempt_id(aid)[1]), "fin") != b"1":
                lost["finishes"] += 1
        return lost
    finally:
        await redis.aclose()


async def _check_the_record(settings: Any, cid: str, acks: Acks) -> None:
    """A service on the restarted Valkey drains what the streams still hold into the database the
    first one was filling: every acknowledgement is in it once, and the board holds everyone who
    finished (a recount)."""
    client = TestClient(LaneTestServer(create_app(settings)))
    await client.start_server()
    try:
        async def drained() -> bool:
            resp = await client.get("/readyz")
            return resp.status == 200 and (await resp.json())["backlog"] == 0

        await _wait(drained, 30, "the flusher did not drain the streams")
        storage = client.server.app[STORAGE]
        rows = [(r["attempt_id"], int(r["idx"])) async for r in storage.load_answers(cid)]
        assert len(rows) == len(set(rows)), "an answer was stored twice"
        assert set(acks.answers) <= set(rows)
        attempts = {r["attempt_id"]: r async for r in storage.load_attempts(cid)}
        assert acks.starts <= set(attempts)
        assert all(attempts[aid]["finished_at"] is not None for aid in acks.finishes)
        finishers = {attempts[aid]["user_id"] for aid, r in attempts.items() if r["finished_at"] is not None}
        board = await (await client.get(f"/api/v1/contests/{cid}/leaderboard?limit=200")).json()
        assert board["total"] == len(finishers)
    finally:
        await client.close()


async def _wait(condition: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "power_loss"), [("fsync", True), ("memory", True), ("memory", False)],
                         ids=["fsync", "memory", "memory-process-kill-only"])
async def test_power_loss(mode: str, power_loss: bool, tmp_path: Path, record_property: Any) -> None:
    fs = await asyncio.to_thread(LazyFS(tmp_path / "lazy").start)
    # fsync mode runs the server as the service requires it (checked at startup: appendfsync
    # always); memory mode as production ran before (everysec).  The log stays off the lazy disk.
    fsync = ("--appendfsync", "always") if mode == "fsync" else ("--appendfsync", "everysec")
    valkey = EmbeddedValkey(fs.mount, appendonly=True,
                            extra_args=(*fsync, "--logfile", str(tmp_path / "valkey.log"))).start()
    restarted: EmbeddedValkey | None = None
    client: TestClient | None = None
    try:
        settings = make_settings(valkey.url, tmp_path / "data", ack_durability=mode, rate_limits=False,
                                 run_sweeper=False)
        client = TestClient(LaneTestServer(create_app(settings)))
        await client.start_server()
        cid = await seed_custom(client)
        players = [await register(client, name=f"p{i}") for i in range(PLAYERS)]
        acks = Acks()
        tasks = [asyncio.create_task(_play(client, p, cid, acks)) for p in players]

        async def enough() -> bool:
            return len(acks) >= 150

        await _wait(enough, 30, "play did not get going")
        assert valkey.process is not None
        # Freeze Valkey at a moment when something is unsynced (with everysec there nearly always
        # is; with always only between a write and its fsync, which the freeze may also catch).
        deadline = time.monotonic() + 10
        while True:
            os.kill(valkey.process.pid, signal.SIGSTOP)
            unsynced = await asyncio.to_thread(fs.unsynced)
            if mode == "fsync" or unsynced > 0:
                break
            os.kill(valkey.process.pid, signal.SIGCONT)
            assert time.monotonic() < deadline, "the AOF never had unsynced data"
            await asyncio.sleep(0.005)
        # Replies Valkey wrote before the freeze may still be in the socket: let the clients read
        # them (they are acknowledgements like any other) until nothing new comes.
        seen = -1
        while seen != len(acks):
            seen = len(acks)
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        valkey.kill()  # SIGKILL of the frozen process; its fds close (close(2) is not a sync)
        # ... and the power goes out; or, when only the process died, the kernel writes it all out
        unsynced_files = await asyncio.to_thread(fs.files)
        dropped = await asyncio.to_thread(fs.drop) if power_loss else 0
        if not power_loss:
            await asyncio.to_thread(fs.sync)
        await asyncio.wait_for(client.close(), 30)
        client = None
        await asyncio.to_thread(fs.stop)
        restarted = EmbeddedValkey(fs.backing, appendonly=True,
                                   extra_args=(*fsync, "--logfile", str(tmp_path / "valkey2.log"))).start()
        lost = await _missing(restarted.url, cid, acks)
        fault = "power loss" if power_loss else "Valkey process killed only"
        report = (f"{mode}, {fault}: {len(acks.starts)} starts, {len(acks.answers)} answers, "
                  f"{len(acks.finishes)} finishes "
                  f"acknowledged; {dropped} unsynced bytes dropped ({unsynced_files}); lost {lost}")
        record_property("power_loss", report)
        print(report)
        if mode == "fsync" or not power_loss:
            assert sum(lost.values()) == 0, report
            await _check_the_record(settings.replace(redis_url=restarted.url), cid, acks)
        else:
            assert dropped > 0 and sum(lost.values()) > 0, f"memory mode should lose the unsynced tail: {report}"
    finally:
        if client is not None:
            await client.close()
        if valkey.process is not None and valkey.process.poll() is None:
            os.kill(valkey.process.pid, signal.SIGCONT)
            valkey.kill()
        if restarted is not None:
            restarted.stop()
        await asyncio.to_thread(fs.stop)


pytestmark = pytest.mark.timeout(120)
