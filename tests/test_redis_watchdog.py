"""PipelinedScripts' reply watchdog: a Redis that stops answering fails the calls in flight, then recovers."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from contest.embedded_redis import EmbeddedValkey
from contest.redis_client import PipelinedScripts


async def test_a_hung_redis_fails_calls_in_flight_within_the_reply_timeout(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path / "valkey", appendonly=False) as valkey:
        assert valkey.process is not None
        runner = PipelinedScripts(valkey.url, reply_timeout=0.4)
        try:
            assert await runner.execute("PING") == b"PONG"
            os.kill(valkey.process.pid, signal.SIGSTOP)  # a hung server: the socket stays open, no reply comes
            try:
                started = time.monotonic()
                results = await asyncio.gather(*(runner.execute("INCR", "n") for _ in range(3)),
                                               return_exceptions=True)
                waited = time.monotonic() - started
            finally:
                os.kill(valkey.process.pid, signal.SIGCONT)
            assert all(isinstance(r, RedisConnectionError) and "did not answer in time" in str(r) for r in results)
            assert 0.35 <= waited < 2.0, waited
            # the next call reconnects; replies are in step again (the hung INCRs may or may not have run)
            assert await runner.execute("SET", "k", "v") == b"OK"
            assert await runner.execute("GET", "k") == b"v"
        finally:
            await runner.aclose()


async def test_many_calls_each_get_their_own_reply(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path / "valkey", appendonly=False) as valkey:
        runner = PipelinedScripts(valkey.url, reply_timeout=0.2)
        try:
            replies = await asyncio.gather(*(runner.execute("INCRBY", "n", i) for i in range(1, 501)))
            assert sorted(int(r) for r in replies)[-1] == sum(range(1, 501))
            await asyncio.sleep(0.5)  # the watchdog ticks with nothing in flight and stops without harm
            assert await runner.execute("GET", "n") == str(sum(range(1, 501))).encode()
            await asyncio.sleep(0.2)  # its next tick finds nothing awaited and does not re-arm
            assert runner._watchdog is None
        finally:
            await runner.aclose()


pytestmark = pytest.mark.timeout(30)
