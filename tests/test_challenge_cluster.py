"""A sharded challenge on a real 3-master Valkey cluster: the answer script that finishes the run
touches only keys of its shard's hash tag, so it runs there as on one server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio.cluster import RedisCluster

from contest.web.app import create_app
from tests.fixtures.app import LaneTestServer, make_settings
from tests.fixtures.cluster import ValkeyCluster
from tests.fixtures.play import finish, register, seed_custom
from tests.test_challenge import run


@pytest.fixture
async def cluster_client(valkey_cluster: ValkeyCluster, data_dir: Path) -> AsyncIterator[TestClient]:
    valkey_cluster.wait_ok()
    redis = RedisCluster(startup_nodes=valkey_cluster.startup_nodes())
    await redis.flushall(target_nodes=RedisCluster.PRIMARIES)
    await redis.aclose()
    client = TestClient(LaneTestServer(create_app(make_settings(valkey_cluster.url, data_dir, redis_cluster=True))))
    await client.start_server()
    yield client
    await client.close()


async def test_a_sharded_challenge_on_the_cluster(cluster_client: TestClient) -> None:
    cid = await seed_custom(cluster_client, mode="challenge", shards=3)
    players = [await register(cluster_client, name=f"选手{i}") for i in range(5)]
    results = [(await run(cluster_client, p, cid, right=i))["result"] for i, p in enumerate(players)]
    assert [r["score"] for r in results] == [0, 10, 20, 30, 40]
    status, fin = await finish(cluster_client, players[4], results[4]["attempt_id"])
    assert status == 200 and fin["rank"] == 1
    board = await (await cluster_client.get(f"/api/v1/contests/{cid}/leaderboard")).json()
    assert [e["score"] for e in board["entries"]] == [40, 30, 20, 10, 0]
