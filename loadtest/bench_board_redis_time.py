"""Redis-side time of the two board reads on a 1,000,000-member board.

    python loadtest/bench_board_redis_time.py                  # starts its own Valkey
    python loadtest/bench_board_redis_time.py --members 200000 --calls 2000
    python loadtest/bench_board_redis_time.py --redis-url redis://127.0.0.1:6379/0

Loads a total board (encoded (score, duration) sorted set) and its names hash with ZADD/HSET in
pipelines of a few thousand, then calls the production scripts by EVALSHA exactly as the
service does: ``LEADERBOARD_PAGE`` (a page of 50 with competition ranks and names) at the top,
the middle and the end of the board, and ``LEADERBOARD_ME`` (a member's rank by ZCOUNT plus
the entries around it) for random members.  The time reported is the server's own: the
per-call durations SLOWLOG records with ``slowlog-log-slower-than 0`` (percentiles) and the
``usec_per_call`` of ``INFO commandstats`` (mean), so network and client time are excluded.
Target (issue 3): under 1 ms each.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contest.embedded_redis import EmbeddedValkey
from leaderboard import keys
from leaderboard.encoding import encode
from leaderboard.scripts import LEADERBOARD_ME, LEADERBOARD_PAGE

__all__ = ["main"]

CONTEST = "benchboard"
PIPELINE = 5000


async def load(redis: aioredis.Redis, members: int, seed: int) -> float:
    """ZADD + HSET in pipelines of PIPELINE members; returns seconds taken."""
    rng = random.Random(seed)
    board, names = keys.board(CONTEST), keys.names(CONTEST)
    started = time.perf_counter()
    await redis.delete(board, names)
    for first in range(0, members, PIPELINE):
        batch = range(first, min(first + PIPELINE, members))
        # scores cluster like a real contest's (many equal scores), durations spread the ties
        scores = {f"u{n}": encode(rng.choice(range(0, 101, 5)), rng.randrange(20_000, 600_000)) for n in batch}
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zadd(board, scores)
            pipe.hset(names, mapping={f"u{n}": f"用户{n}\t3603020020{n % 100:02d}" for n in batch})
            await pipe.execute()
    return time.perf_counter() - started


async def measure(
    redis: aioredis.Redis, label: str, calls: int, call: Callable[[int], Awaitable[Any]]
) -> dict[str, Any]:
    """Run ``calls`` calls and read back their server-side durations."""
    await redis.config_resetstat()
    await redis.slowlog_reset()
    for n in range(calls):
        await call(n)
    log = await redis.slowlog_get(calls + 100)
    durations = sorted(e["duration"] for e in log if e["command"].split(b" ")[0].upper() == b"EVALSHA")
    stats = await redis.info("commandstats")
    evalsha = stats.get("cmdstat_evalsha", {})
    q = statistics.quantiles(durations, n=100) if len(durations) >= 2 else durations * 99
    return {"label": label, "calls": len(durations), "mean_us": round(float(evalsha.get("usec_per_call", 0)), 1),
            "p50_us": q[49], "p99_us": q[98], "max_us": durations[-1] if durations else None}


async def run(args: argparse.Namespace) -> None:
    server = None
    url = args.redis_url
    if not url:
        server = EmbeddedValkey(Path(tempfile.mkdtemp(prefix="bench-board-")), appendonly=False).start()
        url = server.url
    redis = aioredis.Redis.from_url(url)
    try:
        info = await redis.info("server")
        print(f"server: {info.get('server_name', 'redis')} {info.get('valkey_version') or info['redis_version']}")
        seconds = await load(redis, args.members, args.seed)
        total = await redis.zcard(keys.board(CONTEST))
        print(f"loaded {total:,} members in {seconds:.1f} s ({total / seconds:,.0f} ZADD+HSET members/s)")
        page_sha = await redis.script_load(LEADERBOARD_PAGE.source)
        me_sha = await redis.script_load(LEADERBOARD_ME.source)
        assert page_sha == LEADERBOARD_PAGE.sha and me_sha == LEADERBOARD_ME.sha
        await redis.config_set("slowlog-log-slower-than", 0)
        await redis.config_set("slowlog-max-len", args.calls + 1000)
        board, names = keys.board(CONTEST), keys.names(CONTEST)
        rng = random.Random(args.seed + 1)

        def page_at(offset_of: Callable[[int], int]) -> Callable[[int], Awaitable[Any]]:
            return lambda n: redis.evalsha(page_sha, 2, board, names, offset_of(n), 50)

        def me(around: int) -> Callable[[int], Awaitable[Any]]:
            return lambda n: redis.evalsha(me_sha, 2, board, names, f"u{rng.randrange(total)}", around)

        results = [
            await measure(redis, "page of 50, top (offset 0)", args.calls, page_at(lambda n: 0)),
            await measure(redis, "page of 50, middle (offset total/2)", args.calls, page_at(lambda n: total // 2)),
            await measure(redis, "page of 50, random offset", args.calls,
                          page_at(lambda n: rng.randrange(max(1, total - 50)))),
            await measure(redis, "rank of a member (around=0)", args.calls, me(0)),
            await measure(redis, "rank + 5 around (around=5)", args.calls, me(5)),
        ]
        print(f"\nRedis-side time per EVALSHA, {total:,}-member board, {args.calls} calls each (microseconds):")
        print(f"{'call':40} {'mean':>8} {'p50':>8} {'p99':>8} {'max':>8}")
        for r in results:
            print(f"{r['label']:40} {r['mean_us']:8} {r['p50_us']:8.0f} {r['p99_us']:8.0f} {r['max_us']:8}")
        worst = max(r["p99_us"] for r in results)
        print(f"\nworst p99: {worst:.0f} us -> {'under' if worst < 1000 else 'OVER'} the 1 ms target")
    finally:
        if not args.keep:
            await redis.delete(keys.board(CONTEST), keys.names(CONTEST))
        await redis.config_set("slowlog-log-slower-than", 10000)
        await redis.aclose()
        if server is not None:
            server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", help="use this Redis instead of starting a Valkey")
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=5000, help="calls per measured case")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="leave the board in Redis afterwards")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
