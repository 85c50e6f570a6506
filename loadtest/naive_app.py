"""The naive ceiling for ``quiz bench``: a bare aiohttp answer handler, one plain redis-py EVALSHA each.

    python loadtest/naive_app.py --port 8099 --redis-url redis://127.0.0.1:6379/0

It serves the same route and runs the very same ANSWER script with the same keys and arguments as
the real service (so Redis does the same work per request), but with nothing else: no token
check (the user id is read from the token's payload unverified), no validation, no metrics, no
rate limits, and a redis-py connection pool instead of the service's coalescing pipeline.  That
is "one EVALSHA per request done the obvious way", the figure the answer endpoint is held to.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leaderboard import keys
from leaderboard.scripts import ANSWER

__all__ = ["make_app", "main"]

# ARGV 4-11 and 14-15 of ANSWER for the sample contest: no partial credit, no bonuses, no
# per-question limit, no grace, no minimum answer time, no per-user rate limit.
_FIXED = ("0", "0", "0", "0", "0", "0", 0, 0)
_NO_LIMIT = ("0", 0)
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis", aioredis.Redis)


def _uid(request: web.Request) -> str:
    payload = request.headers["Authorization"][7:].partition(".")[0]
    return str(orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["u"])


async def answer(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    aid = request.match_info["aid"]
    cid = aid.partition(".")[0]
    index, choice = int(body["index"]), str(body["choice"])
    reply = await request.app[REDIS].evalsha(
        ANSWER.sha, 5, keys.attempt(cid, aid), keys.stats(cid), keys.qstats(cid), keys.events(cid),
        keys.timeline(cid, ""), _uid(request), index, choice, *_FIXED, cid, aid, *_NO_LIMIT)
    if reply[0] != b"ok":
        return web.Response(status=409, body=orjson.dumps({"error": {"code": reply[1].decode()}}),
                            content_type="application/json")
    return web.Response(body=orjson.dumps({"index": index, "correct": reply[1] == 1, "points_awarded": reply[2],
                                           "score": reply[3], "correct_choice": reply[4].decode()}),
                        content_type="application/json")


def make_app(redis_url: str) -> web.Application:
    app = web.Application()

    async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
        client = aioredis.Redis.from_url(redis_url, max_connections=1024)
        await client.script_load(ANSWER.source)
        app[REDIS] = client
        yield
        await client.aclose()

    app.cleanup_ctx.append(redis_ctx)
    app.router.add_post("/api/v1/attempts/{aid}/answers", answer)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(make_app(args.redis_url), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
