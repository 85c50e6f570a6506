"""Sharded hot contests: a 4-shard contest serves exactly what a 1-shard contest serves.

Single Valkey (the shards are separate hash tags; test_cluster.py plays the same on a cluster),
plus the deep-page path of the sharded board read checked against one sorted set.
"""

from __future__ import annotations

import random

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from contest.appkeys import REDIS
from leaderboard.boards import read_me, read_me_sharded, read_page, read_page_sharded
from leaderboard.encoding import encode
from leaderboard.scripts import LEADERBOARD_ME, LEADERBOARD_PAGE
from tests.shard_scenario import play_both, snapshot


async def test_four_shards_serve_what_one_shard_serves(client: TestClient) -> None:
    _, _, people = await play_both(client, shards=4)
    solo = await snapshot(client, "solo", people)
    multi = await snapshot(client, "multi", people)
    assert solo["board?limit=200"]["total"] == len(people)
    ranks = [e["rank"] for e in solo["board?limit=200"]["entries"]]
    assert len(set(ranks)) < len(ranks), "the traffic should produce shared ranks"
    # the traffic really used every shard
    redis = client.server.app[REDIS]
    from leaderboard import keys

    sizes = [await redis.zcard(keys.board("multi", shard=s)) for s in range(4)]
    assert all(sizes) and sum(sizes) == len(people)
    for name in solo:
        assert multi[name] == solo[name], name


class _Runner:
    """Lua scripts over a plain redis-py client (the reference: one sorted set)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def run(self, script, keys, args):  # type: ignore[no-untyped-def]
        return await self.redis.eval(script.source, len(keys), *keys, *args)


async def test_deep_pages_and_ties_match_one_sorted_set(redis_client: aioredis.Redis) -> None:
    """Random boards with heavy ties split over 5 shards: every page read by the binary-search
    path (direct_max=0) and by the merge path equals the one-sorted-set Lua read."""
    rng = random.Random(7)
    shards = [(f"{{t:{s}}}:lb", f"{{t:{s}}}:names") for s in range(5)]
    whole = ("{t}:lb", "{t}:names")
    members = {}
    for _ in range(400):
        uid = str(rng.randrange(10_000_000))
        members[uid] = encode(rng.choice([0, 10, 10, 20, 30, 30, 30, 50]), rng.choice([1000, 1000, 2000, 3500]))
    for uid, enc in members.items():
        shard = int(uid) % 5
        await redis_client.zadd(shards[shard][0], {uid: enc})
        await redis_client.hset(shards[shard][1], uid, f"n{uid}\torg")
        await redis_client.zadd(whole[0], {uid: enc})
        await redis_client.hset(whole[1], uid, f"n{uid}\torg")
    runner = _Runner(redis_client)
    assert LEADERBOARD_PAGE and LEADERBOARD_ME
    for offset, limit in [(0, 50), (1, 1), (37, 13), (120, 200), (390, 20), (len(members) - 1, 5), (500, 5)]:
        expected = await read_page(runner, *whole, offset, limit)
        assert await read_page_sharded(redis_client, shards, offset, limit) == expected
        assert await read_page_sharded(redis_client, shards, offset, limit, direct_max=0) == expected
    for uid in rng.sample(sorted(members), 25):
        expected_me = await read_me(runner, *whole, uid, 4)
        assert await read_me_sharded(redis_client, shards, int(uid) % 5, uid, 4) == expected_me
    missing = await read_me_sharded(redis_client, shards, 0, "nobody", 4)
    assert missing.rank is None and missing.total == len(members)
