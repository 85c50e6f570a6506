"""Finishes abandoned attempts at their deadline, exactly once however many workers sweep.

Each contest keeps its open attempts in a sorted set by deadline.  Any worker may pick up a due
attempt; the finish script's ``fin`` flag makes the second finisher a no-op, so racing sweepers
cost a wasted call, never a double count.  The sweeper also prunes the per-second counters that
feed answers/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from contest.catalog import Catalog
from contest.play import Play, parse_attempt_id
from leaderboard import keys

__all__ = ["Sweeper"]

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, play: Play, catalog: Catalog, *, batch: int = 200) -> None:
        self.play = play
        self.catalog = catalog
        self.batch = batch
        self.finished = 0
        self.errors = 0  # failed passes (Redis away), for /metrics
        self.passes = 0  # completed passes: lets a caller wait for "the sweeper has looked"

    async def sweep_once(self) -> int:
        """Finish every due attempt of every published contest; returns how many this call finished."""
        done = 0
        now_ms = int(time.time() * 1000)
        redis = self.play.redis
        for contest in list(self.catalog.contests.values()):
            if contest.status != "published":
                continue
            for shard in range(contest.shards):
                due = await redis.zrangebyscore(keys.deadlines(contest.contest_id, shard), "-inf", now_ms,
                                                start=0, num=self.batch)
                for raw in due:
                    attempt_id = raw.decode()
                    _, attempt_shard = parse_attempt_id(attempt_id)
                    finished = await self.play.auto_finish(contest, attempt_id, attempt_shard)
                    if finished:
                        done += 1
                    elif finished is False:
                        await redis.zrem(keys.deadlines(contest.contest_id, shard), attempt_id)
                    # None: not due by Redis' clock (this host's clock runs ahead); it stays scheduled
                await self._prune(contest.contest_id, shard, now_ms // 1000)
        self.finished += done
        return done

    async def _prune(self, contest_id: str, shard: int, now_s: int) -> None:
        # Keep two minutes of per-second answer counters; older ones only cost memory.
        key = keys.timeline(contest_id, "", shard)
        stale = [f"{keys.TIMELINE_PER_SECOND}{s}" for s in range(now_s - 180, now_s - 120)]
        await self.play.redis.hdel(key, *stale)

    async def run(self, stop: asyncio.Event, interval_s: float = 0.5) -> None:
        while not stop.is_set():
            try:
                await self.sweep_once()
            except Exception as exc:
                self.errors += 1
                log.warning("sweeper pass failed: %s", exc)
            self.passes += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
