"""Rate limits and review decisions on a real Valkey cluster: one key per subject, every script in one slot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio.cluster import RedisCluster

from contest.appkeys import REDIS
from contest.play import parse_attempt_id
from contest.web.app import create_app
from leaderboard import keys
from tests.fixtures.app import LaneTestServer, admin_headers, make_settings, seed_contest
from tests.fixtures.cluster import ValkeyCluster
from tests.test_attempts import VILLAGE_A, VILLAGE_B

pytestmark = pytest.mark.cluster


async def play(client: TestClient, user: dict[str, Any], cid: str, right: int) -> dict[str, Any]:
    """One attempt submitted whole (one request: not counted per answer), the first ``right`` correct."""
    attempt = await (await client.post(f"/api/v1/contests/{cid}/attempts", headers=user["headers"])).json()
    aid = attempt["attempt_id"]
    _, shard = parse_attempt_id(aid)
    state = await client.server.app[REDIS].hgetall(keys.attempt(cid, aid, shard))
    answers = []
    for q in attempt["questions"]:
        key = state[f"q{q['index']}".encode()].decode().split("|")[1]
        if q["index"] >= right:
            key = next((o["key"] for o in q["options"] if o["key"] not in key), key[0])
        answers.append({"index": q["index"], "choice": list(key) if q["type"] == "multiple" else key})
    resp = await client.post(f"/api/v1/attempts/{aid}/submit", headers=user["headers"], json={"answers": answers})
    assert resp.status == 200, await resp.text()
    return await resp.json()


@pytest.fixture
async def guarded_cluster_app(valkey_cluster: ValkeyCluster, data_dir: Path) -> AsyncIterator[TestClient]:
    valkey_cluster.wait_ok()
    redis = RedisCluster(startup_nodes=valkey_cluster.startup_nodes())
    await redis.flushall(target_nodes=RedisCluster.PRIMARIES)
    await redis.aclose()
    settings = make_settings(valkey_cluster.url, data_dir, redis_cluster=True,
                             rl_register_ip=(4, 60), rl_answer_user=(3, 60))
    client = TestClient(LaneTestServer(create_app(settings)))
    await client.start_server()
    yield client
    await client.close()


async def test_limits_and_void_on_a_cluster(guarded_cluster_app: TestClient) -> None:
    client = guarded_cluster_app
    seeded = await seed_contest(client, shards=3, ranking="best")
    cid = seeded.contest_id
    users = [await seeded.register(org_id=org) for org in (VILLAGE_A, VILLAGE_B, VILLAGE_A)]
    resp = await client.post("/api/v1/auth/register", json={"name": "多", "phone": "13600000000",
                                                            "org_id": VILLAGE_A})
    assert resp.status == 201
    resp = await client.post("/api/v1/auth/register", json={"name": "多", "phone": "13600000001",
                                                            "org_id": VILLAGE_A})
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1

    attempt = await (await client.post(f"/api/v1/contests/{cid}/attempts", headers=users[0]["headers"])).json()
    aid = attempt["attempt_id"]
    statuses = []
    for q in attempt["questions"][:4]:
        r = await client.post(f"/api/v1/attempts/{aid}/answers", headers=users[0]["headers"],
                              json={"index": q["index"], "choice": q["options"][0]["key"]})
        statuses.append(r.status)
    assert statuses == [200, 200, 200, 429]
    await client.post(f"/api/v1/attempts/{aid}/finish", headers=users[0]["headers"])

    results = [await play(client, u, cid, right=r) for u, r in zip(users[1:], (5, 9), strict=True)]
    top = results[1]
    board = await (await client.get(f"/api/v1/contests/{cid}/leaderboard")).json()
    assert board["entries"][0]["user_id"] == users[2]["user_id"]
    resp = await client.post(f"/api/v1/admin/contests/{cid}/attempts/{top['attempt_id']}/review",
                             json={"action": "void", "reason": "bot"}, headers=admin_headers())
    assert resp.status == 200 and (await resp.json())["board_score_after"] is None
    board = await (await client.get(f"/api/v1/contests/{cid}/leaderboard")).json()
    assert users[2]["user_id"] not in {e["user_id"] for e in board["entries"]}
    assert board["entries"][0]["user_id"] == users[1]["user_id"]
