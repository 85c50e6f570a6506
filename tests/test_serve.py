"""``quiz serve --workers 2`` as a real subprocess: shared port, load, SIGTERM, nothing lost.

Every answer the service acknowledged (200) before and during the shutdown must be in the
database once the command has exited 0: in-flight requests finish and each worker's flusher
makes a final flush.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from contest.embedded_redis import free_port
from contest.storage import open_storage
from tests.fixtures.app import ADMIN, TICKET_SECRET, seed_contest
from tests.fixtures.postgres import create_database


class _Http:
    """The slice of TestClient that seed_contest uses, over a real socket."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.session.post(self.base + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.session.get(self.base + path, **kwargs)


async def _wait_up(session: aiohttp.ClientSession, base: str, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.returncode is None, "quiz serve exited during start-up"
        try:
            async with session.get(base + "/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("quiz serve did not become ready")


async def _known_by_every_worker(base: str, path: str, within_s: float = 15.0) -> None:
    deadline, in_a_row = time.monotonic() + within_s, 0
    while in_a_row < 20:
        assert time.monotonic() < deadline, f"{path} not served by every worker"
        # a connection of its own each time, so the kernel picks a worker each time
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session, \
                session.get(base + path) as resp:
            in_a_row = in_a_row + 1 if resp.status == 200 else 0
        if not in_a_row:
            await asyncio.sleep(0.05)


# Why players stopped before the server did: the message of a stalled run.
STOPPED_ON: list[str] = []


async def _player(http: _Http, user: dict[str, Any], acked: list[tuple[str, int]], stop: asyncio.Event) -> None:
    """Start attempts and answer until the server goes away."""
    while not stop.is_set():
        try:
            async with http.post("/api/v1/contests/demo/attempts", headers=user["headers"]) as resp:
                if resp.status not in (200, 201):
                    STOPPED_ON.append(f"start {resp.status}: {(await resp.text())[:200]}")  # shown if play stalls
                    return
                attempt = await resp.json()
            for q in attempt["questions"]:
                choice: Any = [q["options"][0]["key"]] if q["type"] == "multiple" else q["options"][0]["key"]
                async with http.post(f"/api/v1/attempts/{attempt['attempt_id']}/answers",
                                     json={"index": q["index"], "choice": choice}, headers=user["headers"]) as resp:
                    if resp.status == 200:
                        acked.append((attempt["attempt_id"], q["index"]))
                    elif resp.status != 409:
                        raise AssertionError(f"answer got {resp.status}: {await resp.text()}")
            async with http.post(f"/api/v1/attempts/{attempt['attempt_id']}/finish", headers=user["headers"]) as resp:
                assert resp.status in (200, 410), await resp.text()
        except (TimeoutError, aiohttp.ClientConnectionError):
            return  # the server stopped accepting: this player is done


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_serve_workers_sigterm_flushes_every_acknowledged_answer(redis_url: str, tmp_path: Path,
                                                                       database: str,
                                                                       request: pytest.FixtureRequest) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    await client.aclose()
    port = free_port()
    if database == "postgres":
        database_url = await create_database(request.getfixturevalue("pg_server"))
    else:
        database_url = f"sqlite:///{tmp_path / 'quiz.db'}"
    env = {**os.environ, "QUIZ_REDIS_URL": redis_url, "QUIZ_DATABASE_URL": database_url,
           "QUIZ_DATA_DIR": str(tmp_path), "QUIZ_ADMIN_TOKEN": ADMIN, "QUIZ_SECRET": "serve-test",
           "QUIZ_TICKET_SECRET": TICKET_SECRET, "QUIZ_MIN_ANSWER_MS": "0", "QUIZ_LOG_LEVEL": "WARNING"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "contest.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
            env=env, stdout=subprocess.DEVNULL, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=64)) as session:
            await _wait_up(session, base, proc)
            http = _Http(session, base)
            seeded = await seed_contest(http, contest_id="demo", attempts_per_day=0)  # type: ignore[arg-type]
            # both workers must know the contest before play starts (catalog refresh: 1 s); new
            # connections are spread over the workers (SO_REUSEPORT): 20 in a row must find it
            await _known_by_every_worker(base, "/api/v1/contests/demo")
            users = [await seeded.register(org_id="360302002001", name=f"p{i}") for i in range(24)]
            acked: list[tuple[str, int]] = []
            stop = asyncio.Event()
            players = [asyncio.create_task(_player(http, u, acked, stop)) for u in users]
            deadline = time.monotonic() + 30
            while len(acked) < 100:  # play under way on both workers
                assert time.monotonic() < deadline, \
                    f"only {len(acked)} answers acknowledged before the SIGTERM; {STOPPED_ON}"
                await asyncio.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
            stop.set()
            await asyncio.gather(*players)
        assert code == 0, log.read_text(errors="replace")[-3000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    storage = open_storage(database_url)
    await storage.open()
    try:
        rows = [(row["attempt_id"], int(row["idx"])) async for row in storage.load_answers("demo")]
        stored = set(rows)
        assert len(rows) == len(stored), "an answer was stored twice"
    finally:
        await storage.close()
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged answers are not in the database"


async def test_serve_freezes_startup_objects_and_relaxes_gc() -> None:
    """``quiz serve``'s startup hook: what is alive after startup leaves the collector's scans
    (full collections over it paused the loop 30-60 ms under load) and collections get rarer."""
    from contest.cli.main import _freeze_gc

    threshold = gc.get_threshold()
    try:
        await _freeze_gc(None)
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold()[0] >= 50_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
