"""PipelinedScripts on a password-protected Valkey and a non-zero database: no call lands in db 0.

A new connection must be handed out only once AUTH and SELECT have succeeded; a call queued
between the connect and SELECT's reply would run (unauthenticated, or in database 0).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from contest.embedded_redis import EmbeddedValkey
from contest.redis_client import PipelinedScripts, ReplyWaiter
from leaderboard.scripts import Script

PASSWORD = "s3cret pass"  # a space, so the URL's percent-decoding is exercised too
DB = 5
INCR = Script("test_incr", "return redis.call('INCR', KEYS[1])")


class _Collect(ReplyWaiter):
    """The answer lane's way of calling: a callback per reply, no future per call."""

    def __init__(self, runner: PipelinedScripts, done: asyncio.Future[None], results: list[Any], expected: int):
        super().__init__(runner, INCR, ("lane",), ())
        self.done_future, self.results, self.expected = done, results, expected

    def on_reply(self, reply: Any) -> None:
        self._record(reply)

    def on_error(self, exc: BaseException) -> None:
        self._record(exc)

    def _record(self, item: Any) -> None:
        self.results.append(item)
        if len(self.results) == self.expected and not self.done_future.done():
            self.done_future.set_result(None)


async def _burst(runner: PipelinedScripts, calls: int) -> tuple[list[Any], list[Any]]:
    """Calls arriving every loop turn from before the connection exists until after it is ready,
    by both paths (awaited ``execute``/``run`` and the callback ``send``)."""
    loop = asyncio.get_running_loop()
    lane_done: asyncio.Future[None] = loop.create_future()
    lane_results: list[Any] = []
    tasks = []
    for i in range(calls):
        tasks.append(asyncio.ensure_future(runner.execute("INCR", "plain")))
        tasks.append(asyncio.ensure_future(runner.run(INCR, ("script",), ())))
        runner.send(INCR, ("lane",), (), _Collect(runner, lane_done, lane_results, calls))
        if i % 2:
            await asyncio.sleep(0)  # yield one turn: the next calls arrive while the connect is under way
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.wait_for(lane_done, 10)
    return results, lane_results


@pytest.mark.parametrize("reconnect", [False, True], ids=["first-connect", "reconnect"])
async def test_calls_at_connect_time_run_authenticated_in_the_configured_database(
        tmp_path: Path, reconnect: bool) -> None:
    with EmbeddedValkey(tmp_path / "valkey", appendonly=False,
                        extra_args=("--requirepass", PASSWORD)) as valkey:
        url = f"redis://:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{valkey.port}/{DB}"
        admin = aioredis.Redis(port=valkey.port, password=PASSWORD, db=0)
        runner = PipelinedScripts(url)
        try:
            calls = 200
            if reconnect:
                assert await runner.execute("PING") == b"PONG"
                await admin.client_kill_filter(_type="normal", skipme=True)  # drops the runner's connection
                deadline = asyncio.get_running_loop().time() + 5
                while runner._protocol is not None:  # until the runner has seen the loss
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.01)
            results, lane_results = await _burst(runner, calls)
            assert not [r for r in results + lane_results if isinstance(r, BaseException)]
            assert await admin.dbsize() == 0, await admin.keys("*")  # nothing ran in database 0
            in_db = aioredis.Redis(port=valkey.port, password=PASSWORD, db=DB)
            try:
                assert await in_db.mget("plain", "script", "lane") == [str(calls).encode()] * 3
            finally:
                await in_db.aclose()
        finally:
            await runner.aclose()
            await admin.aclose()


async def test_a_wrong_password_fails_the_calls_and_publishes_no_connection(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path / "valkey", appendonly=False,
                        extra_args=("--requirepass", PASSWORD)) as valkey:
        runner = PipelinedScripts(f"redis://:wrong@127.0.0.1:{valkey.port}/{DB}")
        try:
            results = await asyncio.gather(*(runner.execute("INCR", "n") for _ in range(20)),
                                           return_exceptions=True)
            assert all(isinstance(r, RedisConnectionError) and "AUTH" in str(r) for r in results), results
            assert runner._protocol is None
        finally:
            await runner.aclose()


pytestmark = pytest.mark.timeout(30)
